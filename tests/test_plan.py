"""The plan: pruning, base first, and ids that are stable and change with what decides a result."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.spec.plan import make_plan, select
from harness.spec.schema import ExperimentSpec

FP = {"train": "t", "validation": "v", "test": "x"}


def spec(**sweep: object) -> ExperimentSpec:
    return ExperimentSpec.model_validate({"name": "p", "data": {"train": "a", "test": "b"}, "sweep": sweep})


def test_rank_is_pruned_for_full_and_base_comes_first() -> None:
    plan = make_plan(spec(method=["lora", "full"], rank=[2, 4], epochs=[1, 2]), "m", FP, [])
    assert [v.name for v in plan] == ["base", "lora-r2-e1", "lora-r2-e2", "lora-r4-e1", "lora-r4-e2",
                                      "full-e1", "full-e2"]
    assert len({v.variant_id for v in plan}) == len(plan)


def test_names_show_lr_and_seed_only_when_they_vary() -> None:
    plan = make_plan(spec(method=["full"], learning_rate=[1e-4, 2e-4], seed=[0, 1]), "m", FP, [])
    assert plan[1].name == "full-e1-lr1e-4-s0"


@settings(max_examples=40, deadline=None)
@given(ranks=st.lists(st.integers(1, 64), min_size=1, max_size=3, unique=True),
       epochs=st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True),
       seeds=st.lists(st.integers(0, 9), min_size=1, max_size=2, unique=True))
def test_ids_are_stable_and_unique(ranks: list[int], epochs: list[int], seeds: list[int]) -> None:
    s = spec(method=["lora", "qlora", "full"], rank=ranks, epochs=epochs, seed=seeds)
    a = make_plan(s, "m", FP, [{"name": "heldout", "version": "1"}])
    b = make_plan(s, "m", FP, [{"name": "heldout", "version": "1"}])
    assert [v.variant_id for v in a] == [v.variant_id for v in b]
    assert len(a) == 1 + len(ranks) * len(epochs) * len(seeds) * 2 + len(epochs) * len(seeds)
    assert len({v.variant_id for v in a}) == len(a)


@settings(max_examples=25, deadline=None)
@given(change=st.sampled_from(["model", "data", "suite", "train"]))
def test_ids_change_with_what_decides_the_result(change: str) -> None:
    s = spec(method=["lora"], rank=[4])
    ref = make_plan(s, "m", FP, [{"v": 1}])[1].variant_id
    if change == "model":
        other = make_plan(s, "m2", FP, [{"v": 1}])
    elif change == "data":
        other = make_plan(s, "m", {**FP, "train": "t2"}, [{"v": 1}])
    elif change == "suite":
        other = make_plan(s, "m", FP, [{"v": 2}])
    else:
        s2 = s.model_copy(update={"train": s.train.model_copy(update={"batch_size": 4})})
        other = make_plan(s2, "m", FP, [{"v": 1}])
    assert other[1].variant_id != ref


def test_training_settings_do_not_change_base() -> None:
    s = spec(method=["lora"])
    s2 = s.model_copy(update={"train": s.train.model_copy(update={"batch_size": 4})})
    assert make_plan(s, "m", FP, [])[0].variant_id == make_plan(s2, "m", FP, [])[0].variant_id


def test_select_keeps_base() -> None:
    plan = make_plan(spec(method=["lora", "full"], rank=[2]), "m", FP, [])
    chosen = select(plan, ["full-e1"])
    assert [v.name for v in chosen] == ["base", "full-e1"]
    assert select(plan, [plan[1].variant_id[:6]])[1].name == "lora-r2-e1"


def test_example_spec_parses() -> None:
    from harness.spec.schema import load_spec

    s = load_spec(Path(__file__).resolve().parent.parent / "experiments/acme-support/spec.yaml")
    assert s.name == "acme-support"


def test_openai_variants_ignore_learning_rate() -> None:
    s = ExperimentSpec.model_validate({"name": "o", "model": "openai:gpt-4o-mini-2024-07-18",
                                       "data": {"train": "a", "test": "b"},
                                       "sweep": {"method": ["openai"], "epochs": [1, 3], "learning_rate": [1e-4, 2e-4]}})
    plan = make_plan(s, "m", FP, [])
    assert [v.name for v in plan] == ["base", "openai-e1", "openai-e3"]
    assert all(v.learning_rate is None for v in plan)
