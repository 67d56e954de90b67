"""Case 4: what would make every variant fail is found before training (exit 2, every problem at once with file
and key); a sweep in which a variant failed finishes the others and exits 3."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faultlib import ONE_LORA, REPO, cli, write_experiment

from harness.store.db import Store

pytestmark = pytest.mark.faults


def _format_suite(folder: Path, schema: str | None) -> None:
    shutil.copytree(REPO / "suites" / "acme-format", folder)
    if schema is None:
        (folder / "schema.json").unlink()
    else:
        (folder / "schema.json").write_text(schema, encoding="utf-8")


def test_every_problem_that_would_fail_training_is_reported_up_front(tmp_path: Path) -> None:
    _format_suite(tmp_path / "bad-schema", '{"type": "objekt"}')
    _format_suite(tmp_path / "no-schema", None)
    meta = tmp_path / "no-schema" / "suite.yaml"
    meta.write_text(meta.read_text().replace("name: acme-format", "name: acme-format-2"))
    spec = write_experiment(tmp_path, ONE_LORA.replace("  batch_size: 8\n", """  batch_size: 8
  target_modules: [qq_proj, v_proj]
  lr_scheduler_type: linnear
  lora_dropout: 2.0
  eval_batch_size: 0
""").replace("  - name: heldout\n", "  - path: bad-schema\n  - path: no-schema\n  - name: heldout\n"))
    out = cli("sweep", str(spec), "--db", str(tmp_path / "r.duckdb"))
    assert out.returncode == 2, out.stderr
    err = out.stderr
    assert "6 problems" in err, err
    for needle in (f"{spec}:15: key 'train.target_modules.0': 'qq_proj' matches no module", "Did you mean 'q_proj'",
                   f"{spec}:16: key 'train.lr_scheduler_type': unknown scheduler 'linnear'", "Did you mean 'linear'",
                   f"{spec}:17: key 'train.lora_dropout'", f"{spec}:18: key 'train.eval_batch_size'",
                   f"{tmp_path / 'bad-schema' / 'schema.json'}: option 'schema'", "not a valid JSON Schema",
                   f"{tmp_path / 'no-schema' / 'suite.yaml'}: option 'schema': no file"):
        assert needle in err, (needle, err)
    assert not (tmp_path / "r.duckdb").exists() and not (tmp_path / "runs").exists()


def test_a_failed_variant_lets_the_others_finish_and_exits_3(tmp_path: Path) -> None:
    # qlora cannot load tiny-random-llama in 4 bits (it is built in memory): that variant fails at training time.
    spec = write_experiment(tmp_path, ONE_LORA.replace("method: [lora]", "method: [qlora, lora]"))
    db = tmp_path / "r.duckdb"
    out = cli("sweep", str(spec), "--db", str(db))
    assert out.returncode == 3, out.stderr
    assert "1 variant(s) of run" in out.stderr and "qlora-r2-e1" in out.stderr
    with Store(db, read_only=True) as s:
        v = s.query("SELECT name, status FROM variants ORDER BY position")
        assert dict(zip(v["name"], v["status"], strict=True)) == {"base": "finished", "qlora-r2-e1": "failed",
                                                                   "lora-r2-e1": "finished"}
        assert s.query("SELECT status FROM runs")["status"].iloc[0] == "finished"
