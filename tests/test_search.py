"""Searched sweeps (harness.search): the spec's distributions and `search:` block, ids, rung decisions, selection on
validation only; the trained searches themselves are in tests/test_search_train.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.errors import HarnessInputError
from harness.results import LogPoint, VariantResult, VariantRow
from harness.search.rungs import decide, rung_epochs
from harness.search.space import new_study, space, trial_variant
from harness.spec.plan import make_plan
from harness.spec.schema import load_spec
from harness.spec.search import SearchSpec
from harness.store.db import Store
from harness.store.reads import load_run
from harness.testing.rows import typed_suites
from harness.verdicts.recommend import recommend

HEAD = """\
name: s
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
"""
FP = {"train": "t", "validation": "v", "test": "x"}


def spec_at(tmp_path: Path, body: str):  # noqa: ANN201 - an ExperimentSpec
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_spec(path)


def problems(tmp_path: Path, body: str) -> str:
    with pytest.raises(HarnessInputError) as exc:
        spec_at(tmp_path, body)
    return "\n".join(exc.value.problems)


def test_a_grid_search_plans_the_same_ids_as_the_plain_grid(tmp_path: Path) -> None:
    grid = "sweep: {method: [lora], rank: [2, 4], learning_rate: [1.0e-3, 1.0e-2], epochs: [3]}\n"
    plain = make_plan(spec_at(tmp_path, grid), "m", FP, [])
    for search in ("search: {algorithm: grid}\n",
                   "search: {algorithm: grid, scheduler: asha, grace_period: 1, reduction_factor: 2}\n"):
        searched = make_plan(spec_at(tmp_path, grid + search), "m", FP, [])
        assert [(v.variant_id, v.name) for v in searched] == [(v.variant_id, v.name) for v in plain]
    assert len(plain) == 5


def test_a_sampled_trial_has_the_id_a_grid_gives_its_values(tmp_path: Path) -> None:
    spec = spec_at(tmp_path, "sweep: {method: [lora], rank: {choice: [2, 4]}, learning_rate: {loguniform: [1.0e-4, "
                             "1.0e-2]}}\nsearch: {algorithm: random, trials: 5, seed: 3}\n")
    assert [v.name for v in make_plan(spec, "m", FP, [])] == ["base"]  # trials come from the search, run by run
    study = new_study(spec.search)
    trial = study.ask(space(spec))
    v = trial_variant(spec, trial.params, "m", FP, [])
    lr, rank = trial.params["learning_rate"], trial.params["rank"]
    grid = spec_at(tmp_path, f"sweep: {{method: [lora], rank: [{rank}], learning_rate: [{lr!r}]}}\n")
    twin = make_plan(grid, "m", FP, [])[1]
    assert v.variant_id == twin.variant_id and (v.rank, v.learning_rate) == (rank, lr)
    again = new_study(spec.search).ask(space(spec)).params  # seeded: the same first suggestion
    assert again == trial.params


def test_spec_problems_name_their_keys(tmp_path: Path) -> None:
    text = problems(tmp_path, "sweep: {learning_rate: {loguniform: [1.0e-5, 1.0e-3]}}\n")
    assert "sweep.learning_rate" in text and "search:" in text
    text = problems(tmp_path, "sweep: {learning_rate: {loguniform: [1.0e-5, 1.0e-3]}}\nsearch: {algorithm: grid}\n")
    assert "grid cannot enumerate" in text
    assert "search.trials" in problems(tmp_path, "sweep: {rank: {choice: [2, 4]}}\nsearch: {algorithm: tpe}\n")
    text = problems(tmp_path, "sweep: {epochs: [1, 3]}\nsearch: {algorithm: grid, scheduler: asha}\n")
    assert "sweep.epochs" in text and "one value" in text
    assert "search.grace_period" in problems(tmp_path, "sweep: {epochs: [2]}\nsearch: {scheduler: asha, "
                                                       "grace_period: 2}\n")
    assert "sweep.method" in problems(tmp_path, "sweep: {method: [lora, full]}\nsearch: {algorithm: grid, "
                                                "scheduler: asha}\n")
    assert "sweep.rank" in problems(tmp_path, "sweep: {rank: {loguniform: [2, 8]}}\nsearch: {algorithm: random, "
                                              "trials: 2}\n")


@pytest.mark.parametrize("metric", ["exact_match", "test_loss", "heldout/rougeL"])
def test_selecting_on_a_test_metric_is_refused(tmp_path: Path, metric: str) -> None:
    text = problems(tmp_path, f"sweep: {{epochs: [3]}}\nsearch: {{scheduler: asha, metric: {metric}}}\n")
    assert "search.metric" in text and "measured on the test set" in text and "validation_loss" in text
    assert SearchSpec(metric="validation_loss").metric == "validation_loss"


def test_rungs_keep_the_best_share_and_say_why() -> None:
    assert rung_epochs(1, 3, 4) == [1, 3] and rung_epochs(1, 2, 8) == [1, 2, 4] and rung_epochs(2, 3, 2) == []
    values = {"a": 2.0, "b": 1.0, "c": math.nan, "d": 3.0, "e": 1.5, "f": 2.5, "g": 9.0, "h": 0.5, "i": 4.0}
    d = decide(1, 1, values, 3)
    assert d.kept == ["h", "b", "e"] and set(d.stopped) == set(values) - {"h", "b", "e"}
    assert d.stopped["g"] == ("stopped by ASHA at epoch 1: validation loss 9, rung 1 keeps the best 3 of 9 (1/3; "
                              "the last kept had 1.5)")
    assert "nan (diverged)" in d.stopped["c"]
    assert decide(3, 2, {"x": 1.0, "y": 1.0}, 3).kept == ["x"]  # a tie keeps the earlier trial; at least one


def _variant(vid: str, name: str, method: str, val: float, exact: float) -> VariantResult:
    log = [LogPoint(0, 0.0, "validation", 3.0), LogPoint(2, 1.0, "train", 2.0), LogPoint(2, 1.0, "validation", val)]
    scores = [{"suite": "heldout", "metric": "exact_match", "value": exact, "ci_low": exact, "ci_high": exact, "n": 10,
               "scorer": {"kind": "heldout", "args": {}}}]
    row = VariantRow(vid, name=name, method=method, epochs=1 if method != "base" else None, status="finished",
                     train_seconds=1.0, scored_step=2 if method != "base" else None)
    return VariantResult(row, log if method != "base" else [], typed_suites(scores, []))  # type: ignore[arg-type]


@pytest.mark.parametrize("searched", [True, False])
def test_the_winner_is_never_chosen_on_test(tmp_path: Path, searched: bool) -> None:
    """Planted: `good-on-test` has the best held-out exact match but the worse validation loss. A searched run picks
    on validation; the same rows without `search:` pick on test as the report always has (so the case is real)."""
    spec = "name: s\nsweep: {learning_rate: [1.0e-3, 1.0e-2], epochs: [2]}\n"
    spec += "search: {algorithm: grid, scheduler: asha, grace_period: 1}\n" if searched else ""
    with Store(tmp_path / "r.duckdb") as store:
        rid = store.start_run({"name": "s", "spec": spec, "suites": [{"name": "heldout", "kind": "heldout"}]})
        rows = [_variant("b0", "base", "base", 0, 0.0), _variant("t1", "good-on-test", "lora", 2.0, 0.9),
                _variant("v1", "good-on-validation", "lora", 1.5, 0.1)]
        for r in rows:
            store.write_variant(r)
        store.link_variants(rid, [r.variant_id for r in rows], [False] * 3)
        rec = recommend(load_run(store, rid))
    if searched:
        assert rec.variant_id == "v1", rec.reason
        assert "2 variants tried" in rec.reason and "untouched by the selection" in rec.reason
        assert "validation loss (1.5000)" in rec.reason and "Trained 4 of 4 planned steps" in rec.reason
    else:
        assert rec.variant_id == "t1", rec.reason


@pytest.mark.slow  # three sweeps' setup and base scoring: about 40 s of CPU
def test_tpe_replays_the_store_and_makes_the_uninterrupted_suggestions(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """TPE's suggestions after its 10 random start-up trials depend on the results told to it. Trials are planted
    (their training replaced by a result whose validation loss is a function of the learning rate); a search killed at
    trial 11 and rerun trains only trials 11 and 12, and they are the ones the uninterrupted search drew."""
    from conftest import make_rows, write_jsonl

    import harness.search.driver as driver
    from harness.progress import Quiet
    from harness.results import finish_row
    from harness.sweep.runner import run_sweep

    def planted(kill_at: int | None, calls: list[float]):  # noqa: ANN202
        def train_whole(run: driver.SearchRun, v):  # noqa: ANN001, ANN202
            calls.append(v.learning_rate)
            if kill_at is not None and len(calls) == kill_at:
                raise KeyboardInterrupt
            loss = (math.log10(v.learning_rate) + 3.0) ** 2 + 1.0  # best at 1e-3
            log = [LogPoint(0, 0.0, "validation", 5.0), LogPoint(1, 1.0, "validation", loss)]
            result = VariantResult(replace(finish_row(run.task(v).planned(), driver.RunParts(), "finished"),
                                           scored_step=1, train_seconds=1.0), log)
            run.store_result(v, result)
            return result
        return train_whole

    from dataclasses import replace

    write_jsonl(tmp_path / "train.jsonl", make_rows(20))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD.replace("validation: 0.25", "validation: 0.5") + "sweep: {method: [lora], learning_rate: "
                    "{loguniform: [1.0e-5, 1.0e-1]}}\nsearch: {algorithm: tpe, trials: 12, seed: 5}\nsuites: []\n",
                    encoding="utf-8")
    out = open(tmp_path / "out.txt", "w")  # noqa: SIM115

    def lrs(db: Path) -> list[float]:
        with Store(db, read_only=True) as s:
            v = s.run_table(s.resolve_run("latest"), "variants")
        return list(v[v.method == "lora"]["learning_rate"])

    whole: list[float] = []
    monkeypatch.setattr(driver, "_train_whole", planted(None, whole))
    run_sweep(spec, tmp_path / "a.duckdb", progress=Quiet(), out=out)
    killed: list[float] = []
    monkeypatch.setattr(driver, "_train_whole", planted(11, killed))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "b.duckdb", progress=Quiet(), out=out)
    rerun: list[float] = []
    monkeypatch.setattr(driver, "_train_whole", planted(None, rerun))
    run_sweep(spec, tmp_path / "b.duckdb", progress=Quiet(), out=out)
    assert len(whole) == 12 and killed == whole[:11] and rerun == whole[10:]
    assert lrs(tmp_path / "b.duckdb") == lrs(tmp_path / "a.duckdb") == whole
