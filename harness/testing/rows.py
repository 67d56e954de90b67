"""Rows as the store keeps them (dicts) turned into the typed results scorers return: for generated and hand-written
test data, so fixtures can be written as the tables read."""

from __future__ import annotations

from typing import Any

from harness.scores import Finding, Sample, Score, SuiteResult


def typed_suites(scores: list[dict[str, Any]], examples: list[dict[str, Any]]) -> list[SuiteResult]:
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
        values = {k: float(detail.pop(k)) for k in list(detail)
                  if k in metrics and isinstance(detail[k], bool | int | float)}
        cluster = detail.pop("cluster", None)
        s.samples.append(Sample(e["example_id"], e.get("prompt") or "", e.get("output") or "", e.get("reference"),
                                e.get("passed"), values, detail, None if cluster is None else str(cluster)))
    return list(out.values())


def typed_findings(rows: list[dict[str, Any]]) -> list[Finding]:
    """findings rows (check, severity, message, evidence) as Finding objects."""
    return [Finding(r["check"], r.get("severity", "warning"), r.get("message", ""), r.get("evidence") or {})
            for r in rows]
