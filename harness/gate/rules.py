"""Gate rules expanded to rules on stored metrics: the spec's `gate:` block with the metrics' declared defaults merged
in (each metric's `Metric.gate`), and every rule checked against its metric's declared direction."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from harness.errors import HarnessInputError, did_you_mean
from harness.scorers.registry import GATE_RULES, Metric, right_rule, rule_contradicts
from harness.spec.gate import GateRules

# Default rules come from the metrics' declarations (Metric.gate): they apply to every suite the candidate was scored
# on where the metric exists. A key in the spec's gate block overrides them.
DEFAULT_NO_FINDINGS = ["overfitting"]
METRIC_RULES = GATE_RULES
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


def direction_problems(rules: GateRules, declared: dict[str, Metric], where: str) -> list[str]:
    """Rules whose direction contradicts their metric's declaration (a max_drop on a lower-is-better metric means
    the opposite of what it says), each naming the rule and the key to use instead. `declared` maps
    `<suite>.<metric>` (or a suite.pattern the spec may match) to the metric's declaration."""
    problems = []
    for kind in METRIC_RULES:
        for key in rules.table(kind):
            names = fnmatch.filter(sorted(declared), key) if _is_pattern(key) else [key] if key in declared else []
            bad = [n for n in names if rule_contradicts(declared[n], kind)]
            if not bad:
                continue
            m = declared[bad[0]]
            better = "lower" if m.higher_is_better is False else "higher"
            what = "an improvement" if kind in ("max_drop", "max_rise") else "the wrong side"
            problems.append(f"{where}: key 'gate.{kind}.{key}': {bad[0]} is {better}-is-better (its scorer declares "
                            f"it so), so a {'drop' if kind == 'max_drop' else 'rise'} is {what}; use "
                            f"'gate.{right_rule(m, kind)}.{key}' to limit how far it may get worse")
    return problems


def plan_direction_problems(rules: GateRules, suite_kinds: dict[str, str], where: str) -> list[str]:
    """The same check before a sweep, from the spec's suites (name -> kind) and their kinds' declarations: a rule
    key `<suite>.<metric>` is checked against the declaration of that metric of that suite's kind."""
    from harness.scorers import declared_metrics, metric_info

    declared: dict[str, Metric] = {}
    for kind in METRIC_RULES:
        for key in rules.table(kind):
            suite, _, metric = key.partition(".")
            if suite in suite_kinds and metric and not _is_pattern(key):
                m = metric_info(suite_kinds[suite], metric)
                if any(d.matches(metric) for d in declared_metrics(suite_kinds[suite])):
                    declared[key] = m
    return direction_problems(rules, declared, where)


def expand(rules: GateRules, candidate: dict[str, Metric], baseline: set[str], where: str,
           who: str = "the candidate") -> list[MetricRule]:
    """Rules on concrete metrics. `candidate` maps each of its metric names (`<suite>.<metric>`) to the metric's
    declaration.

    A spec rule naming a metric the candidate (or, for drop/rise rules, the baseline) lacks, or contradicting the
    metric's declared direction, is bad input; a default applies only where its metric exists on both sides.
    """
    problems: list[str] = direction_problems(rules, candidate, where)
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
        for name, declared in candidate.items():
            if declared.gate is None or declared.gate[0] != kind:
                continue
            if name in explicit or (kind in NEEDS_BASELINE and name not in baseline):
                continue
            out[(kind, name)] = MetricRule(kind, name, float(declared.gate[1]), "default")
    if problems:
        raise HarnessInputError(problems, title="gate rules name metrics that are not there")
    return sorted(out.values(), key=lambda r: (r.metric, METRIC_RULES.index(r.kind)))


def finding_checks(rules: GateRules) -> list[str]:
    """The finding checks the candidate must be free of."""
    return list(DEFAULT_NO_FINDINGS if rules.no_findings is None else rules.no_findings)
