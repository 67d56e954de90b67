"""What running one variant produces: its `variants` row and its per-variant rows, as plain data.

Backends and executors build these; only the sweep's runner writes them to the store. Plain data, so a result
can cross a process (Ray) boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.scores import Finding, SuiteResult

FINISHED, FAILED = "finished", "failed"


@dataclass
class VariantResult:
    """Everything one variant produced: the `variants` row, its train_log rows, one result per suite (scores,
    scored samples) and the findings its scorers made."""

    variant: dict[str, Any]
    train_log: list[dict[str, Any]] = field(default_factory=list)
    suites: list[SuiteResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def variant_id(self) -> str:
        return str(self.variant["variant_id"])

    @property
    def finished(self) -> bool:
        return self.variant.get("status") == FINISHED

    @property
    def n_scores(self) -> int:
        return sum(len(s.scores) for s in self.suites)

    @property
    def n_samples(self) -> int:
        return sum(len(s.samples) for s in self.suites)


def failed_result(row: dict[str, Any], error: str, *, train_log: list[dict[str, Any]] | None = None,
                  **config: Any) -> VariantResult:
    """The one way to record a failed variant: its row with status `failed`, the error, and extra config keys
    (a traceback, the API job), keeping any train_log rows that were made before the failure."""
    row = {**row, "status": FAILED, "error": error}
    if config:
        row["config"] = {**(row.get("config") or {}), **config}
    return VariantResult(row, list(train_log or []))
