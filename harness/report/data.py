"""What a report shows, read from the store alone: run header, leaderboard, forgetting, recommendation, findings."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.scorers import metric_info
from harness.store.reads import RunData, is_missing
from harness.verdicts.compare import Comparison
from harness.verdicts.recommend import primary

# Held-out metrics shown on the leaderboard, in this order, when present (every metric is under "All scores").
KIND_ORDER = ("heldout", "format", "hallucination", "general", "divergence")  # the report's order of suites
Forget = dict[str, tuple[float, float, float, int]]  # variant -> forgetting delta, ci_low, ci_high, n


def opt(x: Any) -> Any:
    """A plain Python value or None (pandas NA/NaN/NaT -> None; numpy scalars -> Python)."""
    if is_missing(x):
        return None
    return x.item() if hasattr(x, "item") else x


def fmt(x: Any, digits: int = 3) -> str:
    if is_missing(x):
        return ""
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits if abs(x) < 10 else min(digits, 1)}f}"


def human_bytes(n: Any) -> str:
    if is_missing(n):
        return ""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def human_count(n: Any) -> str:
    if is_missing(n):
        return ""
    n = float(n)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


def human_seconds(s: Any) -> str:
    if is_missing(s):
        return ""
    s = float(s)
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


# -- the header ---------------------------------------------------------------------------------------------
def header(data: RunData) -> dict[str, Any]:
    """Run name, spec, provenance and timing, as display strings."""
    r = data.run
    started, finished = r.get("started_at"), r.get("finished_at")
    duration = ((pd.Timestamp(finished) - pd.Timestamp(started)).total_seconds()
                if not is_missing(started) and not is_missing(finished) else None)

    def js(key: str, kind: type) -> Any:
        return r.get(key) if isinstance(r.get(key), kind) else kind()

    suites = js("suites", list)
    return {
        "name": str(r.get("name") or ""), "run_id": str(r["run_id"]), "status": str(r.get("status") or ""),
        "spec": str(r.get("spec") or ""), "spec_hash": str(r.get("spec_hash") or ""),
        "spec_path": str(r.get("spec_path") or ""), "model": str(r.get("model") or ""),
        "model_fingerprint": str(r.get("model_fingerprint") or ""),
        "harness_version": str(r.get("harness_version") or ""), "git_sha": str(r.get("git_sha") or ""),
        "git_dirty": bool(r.get("git_dirty")) if not is_missing(r.get("git_dirty")) else False,
        "started": "" if is_missing(started) else f"{started:%Y-%m-%d %H:%M:%S} UTC",
        "finished": "" if is_missing(finished) else f"{finished:%Y-%m-%d %H:%M:%S} UTC",
        "duration": human_seconds(duration) if duration is not None else "",
        "fingerprints": {str(k): str(v) for k, v in js("data_fingerprints", dict).items()},
        "libraries": {str(k): str(v) for k, v in js("library_versions", dict).items()},
        "suites": [f"{s.get('name')} v{s.get('version')}" if isinstance(s, dict) else str(s) for s in suites],
        "n_variants": len(data.variants),
        "n_failed": int((data.variants["status"] != "finished").sum()),
        "n_reused": int(data.variants["reused"].fillna(False).astype(bool).sum()) if "reused" in data.variants else 0,
    }


# -- forgetting ---------------------------------------------------------------------------------------------
def forgetting_cells(deltas: dict[str, Comparison]) -> Forget:
    """variant -> (delta, ci_low, ci_high, n): the recommendation's forgetting deltas, as table cells."""
    return {vid: (c.difference, c.ci_low, c.ci_high, c.n) for vid, c in deltas.items()}


def forgetting_mde(deltas: dict[str, Comparison]) -> dict[str, float]:
    """variant -> the smallest accuracy change its forgetting comparison detects with 80% power."""
    return {vid: c.mde for vid, c in deltas.items() if c.mde is not None}


# -- the leaderboard ----------------------------------------------------------------------------------------
@dataclass
class Column:
    """One leaderboard column: a key into each row's cells, a label, a group label and a tooltip."""

    key: str
    label: str
    group: str
    help: str = ""
    numeric: bool = True
    optional: bool = False  # hidden until picked (the column picker), so the leaderboard fits a laptop screen


