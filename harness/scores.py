"""What a scorer returns for one suite, typed: aggregate scores, scored samples with their per-sample values, findings.

inspect_ai's `Score`/`SampleScore` split: a `Score` is one metric's aggregate over a suite (what the `scores` table
holds); a `Sample` is one scored example, whose per-sample metric values (`Sample.scores`, stored one `SampleScore`
row each in `sample_scores`) are what every paired comparison reads; `Sample.detail` keeps only what a person reads.
Plain dataclasses, so they cross a process (Ray) boundary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

# JSON as stored in the store's JSON columns (detail, evidence, scorer records, config).
JSONValue = Union[str, int, float, bool, None, Sequence["JSONValue"], Mapping[str, "JSONValue"]]  # noqa: UP007
JSONDict = dict[str, JSONValue]


@dataclass(frozen=True)
class Score:
    """One metric's aggregate over a suite's examples, with its 95% interval."""

    metric: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    how: JSONDict | None = None  # how it was computed beyond the scorer's options; merged into the stored scorer record

    @classmethod
    def of(cls, metric: str, interval: tuple[float, float, float], n: int, how: JSONDict | None = None) -> Score:
        """From a (value, ci_low, ci_high) triple as harness.stats returns them."""
        value, lo, hi = interval
        return cls(metric, float(value), float(lo), float(hi), int(n), how)


@dataclass(frozen=True)
class SampleScore:
    """One example's value of one per-example metric; the stored aggregate of a per-example metric is their mean."""

    example_id: str
    metric: str
    value: float


@dataclass
class Sample:
    """One scored example: what was asked and answered, its per-sample metric values, and what a person reads."""

    example_id: str
    prompt: str
    output: str
    reference: str | None = None
    passed: bool | None = None
    scores: dict[str, float] = field(default_factory=dict)  # metric -> this example's value (per-example metrics)
    detail: JSONDict = field(default_factory=dict)  # for a reader: reasons, rationales, spans; never a metric value
    cluster: str | None = None  # items of one cluster are not independent (intervals resample whole clusters)

    def sample_scores(self) -> list[SampleScore]:
        """Its finite per-sample values as SampleScore rows."""
        return [SampleScore(self.example_id, m, float(v)) for m, v in self.scores.items()
                if v is not None and math.isfinite(float(v))]


JUDGE_ERRORS = "judge_errors"  # findings check: a suite's judge (or refusal detector) could not read some judgments
SUITE_FAILED = "suite_failed"  # findings check: a suite failed on a variant (evidence: suite, error); rerun scores it
MEASUREMENT_CHECKS = (JUDGE_ERRORS, SUITE_FAILED)  # about how a variant was measured, not about the variant itself


@dataclass(frozen=True)
class Finding:
    """A verdict on a variant (`findings` table): the check, its severity, a sentence, and the evidence behind it."""

    check: str
    severity: str
    message: str
    evidence: JSONDict = field(default_factory=dict)


@dataclass
class SuiteResult:
    """Everything one suite produced for one variant. `suite`, `suite_version` and `scorer` (the record of the
    scorer and options that made the scores) are filled in by the runner; a scorer leaves them empty."""

    scores: list[Score] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suite: str = ""
    suite_version: str | None = None
    scorer: JSONDict = field(default_factory=dict)
    records: dict[str, JSONDict] = field(default_factory=dict)  # metric -> its stored scorer record (the runner's)
    error: str | None = None  # why the suite failed (a `suite_failed` finding says so); None when it finished

    def score(self, metric: str) -> Score | None:
        return next((s for s in self.scores if s.metric == metric), None)

    def values(self, metric: str) -> dict[str, float]:
        """example_id -> the per-sample value of `metric`, for the samples that have one."""
        return {s.example_id: float(s.scores[metric]) for s in self.samples if s.scores.get(metric) is not None}
