"""Baseline files: what `harness baseline save` records, deterministic formatting, round trip, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from gate_fixtures import HELDOUT, outcomes, variant, write_run

from harness.cli import main
from harness.errors import HarnessInputError
from harness.gate.baseline import FORMAT_VERSION, dumps, load_baseline, resolve_variant, save_baseline, snapshot
from harness.store.db import Store

FINDING = {"check": "overfitting", "severity": "warning", "message": "validation loss rose",
           "evidence": {"epochs": [1, 2]}}


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "r.duckdb"
    passed = outcomes(40, 0.6, seed=1)
    custom = ([{"suite": "custom", "metric": "score", "value": math.nan, "ci_low": None, "ci_high": None, "n": 0,
                "suite_version": "3"}], [])
    run = write_run(db, [
        variant("base0000", "base", outcomes(40, 0.2, seed=2), method="base"),
        variant("lora1111", "lora-r4-e1", passed, findings=[FINDING], extra=custom),
        variant("lora2222", "lora-r4-e2", outcomes(40, 0.5, seed=3)),
        variant("fail3333", "full-e1", [], method="full", status="failed"),
    ], suites=[HELDOUT, {"name": "custom", "version": "3", "kind": "custom", "options": {}, "fingerprint": "c3"}])
    return db, run


def test_save_records_scores_examples_and_provenance(store: tuple[Path, str], tmp_path: Path) -> None:
    db, run = store
    path = save_baseline(db, run, variant="lora-r4-e1", output=tmp_path / "baselines" / "b.json")
    data = json.loads(path.read_text())
    assert data["format_version"] == FORMAT_VERSION and data["created_at"]
    assert data["variant"] == {"variant_id": "lora1111", "name": "lora-r4-e1", "method": "lora",
                               "params": {"rank": 4, "epochs": 1, "learning_rate": 1e-3, "seed": 0, "checkpoint": None},
                               "base_model": "tiny@v1", "artifact": "/runs/lora1111", "status": "finished"}
    assert data["run"]["run_id"] == run and data["model_fingerprint"] == "tiny@v1"
    assert data["data_fingerprints"] == {"train": "tr", "validation": "va", "test": "test-fp-1"}
    assert data["suites"]["heldout"]["version"] == "1" and data["suites"]["custom"]["version"] == "3"
    scores = {(s["suite"], s["metric"]): s for s in data["scores"]}
    assert set(scores) == {("heldout", "exact_match"), ("heldout", "field_accuracy"), ("heldout", "bleu"),
                           ("custom", "score")}
    assert scores[("custom", "score")]["value"] is None  # NaN is stored as null: the file stays strict JSON
    with Store(db, read_only=True) as s:
        em = s.query("SELECT value FROM scores WHERE variant_id = 'lora1111' AND metric = 'exact_match'").iloc[0, 0]
    assert scores[("heldout", "exact_match")]["value"] == em
    assert len(data["examples"]) == 40
    ex = data["examples"][0]
    # numeric per-example metrics are kept; nested objects and text are not
    assert set(ex) == {"suite", "example_id", "passed", "metrics"}
    assert set(ex["metrics"]) == {"exact_match", "field_accuracy"}
    assert data["findings"] == [FINDING]


def test_round_trip_and_deterministic_format(store: tuple[Path, str], tmp_path: Path) -> None:
    db, run = store
    a = save_baseline(db, run, variant="lora1111", output=tmp_path / "a.json")
    b = save_baseline(db, "latest", variant="lora1", output=tmp_path / "b.json")  # id prefix, latest run
    loaded = load_baseline(a)
    with Store(db, read_only=True) as s:
        fresh = snapshot(s, run, "lora1111")
    assert {k: v for k, v in loaded.items() if k != "created_at"} == fresh
    text = a.read_text()
    assert text == dumps(loaded)  # sorted keys, indent 2, trailing newline
    assert text.splitlines()[1].startswith('  "created_at"')
    strip = [ln for ln in text.splitlines() if "created_at" not in ln]
    assert strip == [ln for ln in b.read_text().splitlines() if "created_at" not in ln]


def test_resolve_variant_and_recommended(store: tuple[Path, str]) -> None:
    db, run = store
    with Store(db, read_only=True) as s:
        # lora1111 has the best field accuracy but a finding, so the recommendation is lora2222
        vid, why = resolve_variant(s, run, None)
        assert vid == "lora2222" and "without findings" in why
        assert resolve_variant(s, run, "recommended")[0] == "lora2222"
        assert resolve_variant(s, run, "lora-r4-e1")[0] == "lora1111"
        with pytest.raises(HarnessInputError, match="ambiguous"):
            resolve_variant(s, run, "lora")
        with pytest.raises(HarnessInputError, match=r"not in this run.*lora-r4-e2 \(lora2222, finished\)"):
            resolve_variant(s, run, "nope")


def test_failed_variant_cannot_be_a_baseline(store: tuple[Path, str], tmp_path: Path) -> None:
    db, run = store
    with pytest.raises(HarnessInputError, match="failed: RuntimeError: boom"):
        save_baseline(db, run, variant="full-e1", output=tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("{not json", r"b\.json:1: not a valid baseline"),
    ('{"format": "other"}', "not a finetune-harness baseline"),
    ('{"format": "finetune-harness-baseline", "format_version": 99}', "Upgrade"),
    ('{"format": "finetune-harness-baseline", "format_version": 1, "scores": [{"suite": "x"}]}', "missing key 'variant'"),
])
def test_load_rejects_bad_files(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HarnessInputError, match=match):
        load_baseline(path)


def test_cli_baseline_save_exit_codes(store: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db, run = store
    out = tmp_path / "baselines" / "cli.json"
    assert main(["baseline", "save", run, "--variant", "lora2222", "-o", str(out), "--db", str(db)]) == 0
    assert load_baseline(out)["variant"]["variant_id"] == "lora2222"
    assert main(["baseline", "save", "latest", "--variant", "zzz", "-o", str(out), "--db", str(db)]) == 2
    assert "--variant 'zzz' is not in this run" in capsys.readouterr().err
    assert main(["baseline", "save", "--variant", "x", "-o", str(out), "--db", str(tmp_path / "none.duckdb")]) == 2