def primary_metric(data: RunData) -> str | None:
    """The held-out score that ranks variants (the recommendation policy's)."""
    return primary(data)[1]


def declared_columns(data: RunData) -> dict[str, tuple[str, str, str, str, bool]]:
    """Leaderboard columns from the metrics' declarations (`Metric.column`), for every suite of the run in kind
    order (held-out first): key -> (suite, metric, label, group, lower is better). A suite of a kind that appears
    once is grouped under the kind's name, else under its own; a user's scorer's columns come the same way."""
    if data.scores.empty:
        return {}
    kinds = data.kinds
    seen_kinds = [kinds.get(str(s), "") for s in data.scores["suite"].unique()]
    out: dict[str, tuple[str, str, str, str, bool]] = {}
    rows = data.scores.drop_duplicates(["suite", "metric"])
    order = sorted(rows.itertuples(index=False), key=lambda r: (_kind_rank(kinds.get(str(r.suite), "")), str(r.suite)))
    for r in order:
        suite, metric = str(r.suite), str(r.metric)
        record = r.scorer if isinstance(r.scorer, dict) else None
        m = metric_info(kinds.get(suite), metric, record)
        if m.column is None:
            continue
        kind = kinds.get(suite, "")
        group = GROUPS.get(kind, kind) if seen_kinds.count(kind) == 1 and kind != "python" else suite
        out[f"m:{suite}:{metric}"] = (suite, metric, m.column, group, m.higher_is_better is False)
    return out


GROUPS = {"heldout": "held-out"}  # group labels where the kind's name reads badly


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _cell(text: Any, sort: Any = None, **kw: Any) -> dict[str, Any]:
    """A table cell: display text, a sort value, and optional ci, title, cls (css class), overfit flag."""
    cell: dict[str, Any] = {"text": "" if is_missing(text) else str(text), "sort": opt(sort) if sort is not None else None,
            "ci": "", "title": "", "cls": "", "checks": []}
    cell.update(kw)
    return cell


def ci_cell(s: tuple[float, float, float, int] | None, digits: int = 3) -> dict[str, Any]:
    if s is None or math.isnan(s[0]):
        return _cell("")
    v, lo, hi, n = s
    ci = "" if math.isnan(lo) else f"[{fmt(lo, digits - 1)}, {fmt(hi, digits - 1)}]"
    full = "" if math.isnan(lo) else f"[{fmt(lo, digits + 1)}, {fmt(hi, digits + 1)}]"
    return _cell(fmt(v, digits), v, ci=ci, title=f"{fmt(v, digits + 1)}, 95% CI {full}, n={n}" if ci else f"n={n}")


