"""Slow: real training of the embedded SmolLM2-135M-Instruct (LoRA and QLoRA), loss going down."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep

REPO = Path(__file__).resolve().parent.parent

SPEC = """\
name: embedded-smoke
model: smollm2-135m-instruct
data: {train: train.jsonl, validation: 0.2, test: test.jsonl}
sweep: {method: [lora, qlora], rank: [8], epochs: [1], learning_rate: [2.0e-3]}
train: {max_seq_length: 160, batch_size: 4, max_steps: 8, eval_every_epochs: 0.5}
suites: [{name: heldout, options: {max_new_tokens: 48}}]
"""


@pytest.mark.slow
def test_real_lora_and_qlora_sweep_on_embedded_model(tmp_path: Path) -> None:
    data = REPO / "experiments/acme-support/data"
    lines = (data / "train.jsonl").read_text().splitlines()[:40]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    test_lines = (data / "test.jsonl").read_text().splitlines()[:12]
    (tmp_path / "test.jsonl").write_text("\n".join(test_lines) + "\n")
    (tmp_path / "spec.yaml").write_text(SPEC)
    with open(tmp_path / "out.txt", "w") as out:
        rid = run_sweep(tmp_path / "spec.yaml", tmp_path / "r.duckdb", progress=Quiet(), out=out)
    with Store(tmp_path / "r.duckdb", read_only=True) as s:
        v = s.run_table(rid, "variants").set_index("name")
        assert v.loc["lora-r8-e1", "status"] == "finished", v.loc["lora-r8-e1", "error"]
        log = s.run_table(rid, "train_log")
        for name in ("lora-r8-e1", "qlora-r8-e1"):
            if v.loc[name, "status"] != "finished":
                # Where 4-bit cannot run, the variant fails with a clear, stored reason; the sweep goes on.
                assert name == "qlora-r8-e1" and "bitsandbytes" in v.loc[name, "error"]
                continue
            part = log[log.variant_id == v.loc[name, "variant_id"]]
            train = part[part.split == "train"].sort_values("step")["loss"].to_numpy()
            val = part[part.split == "validation"].sort_values("step")["loss"].to_numpy()
            assert len(train) == 8 and train[-3:].mean() < train[:3].mean() - 0.2, (name, train)
            assert val[-1] < val[0], val
        scores = s.run_table(rid, "scores")
        loss = scores[scores.metric == "loss"].merge(s.run_table(rid, "variants")[["variant_id", "name"]])
        by_name = dict(zip(loss["name"], loss["value"], strict=False))
        assert by_name["lora-r8-e1"] < by_name["base"]  # the reference answers got likelier
    shutil.rmtree(tmp_path / "runs", ignore_errors=True)
