"""Rows as the store keeps them (dicts) turned into the typed results scorers return: for generated and hand-written
test data, so fixtures can be written as the tables read."""

from __future__ import annotations

from typing import Required, TypedDict

from harness.scores import Finding, JSONDict, Sample, Score, SuiteResult


class ScoreRow(TypedDict, total=False):
    """A `scores` row as fixtures write it (suite, metric and value at least)."""

    suite: Required[str]
    metric: Required[str]
    value: Required[float]
    ci_low: float | None
    ci_high: float | None
    n: int
    suite_version: str | None
    scorer: JSONDict  # the record of the scorer that made it: {"kind", "args"}


class ExampleRow(TypedDict, total=False):
    """An `examples` row as fixtures write it; numeric detail values under a metric's name are its per-sample values."""

    suite: Required[str]
    example_id: Required[str]
    prompt: str
    output: str
    reference: str | None
    passed: bool | None
    detail: JSONDict


class FindingRow(TypedDict, total=False):
    """A `findings` row as fixtures write it (the check at least)."""

    check: Required[str]
    severity: str
    message: str
    evidence: JSONDict


Rows = tuple[list[ScoreRow], list[ExampleRow]]  # one suite's (score rows, example rows)


def typed_suites(scores: list[ScoreRow], examples: list[ExampleRow]) -> list[SuiteResult]:
    """Generated rows as typed suite results: each example's numeric detail values under its suite's metric names
    become its per-sample scores (as a scorer would return them), the rest stays detail."""
    out: dict[str, SuiteResult] = {}
    for r in scores:
        s = out.setdefault(r["suite"], SuiteResult(suite=r["suite"], suite_version=r.get("suite_version"),
                                                   scorer=r.get("scorer") or {}))
        s.scores.append(Score(r["metric"], r["value"], r.get("ci_low"), r.get("ci_high"), r.get("n") or 0))
    for e in examples:
        s = out.setdefault(e["suite"], SuiteResult(suite=e["suite"], suite_version="1"))
        metrics = {x.metric for x in s.scores}
        detail = dict(e.get("detail") or {})
        values = {k: float(v) for k, v in detail.items() if k in metrics and isinstance(v, bool | int | float)}
        for k in values:
            del detail[k]
        cluster = detail.pop("cluster", None)
        s.samples.append(Sample(e["example_id"], e.get("prompt") or "", e.get("output") or "", e.get("reference"),
                                e.get("passed"), values, detail, None if cluster is None else str(cluster)))
    return list(out.values())


def typed_findings(rows: list[FindingRow]) -> list[Finding]:
    """findings rows (check, severity, message, evidence) as Finding objects."""
    return [Finding(r["check"], r.get("severity", "warning"), r.get("message", ""), r.get("evidence") or {})
            for r in rows]
