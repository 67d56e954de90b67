"""What every findings rule shares: the typed `findings:` settings, what a rule raises, the rule registry, and the
paired reads of a variant's rows against base's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypedDict

import pandas as pd

from harness.scorers import suite_kinds
from harness.scores import JSONDict, JSONValue
from harness.verdicts.compare import Comparison, Settings, clusters_of, paired, per_example

# A variant's stored rows: {'scores', 'examples', 'samples', 'train_log'} DataFrames, details decoded.
Rows = dict[str, pd.DataFrame]
# A `variants` row as read from the store (only variant_id, name and method are read).
VariantInfo = Mapping[str, object]


@dataclass(frozen=True)
class CheckConfig:
    """One check's merged `findings.<check>` settings (keys a check does not use keep their defaults)."""

    severity: str = "warning"
    margin: float = 0.0  # how far the paired CI must clear "no change"
    metric: str = "acc"  # forgetting: the general suites' per-example metric
    floor: float | None = None  # format: the absolute compliance the CI must reach
    ceiling: float | None = None  # hallucination: the absolute fabrication rate the CI must stay under
    gap_margin: float = 0.10  # memorization: how far the difference of train/test gaps may grow
    min_rise: float = 0.02  # overfitting: the validation-loss rise that counts

    @classmethod
    def of(cls, raw: Mapping[str, object], margin: float = 0.0) -> CheckConfig:
        """From a merged settings mapping; `margin` where it sets none (a declared check's default margin)."""
        d = cls()
        return cls(severity=str(raw.get("severity") or d.severity), margin=_number(raw.get("margin"), margin),
                   metric=str(raw.get("metric") or d.metric), floor=_optional(raw.get("floor")),
                   ceiling=_optional(raw.get("ceiling")), gap_margin=_number(raw.get("gap_margin"), d.gap_margin),
                   min_rise=_number(raw.get("min_rise"), d.min_rise))


def _optional(x: object) -> float | None:
    """A number as the spec wrote it (an int stays an int in evidence), else None."""
    return x if isinstance(x, int | float) and not isinstance(x, bool) else None


def _number(x: object, default: float) -> float:
    found = _optional(x)
    return default if found is None else found


@dataclass(frozen=True)
class FindingsConfig:
    """The spec's `findings:` block merged over the defaults (spec.findings.settings), typed."""

    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    correction: str = "holm"  # holm | bh | none
    checks: dict[str, CheckConfig | None] = field(default_factory=dict)  # check -> its settings; None: turned off

    @classmethod
    def of(cls, merged: Mapping[str, object]) -> FindingsConfig:
        """From what spec.findings.settings returns (every key already validated)."""
        checks: dict[str, CheckConfig | None] = {}
        for key, value in merged.items():
            if value is False:
                checks[key] = None
            elif isinstance(value, Mapping):
                checks[key] = CheckConfig.of(value)
        seed, resamples = merged.get("seed", 0), merged.get("resamples", 2000)
        return cls(_number(merged.get("confidence"), 0.95), resamples if isinstance(resamples, int) else 2000,
                   seed if isinstance(seed, int) else 0, str(merged.get("correction") or "holm"), checks)

    def check(self, name: str) -> CheckConfig | None:
        """A check's settings, None where it is turned off (or unknown)."""
        return self.checks.get(name)

    @property
    def comparison(self) -> Settings:
        """How its paired comparisons are made."""
        return Settings(self.confidence, self.resamples, self.seed)


@dataclass(frozen=True)
class Test:
    """What the run-wide decision needs of a comparison: its raw p-value, and whether its interval clears."""

    p: float
    clears: bool


@dataclass(frozen=True)
class Raised:
    """A finding as a rule raises it: absolute (no test), or relative to base (kept only if the run's corrected
    decision agrees)."""

    severity: str
    message: str
    evidence: JSONDict
    test: Test | None = None


class CheckFinding(TypedDict):
    """A finding of one variant, as `derive` returns it."""

    check: str
    severity: str
    message: str
    evidence: JSONDict


