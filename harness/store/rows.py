"""A variant's typed result as the rows of the store's tables: the store boundary, where nothing else builds rows."""

from __future__ import annotations

from dataclasses import asdict, fields

from harness.results import VariantResult, VariantRow
from harness.scores import Finding, JSONDict
from harness.store.schema import VARIANT_TABLES

Row = dict[str, object]  # one table row: column -> value (JSON columns as Python dicts and lists)


def result_rows(result: VariantResult) -> dict[str, list[Row]]:
    """A variant's typed result as rows of its per-variant tables (table -> rows, every per-variant table listed)."""
    vid = result.variant_id
    rows: dict[str, list[Row]] = {t: [] for t in VARIANT_TABLES}
    rows["train_log"] = [{**asdict(r), "variant_id": vid} for r in result.train_log]
    for s in result.suites:
        rows["scores"] += [{"variant_id": vid, "suite": s.suite, "metric": x.metric, "value": x.value,
                            "ci_low": x.ci_low, "ci_high": x.ci_high, "n": x.n, "suite_version": s.suite_version,
                            "scorer": s.records.get(x.metric) or scorer_record(s.scorer, x.how)} for x in s.scores]
        for e in s.samples:
            rows["examples"].append({"variant_id": vid, "suite": s.suite, "example_id": e.example_id,
                                     "prompt": e.prompt, "reference": e.reference, "output": e.output,
                                     "passed": e.passed, "detail": e.detail, "cluster": e.cluster})
            rows["sample_scores"] += [{"variant_id": vid, "suite": s.suite, "example_id": x.example_id,
                                       "metric": x.metric, "value": x.value} for x in e.sample_scores()]
        rows["findings"] += [finding_row(vid, f) for f in s.findings]
    rows["findings"] += [finding_row(vid, f) for f in result.findings]
    return rows


def scorer_record(scorer: JSONDict, how: JSONDict | None) -> JSONDict | None:
    """A score's scorer record where the runner made none (rows built by hand): the suite's, `how` merged in."""
    if not scorer and not how:
        return None
    args = scorer.get("args")
    return {**scorer, "args": {**(args if isinstance(args, dict) else {}), **(how or {})}} if how else dict(scorer)


def stored_variant(row: VariantRow) -> Row:
    """A typed variant row as the `variant_results` row it is stored as: its columns, config as JSON."""
    return {f.name: getattr(row, f.name) for f in fields(row)} | {"config": row.config.to_json() if row.config else None}


def finding_row(variant_id: str, f: Finding) -> Row:
    """A finding as its `findings` row."""
    return {"variant_id": variant_id, "check": f.check, "severity": f.severity, "message": f.message,
            "evidence": f.evidence}
