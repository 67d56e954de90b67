"""divergence scorer: loss by epoch, best epoch, gap, and the overfitting finding (scripted logs and a real sweep)."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO, chat, flat_fn, write_jsonl

from harness.data.suites import load_suite
from harness.errors import HarnessInputError
from harness.results import LogPoint
from harness.scorers import ScoreContext, make_scorer
from harness.spec.plan import Variant


def log_rows(train: dict[float, float], val: dict[float, float], steps_per_epoch: int = 4) -> list[LogPoint]:
    rows = [LogPoint(round(e * steps_per_epoch), e, "train", loss) for e, loss in train.items()]
    rows += [LogPoint(round(e * steps_per_epoch), e, "validation", loss) for e, loss in val.items()]
    return rows


def run(log: list[LogPoint], name: str = "lora-r16-e5", **options: object):
    suite = load_suite(REPO / "suites" / "divergence", options)
    fn, _ = make_scorer(suite.kind, suite.options)
    return flat_fn(fn, ScoreContext(model=None, suite=suite, variant=Variant(name, name, "lora"), test=[], train_log=log))


TRAIN = {0.25 * i: 2.0 - 0.09 * i for i in range(1, 21)}  # falls steadily to 0.2 at epoch 5
OVERFIT_VAL = {0.0: 1.5, 1.0: 0.95, 2.0: 0.82, 3.0: 0.9, 4.0: 1.02, 5.0: 1.14}


def test_overfitting_is_flagged_with_its_evidence() -> None:
    out = run(log_rows(TRAIN, OVERFIT_VAL))
    assert len(out.findings) == 1
    f = out.findings[0]
    assert f["check"] == "overfitting"
    # train loss over the last evaluation interval (epochs 4-5): mean of 0.47, 0.38, 0.29, 0.20 = 0.335
    assert f["message"] == ("lora-r16-e5 is overfitting: validation loss rose from 0.82 (epoch 2) to 1.14 "
                            "(epoch 5) while train loss fell to 0.34 [detects rises above 0.02 (min_rise)]")
    assert f["evidence"]["best_epoch"] == 2.0 and f["evidence"]["rise"] == pytest.approx(0.32)
    m = {r["metric"]: r for r in out.scores}
    assert m["best_epoch"]["value"] == 2.0 and m["epochs_past_best"]["value"] == 3.0
    assert m["gap"]["value"] == pytest.approx(1.14 - 0.335)
    assert m["gap"]["ci_low"] <= m["gap"]["value"] <= m["gap"]["ci_high"]
    assert m["validation_loss_epoch2"]["value"] == 0.82 and m["validation_loss_epoch0"]["value"] == 1.5
    assert m["train_loss_epoch1"]["value"] == pytest.approx((1.91 + 1.82 + 1.73 + 1.64) / 4)
    assert m["train_loss_epoch1"]["n"] == 4


def test_a_clean_run_raises_nothing() -> None:
    val = {0.0: 1.5, 1.0: 1.0, 2.0: 0.9, 3.0: 0.85, 4.0: 0.84, 5.0: 0.83}
    out = run(log_rows(TRAIN, val))
    assert out.findings == []
    m = {r["metric"]: r["value"] for r in out.scores}
    assert m["best_epoch"] == 5.0 and m["epochs_past_best"] == 0.0 and m["validation_rise"] == 0.0


def test_a_rise_within_min_rise_is_noise() -> None:
    val = {0.0: 1.5, 1.0: 0.9, 2.0: 0.85, 3.0: 0.86, 4.0: 0.865}  # 0.015 above the minimum
    train = {k: v for k, v in TRAIN.items() if k <= 4}
    assert run(log_rows(train, val)).findings == []
    assert len(run(log_rows(train, val), min_rise=0.01).findings) == 1


def test_validation_rising_while_train_rises_too_is_not_overfitting() -> None:
    train = {0.25 * i: 1.0 + 0.05 * i for i in range(1, 21)}  # diverging, e.g. a learning rate too high
    assert run(log_rows(train, OVERFIT_VAL)).findings == []


def test_a_log_without_epochs_uses_steps() -> None:
    log = [replace(r, epoch=None) for r in log_rows(TRAIN, OVERFIT_VAL)]
    out = run(log)
    assert out.findings[0]["message"] == ("lora-r16-e5 is overfitting: validation loss rose from 0.82 (step 8) to "
                                          "1.14 (step 20) while train loss fell to 0.34 [detects rises above 0.02 "
                                          "(min_rise)]")
    m = {r["metric"]: r["value"] for r in out.scores}
    assert m["best_step"] == 8 and m["steps_past_best"] == 12 and not any("epoch" in k for k in m)


def test_base_has_no_log_and_gets_nothing() -> None:
    out = run([], name="base")
    assert out.scores == [] and out.findings == []


def test_min_rise_must_be_a_non_negative_number() -> None:
    with pytest.raises(HarnessInputError, match="'min_rise': a loss difference >= 0"):
        run([], min_rise=-1)


# -- through a real sweep on tiny-random-llama --------------------------------------------------------------
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]


def _planted_rows(rng: random.Random) -> dict[str, list[dict]]:
    """12 training answers that use the same 12 words in one order; validation and test answers shuffle them. The
    shared words are learnt first (both losses fall), then the training order is memorised (validation rises)."""
    words = rng.sample(WORDS, 12)

    def rows(n: int, shuffle: bool) -> list[dict]:
        return [chat(f"Ticket {rng.randint(0, 999)}: {' '.join(rng.choices(WORDS, k=3))}",
                     " ".join(rng.sample(words, 12) if shuffle else words)) for _ in range(n)]

    return {"train": rows(12, False), "validation": rows(10, True), "test": rows(10, True)}


SPEC = """\
name: overfit
model: tiny-random-llama
data: {{train: train.jsonl, validation: validation.jsonl, test: test.jsonl}}
sweep: {{method: [full], epochs: [{epochs}], learning_rate: [{lr}]}}
train: {{max_seq_length: 96, batch_size: 1, eval_every_epochs: 1.0}}
suites: {suites}
{extra}"""


def _sweep(tmp_path: Path, epochs: int, lr: float, suites: str = "[divergence]", extra: str = ""
           ) -> tuple[list[dict], list[dict]]:
    from harness.progress import Quiet
    from harness.store.db import Store
    from harness.sweep.runner import run_sweep

    tmp_path.mkdir(parents=True, exist_ok=True)
    for split, rows in _planted_rows(random.Random(0)).items():
        write_jsonl(tmp_path / f"{split}.jsonl", rows)
    (tmp_path / "spec.yaml").write_text(SPEC.format(epochs=epochs, lr=lr, suites=suites, extra=extra))
    db = tmp_path / "r.duckdb"
    with open(tmp_path / "out.txt", "w") as out:
        rid = run_sweep(tmp_path / "spec.yaml", db, progress=Quiet(), out=out)
    with Store(db, read_only=True) as s:
        variants = s.run_table(rid, "variants")
        assert set(variants["status"]) == {"finished"}, variants[["name", "error"]]
        trained = variants[variants["method"] == "full"]["variant_id"].iloc[0]
        findings = s.query("SELECT * FROM findings WHERE variant_id = ?", [trained]).to_dict("records")
        scores = s.query("SELECT * FROM scores WHERE variant_id = ? AND suite = 'divergence'", [trained])
    return findings, scores.to_dict("records")


def test_planted_overfitting_on_tiny_random_llama_is_flagged(tmp_path: Path) -> None:
    findings, scores = _sweep(tmp_path, epochs=8, lr=5e-3)
    over = [f for f in findings if f["check"] == "overfitting"]
    assert len(over) == 1, findings
    assert over[0]["message"].startswith("full-e8 is overfitting: validation loss rose from ")
    evidence = json.loads(over[0]["evidence"])
    assert evidence["final_validation_loss"] > evidence["best_validation_loss"] + 0.02
    assert evidence["final_train_loss"] < evidence["train_loss_at_best"]
    m = {r["metric"]: r["value"] for r in scores}
    assert m["epochs_past_best"] > 0 and m["best_epoch"] < 8


def test_one_epoch_on_tiny_random_llama_raises_no_overfitting(tmp_path: Path) -> None:
    findings, scores = _sweep(tmp_path, epochs=1, lr=5e-3)
    assert [f for f in findings if f["check"] == "overfitting"] == []
    assert {"best_epoch", "gap", "final_train_loss"} <= {r["metric"] for r in scores}


def test_overfitting_is_checked_even_when_the_spec_lists_no_divergence_suite(tmp_path: Path) -> None:
    """The free check runs for every trained variant with a validation split; a spec turns it off explicitly."""
    from harness.sweep.runner import Sweep

    findings, scores = _sweep(tmp_path / "on", epochs=8, lr=5e-3, suites="[heldout]")
    assert [f["check"] for f in findings] == ["overfitting"] and scores  # scored by the added divergence suite
    off = tmp_path / "off"
    off.mkdir()
    for f in ("train", "validation", "test"):
        (off / f"{f}.jsonl").write_text((tmp_path / "on" / f"{f}.jsonl").read_text())
    (off / "spec.yaml").write_text(SPEC.format(epochs=8, lr=5e-3, suites="[heldout]",
                                               extra="findings: {overfitting: false}\n"))
    assert [s.kind for s in Sweep(off / "spec.yaml").suites] == ["heldout"]
