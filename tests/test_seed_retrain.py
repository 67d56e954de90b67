"""A variant retrained with another seed raises no forgetting or format finding against the first (real training)."""

from __future__ import annotations

from pathlib import Path

from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep
from harness.verdicts import findings

SPEC = """\
name: seeds
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep: {method: [lora], rank: [4], epochs: [1], learning_rate: [1.0e-3], seed: [0, 1]}
train: {max_seq_length: 96, batch_size: 8}
suites:
  - {name: heldout, options: {max_new_tokens: 8}}
  - {name: acme-format, options: {source: heldout}}
  - general
"""


def test_another_seed_is_not_a_regression_against_the_first(tiny_experiment: Path) -> None:
    tiny_experiment.write_text(SPEC)
    db = tiny_experiment.parent / "r.duckdb"
    with open(tiny_experiment.parent / "out.txt", "w") as out:
        rid = run_sweep(tiny_experiment, db, progress=Quiet(), out=out)
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants").set_index("name")
        rows = {name: {t: s.query(f"SELECT * FROM {t} WHERE variant_id = ?", [v.loc[name, "variant_id"]])
                       for t in ("scores", "examples", "train_log")} for name in ("lora-r4-e1-s0", "lora-r4-e1-s1")}
        outputs = s.query("SELECT count(DISTINCT variant_id) AS n FROM examples WHERE suite = 'general'").iloc[0, 0]
    assert outputs == 3  # base and both seeds were scored on the general suite
    second = {"variant_id": v.loc["lora-r4-e1-s1", "variant_id"], "name": "lora-r4-e1-s1", "method": "lora"}
    raised = findings.derive(second, rows["lora-r4-e1-s1"], rows["lora-r4-e1-s0"], {})
    assert not [f for f in raised if f["check"] in ("forgetting", "format")], raised
