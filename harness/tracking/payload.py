"""What a sweep sends to a tracker, read from the store alone: the sweep, each variant's parameters, loss curves,
scores with their intervals and findings, and the run's report and gate outcome as files."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from harness.scores import JSONDict, JSONValue
from harness.store.db import Store
from harness.store.reads import RunData, is_missing, load_run, num

Scalar = str | int | float | bool
# `variants` columns sent as parameters (the variant's config) and as metrics (what running it measured)
PARAM_COLUMNS = ("method", "rank", "epochs", "learning_rate", "seed", "shots", "base_model", "device", "dtype",
                 "checkpoint", "reused", "produced_by_run")
METRIC_COLUMNS = ("train_seconds", "train_tokens", "tokens_per_second", "trainable_params", "total_params",
                  "peak_memory_mb", "score_seconds", "artifact_bytes", "real_token_share", "prompt_tokens_per_request",
                  "output_tokens_per_request", "seconds_per_request", "scored_epoch", "scored_step")
MAX_PARAM_CHARS = 500  # a long config value (a system prompt, a list of training lines) is cut to this
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. :/]")  # what MLflow accepts in a metric or parameter name
EXPORT_TAG = "harness.export"  # "complete" once everything of a tracker run was sent


@dataclass(frozen=True)
class LossPoint:
    """One logged training step of one split (train or validation)."""

    step: int
    epoch: float | None
    split: str
    loss: float


@dataclass
class VariantPayload:
    """One variant of the sweep, as a child run."""

    variant_id: str
    name: str
    status: str  # the store's: finished | failed
    error: str | None
    params: dict[str, Scalar]
    metrics: dict[str, float]  # scores (`<suite>.<metric>`, `.ci_low`, `.ci_high`, `.n`), findings.count, costs
    curves: list[LossPoint]
    findings_json: str
    n_findings: int
    started_ms: int | None
    ended_ms: int | None


@dataclass
class GatePayload:
    """The gate's outcome on the run, when a baseline was there to gate against."""

    passed: bool
    candidate: str
    rules: int
    failed: int
    skipped: int
    junit_xml: str
    summary_md: str


@dataclass
class SweepPayload:
    """The harness run, as the parent run, and its variants."""

    run_id: str
    name: str
    status: str  # running | finished | failed | interrupted
    params: dict[str, Scalar]
    variants: list[VariantPayload]
    findings_json: str
    n_findings: int
    started_ms: int | None
    ended_ms: int | None
    report_html: Path | None = None
    gate: GatePayload | None = None
    spec_text: str = ""
    gate_note: str | None = None  # why no gate outcome was sent (no baseline, or the gate could not run)

    @property
    def final(self) -> bool:
        """The run will not change any more (its status is no longer `running`)."""
        return self.status != "running"


def metric_name(*parts: str) -> str:
    """`<suite>.<metric>[.<suffix>]`, with characters a tracker refuses replaced by `_`."""
    return _UNSAFE.sub("_", ".".join(parts))


def millis(ts: object) -> int | None:
    """A stored timestamp (naive UTC) as epoch milliseconds."""
    if is_missing(ts):
        return None
    t = pd.Timestamp(ts)
    t = t.tz_localize(UTC) if t.tzinfo is None else t
    return int(t.timestamp() * 1000)


def _plain(x: object) -> object:
    """A numpy scalar as its Python value; anything else as it is."""
    item = getattr(x, "item", None)
    return item() if callable(item) and not isinstance(x, str | bytes) else x


