"""Gate rules expanded to rules on stored metrics: the spec's `gate:` block with documented defaults merged in."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from harness.errors import HarnessInputError, did_you_mean
from harness.spec.gate import GateRules

# Defaults by suite kind: {kind: {rule: {metric: limit}}}; they apply to every suite of that kind the
# candidate was scored on, where the metric exists. A key in the spec's gate block overrides them.
DEFAULT_METRIC_RULES: dict[str, dict[str, dict[str, float]]] = {
    "heldout": {"max_drop": {"field_accuracy": 0.02, "exact_match": 0.05}},
    "format": {"min": {"compliance": 0.98}},
    "hallucination": {"max": {"fabrication_rate": 0.05}},
    "general": {"max_drop": {"acc": 0.03}},
}
DEFAULT_NO_FINDINGS = ["overfitting"]
METRIC_RULES = ("max_drop", "max_rise", "min", "max")
NEEDS_BASELINE = ("max_drop", "max_rise")


@dataclass(frozen=True)
class MetricRule:
    """One rule on one metric: kind is max_drop, max_rise, min or max; source says where it came from."""

    kind: str
    metric: str  # "<suite>.<metric>"
    limit: float
    source: str  # "spec" or "default"


def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


def expand(rules: GateRules, candidate: dict[str, tuple[str | None, str]], baseline: set[str], where: str,
           who: str = "the candidate") -> list[MetricRule]:
    """Rules on concrete metrics. `candidate` maps each of its metric names to (its suite's kind, the metric).

    A spec rule naming a metric the candidate (or, for drop/rise rules, the baseline) lacks is bad input;
    a default applies only where its metric exists on both sides.
    """
    problems: list[str] = []
    out: dict[tuple[str, str], MetricRule] = {}
    available = sorted(candidate)
    for kind in METRIC_RULES:
        explicit: dict[str, float | None] = {}
        for key, limit in rules.table(kind).items():
            names = fnmatch.filter(available, key) if _is_pattern(key) else [key]
            if not names or (not _is_pattern(key) and key not in candidate):
                problems.append(f"{where}: key 'gate.{kind}.{key}': {who} has no metric "
                                f"{'matching ' if _is_pattern(key) else ''}{key!r}."
                                f"{did_you_mean(key, available)} Available: {', '.join(available) or '(none)'}")
                continue
            for name in names:
                if kind in NEEDS_BASELINE and name not in baseline:
                    if not _is_pattern(key):
                        problems.append(f"{where}: key 'gate.{kind}.{key}': the baseline has no metric {key!r} to "
                                        "compare with; re-save the baseline or drop the rule. Baseline metrics: "
                                        f"{', '.join(sorted(baseline)) or '(none)'}")
                    continue
                if not _is_pattern(key) or name not in explicit:  # an exact key beats a pattern
                    explicit[name] = limit
        for name, limit in explicit.items():
            if limit is not None:
                out[(kind, name)] = MetricRule(kind, name, float(limit), "spec")
        if not rules.defaults:
            continue
        for name, (suite_kind, metric) in candidate.items():
            limit = DEFAULT_METRIC_RULES.get(suite_kind or "", {}).get(kind, {}).get(metric)
            if limit is None or name in explicit or (kind in NEEDS_BASELINE and name not in baseline):
                continue
            out[(kind, name)] = MetricRule(kind, name, limit, "default")
    if problems:
        raise HarnessInputError(problems, title="gate rules name metrics that are not there")
    return sorted(out.values(), key=lambda r: (r.metric, METRIC_RULES.index(r.kind)))


def finding_checks(rules: GateRules) -> list[str]:
    """The finding checks the candidate must be free of."""
    return list(DEFAULT_NO_FINDINGS if rules.no_findings is None else rules.no_findings)
