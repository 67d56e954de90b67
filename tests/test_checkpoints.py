"""Training that follows its validation curve (train.select, train.early_stopping, train.epochs_from_one_run,
train.keep_checkpoints), on tiny-random-llama with a planted overfitting pattern: random access codes, which a
model can only memorise, so validation loss falls while it learns the codes' alphabet and rises once it memorises."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl

from harness.models.local import LocalModel
from harness.models.resolve import resolve_model
from harness.progress import Quiet
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.store.db import Store
from harness.sweep.runner import Sweep, run_sweep
from harness.train.local import load_checkpoint, train_for_scoring

TINY = resolve_model("tiny-random-llama")
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def codes(n: int, offset: int, seed: int) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    return [[{"role": "user", "content": f"What is the access code for account {offset + i}?"},
             {"role": "assistant", "content": "".join(rng.choice(ALPHABET) for _ in range(10))}] for i in range(n)]


TRAIN, VAL, TEST = codes(16, 0, 0), codes(8, 100, 1), codes(8, 200, 2)


def trained(tmp: Path, method: str = "full", lr: float = 5e-3, epochs: int = 10, **keys: object):
    # a constant learning rate: the schedule's decay would flatten the late rise the test looks for
    spec = TrainSpec(max_seq_length=64, batch_size=4, eval_every_epochs=1.0, lr_scheduler_type="constant",
                     **keys)  # type: ignore[arg-type]
    v = Variant(f"{method}-{keys.get('select', 'last')}", "v", method, rank=8 if method == "lora" else None,
                epochs=epochs, learning_rate=lr, seed=0)
    return train_for_scoring(TINY, v, spec, TRAIN, VAL, tmp)


def heldout_loss(out) -> float:  # noqa: ANN001
    nll = LocalModel(out.model, out.tokenizer, name="t").reference_nll(TEST)
    return sum(n for n, _ in nll) / sum(c for _, c in nll)


def validation(out) -> dict[int, float]:  # noqa: ANN001
    return {r.step: r.loss for r in out.log if r.split == "validation"}


def test_select_best_scores_an_earlier_epoch_with_lower_held_out_loss(tmp_path: Path) -> None:
    last, best = trained(tmp_path / "a"), trained(tmp_path / "b", select="best")
    val = validation(best)
    assert max(val) == 40 and min(val.values()) < val[40] - 0.1  # the planted curve: validation rises again
    lowest = min((s for s in val if s > 0), key=val.get)
    assert best.outcome.scored.step == lowest < last.outcome.scored.step == 40
    assert best.outcome.scored.epoch < last.outcome.scored.epoch == 10.0
    assert "lowest validation loss" in best.outcome.scored.why
    assert heldout_loss(best) < heldout_loss(last)
    assert Path(best.outcome.stats.artifact).name == f"epoch-{best.outcome.scored.epoch:g}" != "epoch-10"  # the epoch scored
    assert (Path(best.outcome.stats.artifact) / "model.safetensors").is_file()
    assert not (tmp_path / "b" / "full-best" / "trainer").exists()  # keep_checkpoints: scored (the default)


def _fake_trainer(folder: Path, steps: list[int], last: int):  # noqa: ANN202
    """A finished Trainer as select_checkpoints sees it: its output folder with a checkpoint per step (each holding
    weights that name their step, and training state), and its last step."""
    from types import SimpleNamespace

    for step in steps:
        ckpt = folder / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "model.safetensors").write_text(f"weights of step {step}")
        (ckpt / "optimizer.pt").write_text("optimizer state")
    return SimpleNamespace(args=SimpleNamespace(output_dir=str(folder)), state=SimpleNamespace(global_step=last))


def test_item14_exported_folder_is_named_for_the_checkpoint_it_holds(tmp_path: Path) -> None:
    """select: best on a 30-epoch run whose validation loss is lowest at epoch 5 exports epoch 5's weights to
    scored/epoch-5, not scored/epoch-30; targets that select the same checkpoint share its folder."""
    from harness.results import LogPoint
    from harness.train.checkpoints import select_checkpoints

    per_epoch = 4  # steps; validation every half epoch, lowest at step 22 (epoch 5.5), then at step 20 (epoch 5)
    val = {s: abs(s - 22) / 10 + (0.5 if s % per_epoch else 0.0) for s in range(2, 121, 2)}
    val[22] = 0.01
    rows = [LogPoint(s, s / per_epoch, "validation", v) for s, v in val.items()]
    trainer = _fake_trainer(tmp_path / "trainer", [20, 22, 40, 100, 120], last=120)
    out = tmp_path / "out"
    best = select_checkpoints(trainer, rows, (10, 30), per_epoch, "best", out)  # type: ignore[arg-type]
    assert best[30].step == best[10].step == 22 and best[30].epoch == 5.5
    assert best[30].path == best[10].path == str(out / "scored" / "epoch-5.5")
    assert sorted(p.name for p in (out / "scored").iterdir()) == ["epoch-5.5"]
    assert (out / "scored" / "epoch-5.5" / "model.safetensors").read_text() == "weights of step 22"
    assert not (out / "scored" / "epoch-5.5" / "optimizer.pt").exists()
    val[22] = 1.0  # now epoch 5 is the best
    rows = [LogPoint(s, s / per_epoch, "validation", v) for s, v in val.items()]
    best = select_checkpoints(trainer, rows, (30,), per_epoch, "best", tmp_path / "again")  # type: ignore[arg-type]
    assert best[30].path == str(tmp_path / "again" / "scored" / "epoch-5") and best[30].epoch == 5.0
    assert (Path(best[30].path) / "model.safetensors").read_text() == "weights of step 20"
    last = select_checkpoints(trainer, rows, (10, 25, 30), per_epoch, "last", tmp_path / "last")  # type: ignore[arg-type]
    assert Path(str(last[10].path)).name == "epoch-10" and last[30].path is None  # the final state, in memory
    assert Path(str(last[25].path)).name == "epoch-25" and last[25].step == 100


@pytest.mark.parametrize("method", ["full", "lora"])
def test_the_scored_checkpoint_is_the_one_its_validation_loss_was_logged_for(tmp_path: Path, method: str) -> None:
    """Loading the selected checkpoint gives back exactly the model whose validation loss chose it."""
    out = trained(tmp_path, method, lr=3e-2 if method == "full" else 5e-2, epochs=5, select="best")
    step = out.outcome.scored.step
    nll = LocalModel(out.model, out.tokenizer, name="t").reference_nll(VAL)
    assert sum(n for n, _ in nll) / sum(c for _, c in nll) == pytest.approx(validation(out)[step], rel=2e-3)


def test_early_stopping_stops_within_patience_of_the_minimum(tmp_path: Path) -> None:
    out = trained(tmp_path, epochs=14, early_stopping={"patience": 2, "min_delta": 0.0})
    val = {s: v for s, v in validation(out).items() if s > 0}
    lowest, stopped = min(val, key=val.get), max(val)
    assert stopped < 14 * 4 and out.outcome.stopped.reason.startswith("early stopping")
    assert (stopped - lowest) // 4 == 2  # two evaluations (one per epoch, 4 steps each) without improvement
    assert out.outcome.stopped.step == stopped and out.outcome.scored.step == stopped  # select: last


def test_keep_all_keeps_every_checkpoint(tmp_path: Path) -> None:
    trained(tmp_path, epochs=3, keep_checkpoints="all")
    kept = sorted(p.name for p in (tmp_path / "full-last" / "trainer").glob("checkpoint-*"))
    assert kept == ["checkpoint-12", "checkpoint-4", "checkpoint-8"]
    assert all((tmp_path / "full-last" / "trainer" / k / "model.safetensors").is_file() for k in kept)


def test_a_qlora_checkpoint_folder_loads_on_the_4bit_base(tmp_path: Path) -> None:
    """load_checkpoint puts an adapter on a 4-bit base for qlora (the CPU path of bitsandbytes)."""
    pytest.importorskip("bitsandbytes")
    from harness.models.resolve import ModelRef, build_tiny, load_tokenizer

    folder = tmp_path / "tiny"
    build_tiny().save_pretrained(folder, safe_serialization=True)
    load_tokenizer(TINY).save_pretrained(folder)
    ref = ModelRef("tiny-folder", "local", str(folder), "x")
    spec = TrainSpec(max_seq_length=64, batch_size=4, eval_every_epochs=1.0, select="best")
    v = Variant("q", "q", "qlora", rank=8, epochs=2, learning_rate=5e-2, seed=0)
    try:
        out = train_for_scoring(ref, v, spec, TRAIN, VAL, tmp_path / "runs")
    except RuntimeError as exc:
        pytest.skip(f"4-bit training is not available here: {exc}")
    model, _ = load_checkpoint(ref, Path(out.outcome.stats.artifact), "qlora")
    assert any("4bit" in type(m).__name__ for m in model.modules())
    assert out.outcome.scored.step in validation(out)
    quant, peft = out.outcome.quantization, out.outcome.peft  # the configs it loaded and trained with, recorded
    assert quant is not None and (quant["load_in_4bit"], quant["bnb_4bit_quant_type"]) == (True, "nf4")
    assert quant["bnb_4bit_compute_dtype"] == "float32" and peft is not None and peft["r"] == 8


# -- end to end ------------------------------------------------------------------------------------------------
SPEC = """\
name: ckpt
model: tiny-random-llama
data: {train: train.jsonl, validation: val.jsonl, test: test.jsonl}
sweep: {method: [lora], rank: [4], epochs: [1, 2, 3], learning_rate: [5.0e-2]}
train: {max_seq_length: 64, batch_size: 4, eval_every_epochs: 1.0, epochs_from_one_run: true}
suites:
  - name: heldout
    options: {max_new_tokens: 4}
