"""The spec's `search:` block: how a sweep samples its space, stops variants early and selects (docs/search.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.spec.distributions import Distribution
from harness.spec.sections import SweepSpec, TrainSpec

SEARCHABLE = ("rank", "epochs", "learning_rate", "seed")  # the sweep keys that may be distributions
VALIDATION_METRICS = ("validation_loss",)
# Names that are measured on the test set (the held-out suite's metrics, or anything named after the test split):
# a search never selects on them.
_TEST_NAMED = ("test", "heldout", "exact_match", "field_accuracy", "rouge", "bleu", "chrf", "accuracy", "acc")


class SearchSpec(BaseModel):
    """How a sweep searches its space: the sampler, how many trials, its seed, and an early-elimination scheduler."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["grid", "random", "tpe"] = "grid"
    trials: int | None = Field(default=None, ge=1)  # random / tpe: how many variants to try (grid: the grid's size)
    seed: int = 0  # the sampler's seed: the same seed and space give the same trials
    scheduler: Literal["asha"] | None = None  # asha: stop the unpromising variants at rung boundaries (epochs)
    grace_period: int = Field(default=1, ge=1)  # the first rung, in epochs
    reduction_factor: int = Field(default=3, ge=2)  # each rung keeps the best 1/reduction_factor
    metric: str = "validation_loss"  # what trials are compared on: validation data only
    # a stopped variant is scored on the suites that read no test data (divergence: its train and validation
    # losses up to the rung); false: not scored at all
    score_stopped: bool = True

    @field_validator("metric")
    @classmethod
    def _validation_only(cls, v: str) -> str:
        if v in VALIDATION_METRICS:
            return v
        if any(word in v.lower() for word in _TEST_NAMED):
            raise ValueError(f"{v!r} is measured on the test set; a search selects on validation data only, so the "
                             "winner's test figures stay an unbiased estimate (choosing on test and reporting the same "
                             "test score overstates it). Use metric: validation_loss (docs/search.md)")
        raise ValueError(f"unknown metric {v!r}; a search compares variants on {', '.join(VALIDATION_METRICS)}")

    @property
    def drives(self) -> bool:
        """Whether harness.search runs the trials (a sampler or a scheduler); a plain grid runs as any sweep does."""
        return self.samples or self.scheduler is not None

    @property
    def samples(self) -> bool:
        """Whether trials are drawn by a sampler (random, tpe) rather than read off the grid."""
        return self.algorithm != "grid"


def search_problems(sweep: SweepSpec, search: SearchSpec | None, train: TrainSpec,
                    at: Callable[..., str]) -> list[str]:
    """What no single key shows: distributions without a search, a search's method, trials and rungs."""
    dists = [k for k in SEARCHABLE if isinstance(getattr(sweep, k), Distribution)]
    if search is None:
        return [f"{at('sweep', k)}: key 'sweep.{k}' is a distribution; add 'search: {{algorithm: random, trials: N}}' "
                "(or tpe), or give a list of values for a grid" for k in dists]
    problems = []
    if search.algorithm == "grid" and dists:
        problems += [f"{at('sweep', k)}: key 'sweep.{k}' is a distribution, which a grid cannot enumerate; set "
                     "'search.algorithm: random' (or tpe) with 'search.trials: N', or list the values" for k in dists]
    if search.samples and search.trials is None:
        problems.append(f"{at('search')}: key 'search.trials' is required with algorithm {search.algorithm} "
                        "(how many variants to try, e.g. trials: 9)")
    methods = list(sweep.method)
    if len(methods) != 1 or methods[0] not in ("lora", "qlora", "full"):
        problems.append(f"{at('sweep', 'method')}: key 'sweep.method': a search trains one local method (lora, "
                        f"qlora or full); got {methods}. Run other methods in a spec of their own")
    if train.epochs_from_one_run:
        problems.append(f"{at('train', 'epochs_from_one_run')}: key 'train.epochs_from_one_run' does not combine "
                        "with 'search:'; remove one of them")
    if search.scheduler is None:
        return problems
    epochs = sweep.epochs
    if not isinstance(epochs, list) or len(epochs) != 1:
        problems.append(f"{at('sweep', 'epochs')}: key 'sweep.epochs': with 'search.scheduler: asha' the epochs are "
                        "the scheduler's resource; give one value, the most a variant trains (e.g. epochs: [4])")
    elif search.grace_period >= epochs[0]:
        problems.append(f"{at('search', 'grace_period')}: key 'search.grace_period' ({search.grace_period}) must be "
                        f"below sweep.epochs ({epochs[0]}), or no variant is ever stopped early")
    if train.early_stopping is not None:
        problems.append(f"{at('train', 'early_stopping')}: key 'train.early_stopping' does not combine with "
                        "'search.scheduler: asha' (both stop training early); keep one")
    if train.max_steps is not None:
        problems.append(f"{at('train', 'max_steps')}: key 'train.max_steps' does not combine with "
                        "'search.scheduler: asha', whose rungs are epochs; remove it")
    return problems