def jsonable(x: object) -> JSONValue:
    """Plain JSON: NaN and infinities as null, timestamps as ISO text, numpy scalars as numbers (else as text)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, datetime | pd.Timestamp):
        return x.isoformat()
    x = _plain(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or is_missing(x):
        return None
    return x if isinstance(x, str | int | float | bool) else str(x)


def _scalar(x: object) -> Scalar | None:
    if is_missing(x):
        return None
    x = _plain(x)
    if isinstance(x, bool | int | float):
        return x
    text = x if isinstance(x, str) else json.dumps(jsonable(x), sort_keys=True)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"


def flatten(config: object, prefix: str) -> dict[str, Scalar]:
    """A nested config as `prefix.a.b` parameters; lists as JSON text; empty values left out."""
    out: dict[str, Scalar] = {}
    if isinstance(config, dict):
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}.{k}"))
        return out
    value = _scalar(config)
    if value is not None and value != "" and value != "[]":
        out[metric_name(prefix)] = value
    return out


def variant_payload(data: RunData, row: Mapping[str, object]) -> VariantPayload:
    """One variant's parameters, metrics, curves and findings, from the run's tables."""
    vid = str(row["variant_id"])
    params: dict[str, Scalar] = {"variant_id": vid, "name": str(row["name"])}
    for col in PARAM_COLUMNS:
        value = _scalar(row.get(col))
        if value is not None:
            params[col] = value
    raw = row.get("config")
    config: JSONDict = raw if isinstance(raw, dict) else {}
    params.update(flatten({k: v for k, v in config.items() if k not in params and k not in ("variant_id", "name")},
                          "config"))
    metrics: dict[str, float] = {}
    for col in METRIC_COLUMNS:
        x = num(row.get(col))
        if math.isfinite(x):
            metrics[col] = x
    scores = data.scores[data.scores["variant_id"] == vid]
    for suite, metric, value, lo, hi, n in scores[["suite", "metric", "value", "ci_low", "ci_high", "n"]].itertuples(
            index=False):
        name = metric_name(str(suite), str(metric))
        for key, x in ((name, value), (f"{name}.ci_low", lo), (f"{name}.ci_high", hi), (f"{name}.n", n)):
            if not is_missing(x):
                metrics[key] = float(x)
    log = data.train_log[data.train_log["variant_id"] == vid].sort_values(["step", "split"], kind="stable")
    curves = [LossPoint(int(step), None if is_missing(epoch) else float(epoch), str(split), float(loss))
              for step, epoch, split, loss in log[["step", "epoch", "split", "loss"]].itertuples(index=False)
              if not is_missing(loss)]
    found = data.findings[data.findings["variant_id"] == vid]
    findings = [jsonable({"check": f["check"], "severity": f["severity"], "message": f["message"],
                          "evidence": f.get("evidence")}) for f in found.to_dict("records")]
    metrics["findings.count"] = float(len(findings))
    ended = millis(row.get("finished_at"))
    spent = sum(num(row[c]) for c in ("train_seconds", "score_seconds") if not is_missing(row.get(c)))
    started = ended - int(spent * 1000) if ended is not None else None
    return VariantPayload(vid, str(row["name"]), str(row.get("status") or ""), None if is_missing(row.get("error"))
                          else str(row["error"]), params, metrics, curves, json.dumps(findings, indent=2), len(findings),
                          started, ended)


def sweep_payload(db: str | Path, run: str | None) -> SweepPayload:
    """The run's payload (without report and gate, which `harness.tracking.export` adds), from the store."""
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        data = load_run(store, run_id, tables=("variants", "scores", "findings", "train_log"))
    r = data.run
    variants = [variant_payload(data, row) for row in data.variants.to_dict("records")]
    params: dict[str, Scalar] = {"run_id": run_id}
    for key in ("name", "model", "model_fingerprint", "spec_hash", "spec_path", "harness_version", "git_sha",
                "git_dirty"):
        value = _scalar(r.get(key))
        if value is not None:
            params[key] = value
    params.update(flatten(r.get("data_fingerprints") or {}, "data"))
    params["variants"] = len(variants)
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    findings = [jsonable({"variant_id": f["variant_id"], "variant": names.get(f["variant_id"]), "check": f["check"],
                          "severity": f["severity"], "message": f["message"], "evidence": f.get("evidence")})
                for f in data.findings.to_dict("records")]
    return SweepPayload(run_id, str(r.get("name") or run_id), str(r.get("status") or ""), params, variants,
                        json.dumps(findings, indent=2), len(findings), millis(r.get("started_at")),
                        millis(r.get("finished_at")), spec_text=str(r.get("spec") or ""))