"""


def _experiment(folder: Path, spec: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", TRAIN), ("val", codes(10, 100, 1)), ("test", codes(10, 300, 3))):
        write_jsonl(folder / f"{name}.jsonl", [{"messages": m} for m in rows])
    (folder / "spec.yaml").write_text(spec)
    return folder / "spec.yaml"


def test_epochs_from_one_run_scores_each_epoch_of_one_training(tmp_path: Path) -> None:
    spec = _experiment(tmp_path)
    db = tmp_path / "r.duckdb"
    rid = run_sweep(spec, db, progress=Quiet(), out=open(tmp_path / "out.txt", "w"))
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants").set_index("name")
        log = s.run_table(rid, "train_log")
    names = ["lora-r4-e1of3", "lora-r4-e2of3", "lora-r4-e3of3"]
    assert list(v.index) == ["base", *names] and set(v["status"]) == {"finished"}, v["error"]
    assert list(v.loc[names, "scored_step"]) == [4, 8, 12] and list(v.loc[names, "scored_epoch"]) == [1.0, 2.0, 3.0]
    logs = [log[log.variant_id == v.loc[n, "variant_id"]].drop(columns="variant_id").sort_values(["step", "split"])
            .reset_index(drop=True) for n in names]
    assert logs[0].equals(logs[1]) and logs[0].equals(logs[2])  # one training, one log
    assert logs[0]["step"].max() == 12  # the longest run's steps, once
    assert v.loc[names, "train_seconds"].notna().sum() == 1  # its cost is recorded where it ran
    groups = {v.loc[n, "config"]["one_run"]["group"] for n in names}
    assert len(groups) == 1 and "learning-rate schedule of the 3-epoch run" in v.loc[names[0], "config"]["one_run"]["schedule"]
    separate = Sweep(_experiment(tmp_path / "sep", SPEC.replace("epochs_from_one_run: true", "epochs_from_one_run: false")))
    assert not {x.variant_id for x in separate.all_variants[1:]} & set(v.loc[names, "variant_id"])


KILL = """
import os, signal, sys
from harness.train import checkpoints
def on_save(self, args, state, control, **kw):
    if state.global_step >= 4:
        os.kill(os.getpid(), signal.SIGKILL)
