"""Searched sweeps that train (tiny-random-llama, one step per epoch): ASHA stops the planted useless learning rates
at the first rung and picks the full grid's winner for under half its steps; a search killed part way continues
without retraining anything and with the suggestions an uninterrupted search makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_rows, write_jsonl

import harness.train.local as local
from harness.progress import Quiet
from harness.search.space import new_study, space
from harness.spec.schema import load_spec
from harness.store.db import Store
from harness.store.reads import load_run
from harness.sweep.runner import run_sweep
from harness.verdicts.recommend import recommend

pytestmark = pytest.mark.slow

USELESS = [1.0e-9, 2.0e-9, 5.0e-9]  # planted: these learn nothing in 4 steps
RATES = [1.0e-9, 3.0e-2, 2.0e-9, 1.0e-1, 5.0e-9, 2.0e-1, 1.0e-2, 5.0e-2, 5.0e-3]
HEAD = """\
name: search
model: tiny-random-llama
data: {train: train.jsonl, validation: val.jsonl, test: test.jsonl}
train: {max_seq_length: 48, batch_size: 10}
suites:
  - name: heldout
    options: {max_new_tokens: 2}
"""


def folder(tmp_path: Path, sweep: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp_path / "train.jsonl", make_rows(10))  # 10 examples, batch 10: one step per epoch
    write_jsonl(tmp_path / "val.jsonl", make_rows(10, offset=50))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + sweep, encoding="utf-8")
    return spec


def sweep(spec: Path, db: Path) -> str:
    rid = run_sweep(spec, db, progress=Quiet(), out=open(spec.parent / "out.txt", "w"))  # noqa: SIM115
    assert rid is not None
    return rid


class Calls:
    """Counts local trainings (harness.train.local.train_variant), by variant and by pause epoch."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on: int | None = None):
        self.calls: list[tuple[str, int | None]] = []
        real = local.train_variant

        def counted(*args: object, **kw: object) -> local.TrainOutput:
            v = args[1]
            self.calls.append((v.variant_id, kw.get("pause_at")))  # type: ignore[attr-defined]
            if fail_on is not None and len(self.calls) == fail_on:
                raise KeyboardInterrupt  # a kill in the middle of this trial's training
            return real(*args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(local, "train_variant", counted)


def test_asha_stops_the_useless_rates_and_picks_the_grids_winner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = f"sweep: {{method: [lora], rank: [2], epochs: [4], learning_rate: {RATES}}}\n"
    spec = folder(tmp_path / "asha", grid + "search: {algorithm: grid, scheduler: asha, grace_period: 1, "
                                           "reduction_factor: 3}\n")
    calls = Calls(monkeypatch)
    rid = sweep(spec, tmp_path / "asha" / "r.duckdb")
    with Store(tmp_path / "asha" / "r.duckdb", read_only=True) as s:
        data = load_run(s, rid)
    v = data.variants[data.variants.method == "lora"]
    assert len(v) == 9 and set(v.status) == {"finished", "stopped"}
    stopped = v[v.status == "stopped"]
    at_first = stopped[stopped.stop_reason.str.contains("at epoch 1:")]
    assert len(at_first) == 6 and set(USELESS) <= set(at_first.learning_rate)
    assert at_first.stop_reason.str.contains("rung 1 keeps the best 3 of 9").all()
    log = data.train_log
    for vid in at_first.variant_id:  # stored with their train log up to the rung, scored on validation only
        assert log[log.variant_id == vid].step.max() == 1
        scored = data.scores[data.scores.variant_id == vid]
        assert set(scored.suite) == {"divergence"} and not scored.empty  # no suite read the test set
        assert data.examples[data.examples.variant_id == vid].empty
    later = v[~v.variant_id.isin(at_first.variant_id)]
    assert len(later) == 3 and not set(USELESS) & set(later.learning_rate)
    assert all(log[log.variant_id == vid].step.max() >= 3 for vid in later.variant_id)  # trained on
    winner = v[v.status == "finished"]
    assert len(winner) == 1
    rec = recommend(data)
    assert rec.variant_id == winner.variant_id.iloc[0]
    trained = int(sum(log[log.variant_id == vid].step.max() for vid in v.variant_id))
    assert trained == 9 * 1 + 3 * 2 + 1 * 1 == 16 and trained <= 36 / 2  # against 9 x 4 for the grid
    assert "Trained 16 of 36 planned steps (44%)" in rec.reason and "9 variants tried, 8 stopped early" in rec.reason
    assert sum(p is not None for _, p in calls.calls) == 9 + 3  # rung trainings; then one survivor's to the end
    assert len(calls.calls) == 13

    ray = pytest.importorskip("ray")  # the same search under --executor ray (local Ray) stops the same variants
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = folder(tmp_path / "ray", grid + "search: {algorithm: grid, scheduler: asha, grace_period: 1, "
                                                 "reduction_factor: 3, score_stopped: false}\n")
        rid = run_sweep(on_ray, tmp_path / "ray" / "r.duckdb", executor="ray", progress=Quiet(),
                        out=open(on_ray.parent / "out.txt", "w"))  # noqa: SIM115
    finally:
        ray.shutdown()
    assert rid is not None
    with Store(tmp_path / "ray" / "r.duckdb", read_only=True) as s:
        r = load_run(s, rid)
    rv = r.variants[r.variants.method == "lora"].set_index("variant_id")
    assert rv.status.to_dict() == v.set_index("variant_id").status.to_dict()
    loss = r"\d+\.\d+(e[-+]?\d+)?"  # the losses may differ in their last bits (a Ray worker's thread count)
    assert rv.stop_reason.str.replace(loss, "L", regex=True).to_dict() == \
        v.set_index("variant_id").stop_reason.str.replace(loss, "L", regex=True).to_dict()
    assert r.scores[r.scores.variant_id.isin(stopped.variant_id)].empty  # score_stopped: false scores none

    full = folder(tmp_path / "grid", grid)  # the same data and variants, every one trained to the end
    gid = sweep(full, tmp_path / "grid" / "r.duckdb")
    with Store(tmp_path / "grid" / "r.duckdb", read_only=True) as s:
        g = load_run(s, gid)
    final = g.train_log[(g.train_log.split == "validation") & (g.train_log.step == 4)]
    assert len(final) == 9
    grid_winner = final.sort_values("loss").variant_id.iloc[0]
    assert grid_winner == winner.variant_id.iloc[0]  # the same variant id: the same concrete values


def test_a_killed_search_continues_with_the_same_suggestions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = folder(tmp_path, "sweep: {method: [lora], rank: {choice: [2, 4]}, epochs: [2], learning_rate: "
                            "{loguniform: [1.0e-3, 1.0e-1]}}\nsearch: {algorithm: random, trials: 4, seed: 7, "
                            "scheduler: asha, grace_period: 1, reduction_factor: 2}\n")
    db = tmp_path / "r.duckdb"
    killed = Calls(monkeypatch, fail_on=3)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, db)
    assert len(killed.calls) == 3
    first_two = {vid for vid, _ in killed.calls[:2]}
    monkeypatch.undo()
    again = Calls(monkeypatch)
    rid = sweep(spec, db)
    at_rung = [vid for vid, pause in again.calls if pause == 1]
    assert len(at_rung) == 2 and not first_two & set(at_rung)  # the two trained before the kill are not retrained
    assert [p for _, p in again.calls] == [1, 1, None, None]  # then the two survivors to the end
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants")
    v = v[v.method == "lora"]
    expected = new_study(load_spec(spec).search)  # an uninterrupted search's suggestions, in order
    asked = [expected.ask(space(load_spec(spec))).params for _ in range(4)]
    assert [(r, lr) for r, lr in zip(v["rank"], v["learning_rate"], strict=True)] == \
        [(p["rank"], p["learning_rate"]) for p in asked]
    assert sorted(v.status) == ["finished", "finished", "stopped", "stopped"]
    third = Calls(monkeypatch)
    sweep(spec, db)
    assert third.calls == []  # a rerun of a finished search trains nothing
