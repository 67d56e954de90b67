"""A gate run's outcome: one Check per rule, and the GateResult the console, JUnit and markdown outputs print."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.scores import JSONDict

if TYPE_CHECKING:
    from harness.gate.snapshot import Snapshot
    from harness.verdicts.compare import Interval

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Check:
    """One rule's outcome: a row of the table, a JUnit testcase, a line of the summary."""

    rule: str  # max_drop | max_rise | min | max | no_findings | same_test_set | same_suite
    target: str  # the metric, finding check or suite it is about
    baseline: str
    candidate: str
    difference: str
    allowance: str
    verdict: str  # pass | fail | skip
    message: str
    seconds: float = 0.0
    numbers: JSONDict = field(default_factory=dict)  # the compared figures (diff, low, high, paired, how, n, ...)
    mde: str = ""  # the smallest change this rule's comparison detects with 80% power
    warning: str = ""  # e.g. a rule blind to changes as small as its allowance

    @property
    def name(self) -> str:
        return f"{self.rule} {self.target}"


@dataclass
class GateResult:
    """Every check of one gate run, with what was compared."""

    baseline: Snapshot
    candidate: Snapshot
    baseline_path: str
    checks: list[Check]
    notes: list[str]
    confidence: float = 0.95

    @property
    def passed(self) -> bool:
        return not any(c.verdict == FAIL for c in self.checks)

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)


def num(x: float | None, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.3f}" if sign else f"{x:.3f}" if abs(x) < 1000 else f"{x:,.1f}"


def with_ci(s: Interval | None) -> str:
    if not s:
        return ""
    if s.get("ci_low") is None or s.get("ci_high") is None:
        return num(s.get("value"))
    return f"{num(s['value'])} [{num(s['ci_low'])}, {num(s['ci_high'])}]"