checkpoints.EpochBoundaries.on_save = on_save
from harness.progress import Quiet
from harness.sweep.runner import run_sweep
run_sweep(sys.argv[1], sys.argv[2], progress=Quiet(), out=open(os.devnull, "w"))
"""


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    one = SPEC.replace("epochs: [1, 2, 3]", "epochs: [3]").replace("epochs_from_one_run: true", "select: last")
    killed, clean = _experiment(tmp_path / "killed", one), _experiment(tmp_path / "clean", one)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILL, str(killed), str(tmp_path / "killed" / "r.duckdb")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = list((tmp_path / "killed" / "runs").glob("*/trainer/checkpoint-4"))
    assert ckpts, "the first epoch's checkpoint was saved before the kill"
    results = {}
    for name, spec in (("killed", killed), ("clean", clean)):
        db = spec.parent / "r.duckdb"
        rid = run_sweep(spec, db, progress=Quiet(), out=open(spec.parent / "out.txt", "w"))
        with Store(db, read_only=True) as s:
            v = s.run_table(rid, "variants").set_index("name")
            scores = s.run_table(rid, "scores")
            log = s.run_table(rid, "train_log")
        vid = v.loc["lora-r4-e3", "variant_id"]
        results[name] = (v.loc["lora-r4-e3"], scores[scores.variant_id == vid].set_index("metric")["value"],
                         log[log.variant_id == vid])
    (row_k, sc_k, log_k), (row_c, sc_c, log_c) = results["killed"], results["clean"]
    assert row_k["config"]["training"]["resumed_from"] == "checkpoint-4" and row_c["config"]["training"]["resumed_from"] is None
    assert row_k["config"]["training"]["steps"] == 12
    assert sorted(log_k["step"]) == sorted(log_c["step"])  # the log before the kill came back from the checkpoint
    assert sc_k["loss"] == pytest.approx(sc_c["loss"], rel=1e-3)
    assert json.dumps(sorted(log_k[log_k.split == "validation"]["loss"].round(3))) == \
        json.dumps(sorted(log_c[log_c.split == "validation"]["loss"].round(3)))