def leaderboard(data: RunData, forget: dict[str, tuple[float, float, float, int]],
                mde: dict[str, float] | None = None) -> tuple[list[Column], list[dict[str, Any]]]:
    """Columns and one row per variant (base first), every cell with display text and a sort value."""
    declared = declared_columns(data)
    cols = [Column("name", "variant", "variant", numeric=False), Column("method", "method", "variant", numeric=False),
            Column("rank", "rank", "variant"), Column("epochs", "epochs", "variant"),
            Column("lr", "lr", "variant", optional=True), Column("seed", "seed", "variant", optional=True)]
    shown = _headline_metrics(data)
    cols += [Column(key, label, group, f"suite {suite}: {metric}" + ("; lower is better" if lower else ""),
                    optional=(suite, metric) not in shown)
             for key, (suite, metric, label, group, lower) in declared.items()]
    if forget:
        cols.append(Column("forget", "Δ acc", "forgetting", f"suite {data.suite_of('general')}: variant "
                           "minus base accuracy, paired by example, 95% CI"))
    cols += [Column("findings", "findings", "verdicts", "overfitting flag and other findings (number to sort)"),
             Column("device", "device", "cost", "device and compute dtype (the device/dtype policy)", numeric=False,
                    optional=True),
             Column("train_s", "train time", "cost"), Column("tps", "tokens/s", "cost",
                                                              "real training tokens per second; hover: real-token share",
                                                              optional=True),
             Column("params", "params", "cost", "trainable parameters", optional=True),
             Column("artifact", "artifact", "cost", "artifact size on disk", optional=True),
             Column("prompt_tok", "prompt tok/req", "per request", "mean prompt tokens per generation request "
                    "(system prompt and few-shot turns included): what each request costs to send"),
             Column("output_tok", "output tok/req", "per request", "mean generated tokens per request", optional=True),
             Column("s_req", "s/req", "per request", "generation seconds per request (wall time of the batched "
                    "generation calls over their requests)", optional=True)]
    fnd = data.findings.groupby("variant_id")["check"].apply(list).to_dict() if len(data.findings) else {}
    rows = []
    for v in data.variants.to_dict("records"):
        vid = str(v["variant_id"])
        cells: dict[str, dict[str, Any]] = {
            "name": _cell(v["name"], str(v["name"])), "method": _cell(v["method"], str(v["method"])),
            "rank": _cell(opt(v["rank"]), opt(v["rank"])), "epochs": _cell(opt(v["epochs"]), opt(v["epochs"])),
            "lr": _cell("" if is_missing(v["learning_rate"]) else f"{float(v['learning_rate']):.0e}", opt(v["learning_rate"])),
            "seed": _cell(opt(v["seed"]), opt(v["seed"]))}
        for key, (suite, metric, _, _, _) in declared.items():
            cells[key] = ci_cell(data.score(vid, suite, metric))
        if forget:
            f = forget.get(vid)
            cells["forget"] = ci_cell(f) if f else _cell("0 (reference)" if vid == data.base_id else "", None)
            if f and f[2] < 0:
                cells["forget"]["cls"] = "bad"
            if f and mde and vid in mde:
                cells["forget"]["title"] += f"; detects changes >= {mde[vid]:.3f} (80% power)"
        checks = fnd.get(vid, [])
        cells["findings"] = _cell(", ".join(sorted(set(map(str, checks)))), len(checks),
                                  checks=sorted(set(map(str, checks))))
        cells.update(_cost_cells(v))
        rows.append({"variant_id": vid, "name": str(v["name"]), "method": str(v["method"]),
                     "status": str(v["status"]), "error": str(v.get("error") or ""),
                     "reused": bool(opt(v.get("reused"))), "is_base": v["method"] == "base",
                     "n_findings": len(checks), "cells": cells})
    return cols, rows


def _headline_metrics(data: RunData) -> set[tuple[str, str]]:
    """(suite, metric) of the leaderboard's columns shown before any is picked: the metric ranking variants (held-out)
    and each other suite's primary one; the rest wait in the column picker."""
    suite, metric = primary(data)
    out = {(suite, metric)} if suite is not None and metric is not None else set()
    if data.scores.empty:
        return out
    for r in data.scores.drop_duplicates(["suite", "metric"]).itertuples(index=False):
        kind = data.kinds.get(str(r.suite), "")
        record = r.scorer if isinstance(r.scorer, dict) else None
        if kind != "heldout" and metric_info(kind, str(r.metric), record).primary:
            out.add((str(r.suite), str(r.metric)))
    return out