class FindingRow(TypedDict):
    """A `findings` row, as `derive_run` returns it."""

    variant_id: str
    check: str
    severity: str
    message: str
    evidence: JSONDict


# A rule reads the variant's row, its and base's rows (base's None for base itself) and the merged settings.
Rule = Callable[[VariantInfo, Rows, Rows | None, FindingsConfig], list[Raised]]
RULES: dict[str, Rule] = {}


def rule(check: str) -> Callable[[Rule], Rule]:
    """Register a rule as the one that derives `check`."""
    def wrap(fn: Rule) -> Rule:
        if check in RULES:
            raise ValueError(f"a findings rule for {check!r} is already registered")
        RULES[check] = fn
        return fn

    return wrap


def detects(mde: float | None, what: str = "differences") -> str:
    """What a finding's comparison could have detected, for its message: its minimum detectable effect."""
    if mde is None:
        return "minimum detectable effect unknown"
    return f"detects {what} >= {mde:.2f} with 80% power"


def finding_metric(kind: str, check: str) -> str:
    """The metric a built-in suite kind declares as feeding `check` (its first such declaration)."""
    from harness.scorers import declared_metrics

    found = next((m.name for m in declared_metrics(kind) if m.finding == check), None)
    if found is None:
        raise LookupError(f"suite kind {kind!r} declares no metric feeding the {check!r} finding")
    return found


def suites_of_kind(scores: pd.DataFrame | None, kind: str) -> list[str]:
    """Suite names whose scores were made by a scorer of `kind`."""
    return sorted(s for s, k in suite_kinds(scores).items() if k == kind) if scores is not None else []


def against_base(rows: Rows, base_rows: Rows, suite: str, metric: str, cfg: FindingsConfig) -> Comparison | None:
    """The variant's per-example `metric` on `suite` minus base's, paired by example id."""
    return paired(per_example(rows["samples"], suite, metric), per_example(base_rows["samples"], suite, metric),
                  cfg.comparison, clusters_of(rows["examples"], suite) or None)


def paired_test(c: Comparison, clears: bool) -> Test:
    """A comparison's test: its p-value (1 where it has none) and whether its interval clears the margin."""
    return Test(1.0 if c.p_value is None else c.p_value, clears)


def flipped(rows: Rows, base_rows: Rows, suite: str, metric: str, *, up: bool) -> list[str]:
    """Example ids whose 0/1 `metric` went from 0 (base) to 1 (variant) where `up`, else from 1 to 0; sorted."""
    mine, theirs = per_example(rows["samples"], suite, metric), per_example(base_rows["samples"], suite, metric)
    if up:
        return sorted(i for i in set(mine) & set(theirs) if mine[i] > 0.5 >= theirs[i])
    return sorted(i for i in set(mine) & set(theirs) if theirs[i] > 0.5 >= mine[i])


def details(rows: Rows | None, suite: str) -> list[JSONDict]:
    """The decoded `detail` of each of a suite's examples ({} where it has none)."""
    ex = rows["examples"] if rows is not None else None
    if ex is None or ex.empty:
        return []
    return [d if isinstance(d, dict) else {} for d in ex[ex["suite"] == suite]["detail"]]


def details_by_id(rows: Rows, suite: str) -> dict[str, Mapping[str, JSONValue]]:
    """example_id -> its decoded `detail`, for a suite's examples that have one."""
    ex = rows["examples"][rows["examples"]["suite"] == suite]
    return {str(e): d for e, d in zip(ex["example_id"], ex["detail"], strict=True) if isinstance(d, dict)}


def ci_text(c: Comparison) -> str:
    return f"paired difference {c.difference:+.2f}, {c.confidence:.0%} CI [{c.ci_low:.2f}, {c.ci_high:.2f}]"


def name_of(variant: VariantInfo) -> str:
    return str(variant.get("name") or variant.get("variant_id") or "variant")
