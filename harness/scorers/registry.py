"""Scorer registry: each suite kind is a registered factory whose arguments are recorded with every score,
and which declares its metrics (direction, per-example or corpus-level, primary) for everything downstream."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec

from harness.data.chat import Example
from harness.data.suites import Suite
from harness.errors import HarnessInputError, did_you_mean
from harness.models.protocol import JudgeModel, ScoringModel
from harness.results import LogPoint
from harness.scores import JSONDict, JSONValue, SuiteResult
from harness.spec.plan import Variant

if TYPE_CHECKING:
    import pandas as pd

P = ParamSpec("P")


GATE_RULES = ("max_drop", "max_rise", "min", "max")


@dataclass(frozen=True)
class Metric:
    """What a metric is; every downstream question about it (findings, gate defaults, report columns, the direction
    of a comparison) is answered here. `name` may be a shell-style pattern (e.g. 'acc:*' for per-category accuracy).

    higher_is_better: True, False, or None for descriptive numbers (e.g. the best epoch). per_example: each
    example's value is stored in `sample_scores` under the metric's name and the stored score is their mean,
    so comparisons are paired per example; otherwise the score is corpus-level (BLEU, token-weighted loss).
    primary: ranks variants; where a kind declares several, the first one a run has is used.
    finding: the findings check a paired regression against base on this metric feeds (e.g. 'forgetting'), with
    `margin` its default margin (the spec's `findings.<check>.margin` overrides it).
    gate: the default gate rule on it, (rule, limit) with rule one of max_drop, max_rise, min, max.
    column: its leaderboard column's label in the report (None: not a leaderboard column).
    """

    name: str
    higher_is_better: bool | None = True
    per_example: bool = False
    primary: bool = False
    finding: str | None = None
    margin: float = 0.0
    gate: tuple[str, float] | None = None
    column: str | None = None

    def __post_init__(self) -> None:
        if self.gate is not None and self.gate[0] not in GATE_RULES:
            raise ValueError(f"metric {self.name!r}: gate rule {self.gate[0]!r} is not one of {', '.join(GATE_RULES)}")
        if self.gate is not None and rule_contradicts(self, self.gate[0]):
            raise ValueError(f"metric {self.name!r}: default gate rule {self.gate[0]!r} contradicts its direction")
        if self.finding is not None and (self.higher_is_better is None or not self.per_example):
            raise ValueError(f"metric {self.name!r}: a finding needs a per-example metric with a direction")

    def matches(self, metric: str) -> bool:
        return metric == self.name or fnmatch.fnmatchcase(metric, self.name)

    def record(self) -> JSONDict:
        """The declaration as stored with each score, so a store read without the scorer's code still knows it."""
        return {"higher_is_better": self.higher_is_better, "per_example": self.per_example, "primary": self.primary,
                "finding": self.finding, "margin": self.margin,
                "gate": None if self.gate is None else [self.gate[0], self.gate[1]], "column": self.column}

    @classmethod
    def from_record(cls, name: str, rec: JSONDict) -> Metric:
        """A declaration read back from a stored scorer record (see `record`)."""
        gate = rec.get("gate")
        hib = rec.get("higher_is_better", True)
        margin = rec.get("margin")
        return cls(name, hib if isinstance(hib, bool) else None, bool(rec.get("per_example")),
                   bool(rec.get("primary")), str(rec["finding"]) if rec.get("finding") else None,
                   float(margin) if isinstance(margin, int | float) else 0.0,
                   (str(gate[0]), float(gate[1])) if isinstance(gate, list) and len(gate) == 2  # type: ignore[arg-type]
                   else None, str(rec["column"]) if rec.get("column") else None)


def rule_contradicts(metric: Metric, rule: str) -> bool:
    """A drop/min rule on a lower-is-better metric, or a rise/max rule on a higher-is-better one, means the opposite of
    what it says (min/max bounds are allowed either way only for descriptive metrics)."""
    if metric.higher_is_better is None:
        return False
    if metric.higher_is_better:
        return rule == "max_rise"
    return rule == "max_drop"


def right_rule(metric: Metric, rule: str) -> str:
    """The rule that says what a contradicting `rule` meant: max_drop <-> max_rise."""
    return {"max_drop": "max_rise", "max_rise": "max_drop"}.get(rule, rule)


UNDECLARED = Metric("*", higher_is_better=True, per_example=False)


@dataclass
class ScoreContext:
    """What a scorer may read: the model, the suite, the experiment's test data, this variant's train log, the
    experiment's training examples (for checks of memorization; never shown to the model as test items), how to
    open a judge model, and base's outputs on the suite where a suite compares with them."""

    model: ScoringModel  # what generates and scores (suites that need none, like divergence, may get None)
    suite: Suite
    variant: Variant  # what is being scored
    test: list[Example]
    train_log: list[LogPoint]  # this variant's logged losses (empty for base and given checkpoints)
    # shared between suites of one variant: "heldout_outputs" -> {max_new_tokens: outputs on the test set}
    cache: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    train: list[Example] = field(default_factory=list)  # the training split (empty if none)
    # (judge name, base_url) -> a judge; the sweep passes harness.models.judge_model.open_judge
    open_judge: Callable[[str, str | None], JudgeModel] | None = None
    base_outputs: dict[str, str] | None = None  # base's outputs on this suite by example id (pairwise judges)


ScoreFn = Callable[[ScoreContext], SuiteResult]  # what a registered factory builds
# Any: each kind's factory takes its own options (the suite's YAML options, bound by name in make_scorer).
ScorerFactory = Callable[..., ScoreFn]
_REGISTRY: dict[str, ScorerFactory] = {}
_METRICS: dict[str, tuple[Metric, ...]] = {}
_NO_TEST: set[str] = set()  # kinds that read no test data (only the train log's training and validation losses)


def scorer(kind: str, metrics: Iterable[Metric] = (), *, reads_test: bool = True
           ) -> Callable[[Callable[P, ScoreFn]], Callable[P, ScoreFn]]:
    """Register a scorer factory under `kind` with the metrics it writes; kinds are unique lower-case identifiers.
    `reads_test=False` declares a kind that reads no test data (a search scores its stopped variants on those)."""
    if not kind.replace("_", "").replace("-", "").isalnum() or kind.lower() != kind:
        raise ValueError(f"invalid scorer kind {kind!r}: use lower-case letters, digits, '-' and '_'")

    def wrap(factory: Callable[P, ScoreFn]) -> Callable[P, ScoreFn]:
        if kind in _REGISTRY:
            raise ValueError(f"scorer kind {kind!r} is already registered")
        _REGISTRY[kind] = factory
        _METRICS[kind] = tuple(metrics)
        if not reads_test:
            _NO_TEST.add(kind)
        return factory

    return wrap


def kind_of(factory: object) -> str | None:
    """The kind a factory was registered under with @scorer, or None."""
    return next((k for k, f in _REGISTRY.items() if f is factory), None)


def validation_only(kind: str) -> bool:
    """Whether a suite kind reads no test data: the checks a search may score a variant it stopped on."""
    return kind in _NO_TEST


def kinds() -> list[str]:
    return sorted([*_REGISTRY, *_RESOLVERS])


def declared_metrics(kind: str | None) -> tuple[Metric, ...]:
    return _METRICS.get(kind or "", ())


def metric_info(kind: str | None, metric: str, record: JSONDict | None = None) -> Metric:
    """The declaration of a metric of a suite kind: the registered one, else the one stored in the score's scorer
    `record` (a user's scorer whose code this process has not loaded), else UNDECLARED (higher-is-better,
    corpus-level)."""
    found = next((m for m in declared_metrics(kind) if m.matches(metric)), None)
    if found is not None:
        return found
    stored = (record or {}).get("metric")
    if isinstance(stored, dict):
        return Metric.from_record(metric, stored)
    return UNDECLARED


def declared_findings() -> dict[str, float]:
    """Every findings check some registered metric feeds, with the default margin its declaration gives."""
    out: dict[str, float] = {}
    for metrics in _METRICS.values():
        for m in metrics:
            if m.finding is not None:
                out.setdefault(m.finding, m.margin)
    return out


def primary_metric(kind: str | None, available: Iterable[str]) -> str | None:
    """The metric that ranks variants on a suite of `kind`: the first declared primary one that is available."""
    have = list(available)
    for m in declared_metrics(kind):
        if m.primary:
            hit = next((a for a in have if m.matches(a)), None)
            if hit is not None:
                return hit
    return None


def suite_kinds(scores: pd.DataFrame | Iterable[Mapping[str, object]] | None) -> dict[str, str]:
    """suite name -> scorer kind, from the `scorer` record stored with each score (a scores DataFrame or rows)."""
    import pandas as pd

    rows: Iterable[Mapping[str, object]] = (scores.to_dict("records") if isinstance(scores, pd.DataFrame)
                                            else list(scores or []))
    out: dict[str, str] = {}
    for r in rows:
        rec = r.get("scorer")
        if isinstance(rec, dict) and rec.get("kind") and r.get("suite") not in out:
            out[str(r["suite"])] = str(rec["kind"])
    return out


# A kind whose scorer lives elsewhere (`python`: a user's file): (suite, options) -> (the registered kind it names,
# that kind's options, what to add to the stored record about where the code came from).
Resolver = Callable[[Suite | None, JSONDict], tuple[str, JSONDict, JSONDict]]
_RESOLVERS: dict[str, Resolver] = {}


def resolver(kind: str) -> Callable[[Resolver], Resolver]:
    """Register a suite kind that names another registered scorer (e.g. `python`, a scorer in the user's own file)."""
    def wrap(fn: Resolver) -> Resolver:
        if kind in _REGISTRY or kind in _RESOLVERS:
            raise ValueError(f"scorer kind {kind!r} is already registered")
        _RESOLVERS[kind] = fn
        return fn

    return wrap


def make_scorer(kind: str, options: Mapping[str, JSONValue], *, where: str = "", suite: Suite | None = None
                ) -> tuple[ScoreFn, JSONDict]:
    """Build a scorer and the record of how it was made ({'kind', 'args'}), stored with each of its scores. A kind
    with a resolver (`python`) first loads the scorer it names, from the `suite`'s folder."""
    origin: JSONDict = {}
    if kind in _RESOLVERS:
        try:
            kind, options, origin = _RESOLVERS[kind](suite, dict(options))
        except HarnessInputError as exc:
            raise HarnessInputError([f"{where}{p}" for p in exc.problems], title=exc.title) from None
    if kind not in _REGISTRY:
        known = sorted([*_REGISTRY, *_RESOLVERS])
        raise HarnessInputError(f"{where}unknown suite kind {kind!r}.{did_you_mean(kind, known)} "
                                f"Known kinds: {', '.join(known)}")
    factory = _REGISTRY[kind]
    params = inspect.signature(factory).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        raise HarnessInputError(
            f"{where}suite kind {kind!r} has no option(s) {', '.join(unknown)}. Options: {', '.join(params)}")
    bound = inspect.signature(factory).bind(**options)
    bound.apply_defaults()
    try:
        built = factory(**bound.arguments)
    except HarnessInputError as exc:
        raise HarnessInputError([f"{where}{p}" for p in exc.problems], title=exc.title) from None
    return built, {"kind": kind, "args": dict(bound.arguments), **origin}


def check_suites(suites: Iterable[Suite]) -> None:
    """Every suite's kind is registered, its options fit the scorer and (where the scorer checks them) its items are
    valid; every problem at once."""
    problems: list[str] = []
    for suite in suites:
        try:
            built, _ = make_scorer(suite.kind, suite.options, where=suite.where, suite=suite)
            check = getattr(built, "check_suite", None)  # a scorer may check its suite's items before any model runs
            if check is not None:
                check(suite)
        except HarnessInputError as exc:
            problems += exc.problems
    if problems:
        raise HarnessInputError(problems, title="suites")
