"""The search space (the sweep's distributions, and its lists as choices) in Optuna's terms; a trial's values -> the
variant they make, with the content-addressed id a grid would give the same values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError
from harness.spec.distributions import Distribution
from harness.spec.plan import Variant, make_plan
from harness.spec.schema import ExperimentSpec
from harness.spec.search import SEARCHABLE, SearchSpec

if TYPE_CHECKING:
    from optuna import Study
    from optuna.distributions import BaseDistribution

Params = dict[str, float | int]


def optuna() -> ModuleType:
    """The `optuna` module, or an error that says how to install it."""
    try:
        import optuna as module
    except ImportError:
        raise HarnessInputError("search.algorithm random / tpe samples with Optuna: "
                                "pip install 'finetune-harness[search]'") from None
    module.logging.set_verbosity(module.logging.WARNING)
    return module


def space(spec: ExperimentSpec) -> dict[str, BaseDistribution]:
    """Each searched key as an Optuna distribution: the distributions, and the lists with more than one value."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for key in SEARCHABLE:
        v = getattr(spec.sweep, key)
        if isinstance(v, Distribution):
            low, high = (v.bounds + [0, 0])[:2]
            whole = key != "learning_rate"
            if v.kind == "choice":
                out[key] = CategoricalDistribution([int(x) if whole else float(x) for x in v.bounds])
            elif v.kind == "int":
                out[key] = IntDistribution(int(low), int(high))
            else:
                out[key] = FloatDistribution(low, high, log=v.kind == "loguniform")
        elif len(v) > 1:
            out[key] = CategoricalDistribution(list(v))
    return out


def describe(spec: ExperimentSpec) -> list[str]:
    """One line per key of the space: searched (its distribution) or fixed (its value)."""
    lines = []
    for key in SEARCHABLE:
        v = getattr(spec.sweep, key)
        lines.append(f"  {key}: {v.describe() if isinstance(v, Distribution) else ('choice ' if len(v) > 1 else '') + str(v)}")
    return lines


def new_study(search: SearchSpec) -> Study:
    """An in-memory study with the search's seeded sampler; a rerun rebuilds it by asking the same trials in the same
    order and telling it the stored results, so its next suggestions are those an uninterrupted search makes."""
    opt = optuna()
    sampler = (opt.samplers.TPESampler(seed=search.seed) if search.algorithm == "tpe"
               else opt.samplers.RandomSampler(seed=search.seed))
    return opt.create_study(direction="minimize", sampler=sampler)


def trial_variant(spec: ExperimentSpec, params: Mapping[str, float | int], model_identity: str,
                  fingerprints: dict[str, str], suites: Sequence[Mapping[str, object]]) -> Variant:
    """The variant of one trial's values: planned as a one-point grid, so its id is the one a grid gives them."""
    fixed = {k: [params[k]] for k in SEARCHABLE if k in params}
    concrete = spec.model_copy(update={"search": None, "sweep": spec.sweep.model_copy(update=fixed)})
    variant = make_plan(concrete, model_identity, fingerprints, suites)[1]
    name = variant.method + (f"-r{variant.rank}" if variant.rank is not None else "") + f"-e{variant.epochs}"
    name += f"-lr{variant.learning_rate:.3g}" if variant.learning_rate is not None else ""
    return replace(variant, name=name + (f"-s{variant.seed}" if "seed" in params else ""))
