"""A variant's typed result as the rows of the store's tables: the store boundary, where nothing else builds rows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import TypedDict

import pandas as pd

from harness.results import VariantResult, VariantRow
from harness.scores import Finding, JSONDict, JSONValue
from harness.store.schema import VARIANT_TABLES

Row = dict[str, object]  # one table row: column -> value (JSON columns as Python dicts and lists)


class RunRow(TypedDict, total=False):
    """One `runs` row as `Store.run_row` reads it: JSON columns decoded, missing values None."""

    run_id: str
    name: str | None
    spec: str | None  # the spec's text
    spec_hash: str | None
    status: str | None  # running | finished | failed | interrupted
    started_at: datetime | None  # naive UTC
    finished_at: datetime | None
    harness_version: str | None
    git_sha: str | None
    git_dirty: bool | None
    spec_path: str | None
    model: str | None
    model_fingerprint: str | None
    data_fingerprints: JSONDict | None  # split -> fingerprint
    suites: list[JSONDict] | None  # each suite's identity: name, version, kind, fingerprint, options
    library_versions: JSONDict | None
    store_path: str | None
    pid: int | None
    host: str | None
    data_checks: list[JSONValue] | None  # the data-quality warnings found before the sweep (None before schema 3)


def plain(value: object) -> object:
    """A value read through pandas as plain Python: NaN, NaT and NA -> None, numpy scalars -> Python scalars."""
    if value is None or isinstance(value, str | list | dict):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    return None if isinstance(value, float) and math.isnan(value) else value


def run_row_of(record: Mapping[str, object]) -> RunRow:
    """A `runs` row read through pandas (JSON columns decoded) as a RunRow."""
    r = {k: plain(v) for k, v in record.items()}

    def text(key: str) -> str | None:
        v = r.get(key)
        return None if v is None else str(v)

    def when(key: str) -> datetime | None:
        v = r.get(key)
        return v if isinstance(v, datetime) else None

    def obj(key: str) -> JSONDict | None:
        v = r.get(key)
        return v if isinstance(v, dict) else None

    suites, checks, pid, dirty = r.get("suites"), r.get("data_checks"), r.get("pid"), r.get("git_dirty")
    return RunRow(run_id=str(r["run_id"]), name=text("name"), spec=text("spec"), spec_hash=text("spec_hash"),
                  status=text("status"), started_at=when("started_at"), finished_at=when("finished_at"),
                  harness_version=text("harness_version"), git_sha=text("git_sha"),
                  git_dirty=None if dirty is None else bool(dirty), spec_path=text("spec_path"), model=text("model"),
                  model_fingerprint=text("model_fingerprint"), data_fingerprints=obj("data_fingerprints"),
                  suites=[s for s in suites if isinstance(s, dict)] if isinstance(suites, list) else None,
                  library_versions=obj("library_versions"), store_path=text("store_path"),
                  pid=int(pid) if isinstance(pid, int | float) else None, host=text("host"),
                  data_checks=list(checks) if isinstance(checks, list) else None)


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