def _cost_cells(v: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a variant cost: training time, where it ran, tokens/s, parameters, artifact size, and per request."""
    where = " ".join(str(v[k]) for k in ("device", "dtype") if not is_missing(v.get(k)))
    share = v.get("real_token_share")
    return {
        "train_s": _cell(human_seconds(v.get("train_seconds")), opt(v.get("train_seconds"))),
        "device": _cell(where, where, title=f"peak memory {fmt(v.get('peak_memory_mb'), 0)} MB"
                        if not is_missing(v.get("peak_memory_mb")) else ""),
        "tps": _cell(fmt(v.get("tokens_per_second"), 0), opt(v.get("tokens_per_second")),
                     title="" if is_missing(share) else f"real-token share {float(share or 0):.0%} (real / processed tokens)"),
        "params": _cell(human_count(v.get("trainable_params")), opt(v.get("trainable_params")),
                        title="" if is_missing(v.get("total_params")) else
                        f"{opt(v['trainable_params']) or 0:,} of {opt(v['total_params']):,}"),
        "artifact": _cell(human_bytes(v.get("artifact_bytes")), opt(v.get("artifact_bytes")),
                          title=str(v.get("artifact") or "")),
        "prompt_tok": _cell(fmt(v.get("prompt_tokens_per_request"), 0), opt(v.get("prompt_tokens_per_request")),
                            title=_prompt_title(v)),
        "output_tok": _cell(fmt(v.get("output_tokens_per_request"), 0), opt(v.get("output_tokens_per_request"))),
        "s_req": _cell(fmt(v.get("seconds_per_request"), 3), opt(v.get("seconds_per_request"))),
    }


def _prompt_title(v: dict[str, Any]) -> str:
    """A prompt variant's prompt, for the cell's hover text: its shots and the start of its system prompt."""
    prompt = (v.get("config") or {}).get("prompt") if isinstance(v.get("config"), dict) else None
    if not prompt:
        return ""
    system = str(prompt.get("system") or "")
    return (f"{prompt.get('shots') or 0} few-shot examples from the training split"
            + (f"; system prompt: {system[:200]}{'...' if len(system) > 200 else ''}" if system else ""))


def findings_by_variant(data: RunData) -> list[dict[str, Any]]:
    """Findings grouped by variant (plan order), each with pretty-printed evidence."""
    if data.findings.empty:
        return []
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    groups = []
    for vid in data.variants["variant_id"]:
        rows = data.findings[data.findings["variant_id"] == vid]
        if rows.empty:
            continue
        items = []
        for f in rows.to_dict("records"):
            ev = f.get("evidence")
            ev_text = "" if ev is None else json.dumps(ev, indent=2, ensure_ascii=False, default=str)
            items.append({"check": str(f.get("check") or ""), "severity": str(f.get("severity") or ""),
                          "message": str(f.get("message") or ""), "evidence": ev_text,
                          "detects": detectable(str(f.get("check") or ""), ev if isinstance(ev, dict) else {})})
        groups.append({"variant_id": str(vid), "name": str(names.get(vid, vid)), "entries": items})
    return groups


def detectable(check: str, evidence: dict[str, Any]) -> str:
    """What a finding could have detected (its evidence's minimum detectable effect), as one line for the report."""
    mde = evidence.get("mde")
    if not isinstance(mde, int | float) or isinstance(mde, bool) or not math.isfinite(mde):
        return "minimum detectable effect not recorded (a finding stored by an older harness)"
    kind = evidence.get("kind")
    if check == "overfitting":
        what = f"a validation-loss rise above {mde:.2f} (min_rise, a threshold)"
    elif kind in ("floor", "ceiling"):
        what = f"a rate {mde:.2f} or more {'below the floor' if kind == 'floor' else 'above the ceiling'}"
    else:
        family = evidence.get("family")
        what = f"a difference of {mde:.2f} or more against base" + (
            f" (corrected over {family} comparisons)" if isinstance(family, int) and family > 1 else "")
    return f"could detect {what}, with 80% power"


def data_checks(data: RunData) -> list[dict[str, str]] | None:
    """The data-quality warnings stored on the run before its sweep, as display strings; None when the run
    predates them (schema < 3)."""
    stored = data.run.get("data_checks")
    if not isinstance(stored, list):
        return None
    out = []
    for c in stored:
        if not isinstance(c, dict):
            continue
        lines = [str(x) for x in c.get("lines") or []] if isinstance(c.get("lines"), list) else []
        unit = str(c.get("unit") or "line")  # rows for a table or datasets split
        where = str(c.get("file") or "") + (f": {unit}s {', '.join(lines[:30])}" + (", ..." if len(lines) > 30 else "")
                                            if lines else "")
        out.append({"check": str(c.get("check") or ""), "severity": str(c.get("severity") or ""),
                    "split": str(c.get("split") or ""), "message": str(c.get("message") or ""), "where": where})
    return out
