"""What a report shows, read from the store alone: run header, leaderboard, forgetting, recommendation, findings."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness import stats
from harness.store.db import Store

KNOWN_KINDS = ("heldout", "format", "hallucination", "general", "divergence")
# Held-out metrics shown on the leaderboard, in this order, when present (every metric is under "All scores").
HELDOUT_METRICS = ("field_accuracy", "exact_match", "rougeL", "chrf", "loss")
LOWER_IS_BETTER = {"loss", "perplexity", "fabrication_rate", "gap", "epochs_past_best"}


@dataclass
class RunData:
    """Every per-variant table of one run, as DataFrames, plus the run row and derived lookups."""

    run: dict[str, Any]
    variants: pd.DataFrame
    scores: pd.DataFrame
    examples: pd.DataFrame
    findings: pd.DataFrame
    train_log: pd.DataFrame
    kinds: dict[str, str] = field(default_factory=dict)  # suite -> scorer kind

    @property
    def base_id(self) -> str | None:
        base = self.variants[self.variants["method"] == "base"]
        return str(base["variant_id"].iloc[0]) if len(base) else None

    def suite_of(self, kind: str) -> str | None:
        """The suite of a kind ('heldout' preferred by name), or None."""
        names = [s for s, k in self.kinds.items() if k == kind]
        return kind if kind in names else (names[0] if names else None)

    def score(self, vid: str, suite: str | None, metric: str) -> tuple[float, float, float, int] | None:
        if suite is None:
            return None
        return self._scores.get((vid, suite, metric))

    def __post_init__(self) -> None:
        self._scores: dict[tuple[str, str, str], tuple[float, float, float, int]] = {}
        for vid, suite, metric, v, lo, hi, n in self.scores[
                ["variant_id", "suite", "metric", "value", "ci_low", "ci_high", "n"]].itertuples(index=False):
            self._scores[(vid, suite, metric)] = (num(v), num(lo), num(hi), int(n) if not _na(n) else 0)


RUN_TABLES = ("variants", "scores", "examples", "findings", "train_log")


def load_run(store: Store, run_id: str, tables: tuple[str, ...] = RUN_TABLES) -> RunData:
    """Read one run's rows (variants in plan order, base first); tables not asked for come back empty."""
    frames = {t: store.run_table(run_id, t) if t in tables else store.query(f"SELECT * FROM {t} LIMIT 0")
              for t in RUN_TABLES}
    v = frames["variants"]
    v = pd.concat([v[v["method"] == "base"], v[v["method"] != "base"]], ignore_index=True)
    data = RunData(store.run_row(run_id), v, frames["scores"], frames["examples"], frames["findings"],
                   frames["train_log"])
    data.kinds = suite_kinds(data.scores, data.examples)
    return data


def suite_kinds(scores: pd.DataFrame, examples: pd.DataFrame) -> dict[str, str]:
    """suite name -> scorer kind, from the recorded scorer (falling back to the name, e.g. 'acme-format')."""
    kinds: dict[str, str] = {}
    for suite, scorer in scores[["suite", "scorer"]].drop_duplicates("suite").itertuples(index=False):
        kind = None
        try:
            kind = (json.loads(scorer) or {}).get("kind") if isinstance(scorer, str) else None
        except (ValueError, AttributeError):
            kind = None
        kinds[suite] = str(kind) if kind else _kind_from_name(suite)
    for suite in examples["suite"].unique() if len(examples) else []:
        kinds.setdefault(suite, _kind_from_name(suite))
    return kinds


def _kind_from_name(name: str) -> str:
    return next((k for k in KNOWN_KINDS if name == k or name.endswith("-" + k)), name)


def _na(x: Any) -> bool:
    try:
        return x is None or x is pd.NA or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def num(x: Any) -> float:
    """A float, NaN for missing values."""
    return math.nan if _na(x) else float(x)


def opt(x: Any) -> Any:
    """A plain Python value or None (pandas NA/NaN/NaT -> None; numpy scalars -> Python)."""
    if _na(x):
        return None
    return x.item() if hasattr(x, "item") else x


def fmt(x: Any, digits: int = 3) -> str:
    if _na(x):
        return ""
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits if abs(x) < 10 else min(digits, 1)}f}"


def human_bytes(n: Any) -> str:
    if _na(n):
        return ""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def human_count(n: Any) -> str:
    if _na(n):
        return ""
    n = float(n)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


def human_seconds(s: Any) -> str:
    if _na(s):
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
                if not _na(started) and not _na(finished) else None)

    def js(key: str, kind: type) -> Any:
        try:
            v = json.loads(r[key]) if isinstance(r.get(key), str) else None
        except ValueError:
            v = None
        return v if isinstance(v, kind) else kind()

    suites = js("suites", list)
    return {
        "name": str(r.get("name") or ""), "run_id": str(r["run_id"]), "status": str(r.get("status") or ""),
        "spec": str(r.get("spec") or ""), "spec_hash": str(r.get("spec_hash") or ""),
        "spec_path": str(r.get("spec_path") or ""), "model": str(r.get("model") or ""),
        "model_fingerprint": str(r.get("model_fingerprint") or ""),
        "harness_version": str(r.get("harness_version") or ""), "git_sha": str(r.get("git_sha") or ""),
        "git_dirty": bool(r.get("git_dirty")) if not _na(r.get("git_dirty")) else False,
        "started": "" if _na(started) else f"{started:%Y-%m-%d %H:%M:%S} UTC",
        "finished": "" if _na(finished) else f"{finished:%Y-%m-%d %H:%M:%S} UTC",
        "duration": human_seconds(duration) if duration is not None else "",
        "fingerprints": {str(k): str(v) for k, v in js("data_fingerprints", dict).items()},
        "libraries": {str(k): str(v) for k, v in js("library_versions", dict).items()},
        "suites": [f"{s.get('name')} v{s.get('version')}" if isinstance(s, dict) else str(s) for s in suites],
        "n_variants": len(data.variants),
        "n_failed": int((data.variants["status"] != "finished").sum()),
        "n_reused": int(data.variants["reused"].fillna(False).astype(bool).sum()) if "reused" in data.variants else 0,
    }


# -- forgetting ---------------------------------------------------------------------------------------------
def example_values(examples: pd.DataFrame, key: str) -> pd.Series:
    """Per-example numeric value: detail[key] when it is a number or bool, else `passed` (NaN when neither)."""
    def one(detail: Any, passed: Any) -> float:
        if isinstance(detail, str):
            try:
                d = json.loads(detail)
            except ValueError:
                d = None
            if isinstance(d, dict) and isinstance(d.get(key), int | float | bool):
                return float(d[key])
        return math.nan if _na(passed) else float(bool(passed))

    return pd.Series([one(d, p) for d, p in zip(examples["detail"], examples["passed"], strict=True)],
                     index=examples.index, dtype=float)


def forgetting(data: RunData) -> dict[str, tuple[float, float, float, int]]:
    """variant -> (delta, ci_low, ci_high, n): general-suite accuracy minus base's, paired by example."""
    suite, base = data.suite_of("general"), data.base_id
    if suite is None or base is None or data.examples.empty:
        return {}
    ex = data.examples[data.examples["suite"] == suite]
    if ex.empty:
        return {}
    vals = ex[["variant_id", "example_id"]].assign(v=example_values(ex, "acc").to_numpy())
    table = vals.pivot_table(index="example_id", columns="variant_id", values="v", aggfunc="mean")
    if base not in table:
        return {}
    out = {}
    for vid in table.columns:
        if vid == base:
            continue
        pair = table[[vid, base]].dropna()
        if len(pair):
            d, lo, hi = stats.paired_diff_ci(pair[vid].to_numpy(), pair[base].to_numpy(), resamples=1000)
            out[str(vid)] = (d, lo, hi, len(pair))
    return out


# -- the leaderboard ----------------------------------------------------------------------------------------
@dataclass
class Column:
    """One leaderboard column: a key into each row's cells, a label, a group label and a tooltip."""

    key: str
    label: str
    group: str
    help: str = ""
    numeric: bool = True


def _first_metric(data: RunData, suite: str | None, wanted: tuple[str, ...]) -> str | None:
    """The first metric of `suite` whose name is, or starts with, one of `wanted`."""
    if suite is None:
        return None
    have = list(data.scores[data.scores["suite"] == suite]["metric"].unique())
    for w in wanted:
        for m in have:
            if m == w or m.startswith(w):
                return str(m)
    return None


def primary_metric(data: RunData) -> str | None:
    """The held-out score that ranks variants: field_accuracy when present, else exact_match."""
    return _first_metric(data, data.suite_of("heldout"), ("field_accuracy", "exact_match"))


def _cell(text: Any, sort: Any = None, **kw: Any) -> dict[str, Any]:
    """A table cell: display text, a sort value, and optional ci, title, cls (css class), overfit flag."""
    cell: dict[str, Any] = {"text": "" if _na(text) else str(text), "sort": opt(sort) if sort is not None else None,
            "ci": "", "title": "", "cls": "", "checks": []}
    cell.update(kw)
    return cell


def _ci_cell(s: tuple[float, float, float, int] | None, digits: int = 3) -> dict[str, Any]:
    if s is None or math.isnan(s[0]):
        return _cell("")
    v, lo, hi, n = s
    ci = "" if math.isnan(lo) else f"[{fmt(lo, digits - 1)}, {fmt(hi, digits - 1)}]"
    full = "" if math.isnan(lo) else f"[{fmt(lo, digits + 1)}, {fmt(hi, digits + 1)}]"
    return _cell(fmt(v, digits), v, ci=ci, title=f"{fmt(v, digits + 1)}, 95% CI {full}, n={n}" if ci else f"n={n}")


def leaderboard(data: RunData, forget: dict[str, tuple[float, float, float, int]]
                ) -> tuple[list[Column], list[dict[str, Any]]]:
    """Columns and one row per variant (base first), every cell with display text and a sort value."""
    heldout, fmt_suite, hal = data.suite_of("heldout"), data.suite_of("format"), data.suite_of("hallucination")
    have_h = set(data.scores[data.scores["suite"] == heldout]["metric"]) if heldout else set()
    cols = [Column("name", "variant", "variant", numeric=False), Column("method", "method", "variant", numeric=False),
            Column("rank", "rank", "variant"), Column("epochs", "epochs", "variant"),
            Column("lr", "lr", "variant"), Column("seed", "seed", "variant")]
    cols += [Column(f"h:{m}", m, "held-out", f"suite {heldout}" + ("; lower is better" if m in LOWER_IS_BETTER else ""))
             for m in HELDOUT_METRICS if m in have_h]
    fmt_metric = _first_metric(data, fmt_suite, ("compliance", "pass_rate", "valid_rate"))
    if fmt_metric:
        cols.append(Column("format", fmt_metric, "format", f"suite {fmt_suite}: share of outputs that comply"))
    fab = _first_metric(data, hal, ("fabrication",))
    abst = _first_metric(data, hal, ("abstention", "abstain"))
    if fab:
        cols.append(Column("fab", fab.replace("_rate", ""), "hallucination", f"suite {hal}: {fab}; lower is better"))
    if abst:
        cols.append(Column("abst", abst.replace("_rate", ""), "hallucination", f"suite {hal}: {abst}"))
    if forget:
        cols.append(Column("forget", "Δ acc", "forgetting", f"suite {data.suite_of('general')}: variant "
                           "minus base accuracy, paired by example, 95% CI"))
    cols += [Column("findings", "findings", "verdicts", "overfitting flag and other findings (number to sort)"),
             Column("device", "device", "cost", "device and compute dtype (the device/dtype policy)", numeric=False),
             Column("train_s", "train time", "cost"), Column("tps", "tokens/s", "cost",
                                                              "real training tokens per second; hover: real-token share"),
             Column("params", "params", "cost", "trainable parameters"),
             Column("artifact", "artifact", "cost", "artifact size on disk")]
    fnd = data.findings.groupby("variant_id")["check"].apply(list).to_dict() if len(data.findings) else {}
    rows = []
    for v in data.variants.to_dict("records"):
        vid = str(v["variant_id"])
        cells: dict[str, dict[str, Any]] = {
            "name": _cell(v["name"], str(v["name"])), "method": _cell(v["method"], str(v["method"])),
            "rank": _cell(opt(v["rank"]), opt(v["rank"])), "epochs": _cell(opt(v["epochs"]), opt(v["epochs"])),
            "lr": _cell("" if _na(v["learning_rate"]) else f"{float(v['learning_rate']):.0e}", opt(v["learning_rate"])),
            "seed": _cell(opt(v["seed"]), opt(v["seed"]))}
        for m in HELDOUT_METRICS:
            if m in have_h:
                cells[f"h:{m}"] = _ci_cell(data.score(vid, heldout, m))
        if fmt_metric:
            cells["format"] = _ci_cell(data.score(vid, fmt_suite, fmt_metric))
        if fab:
            cells["fab"] = _ci_cell(data.score(vid, hal, fab))
        if abst:
            cells["abst"] = _ci_cell(data.score(vid, hal, abst))
        if forget:
            f = forget.get(vid)
            cells["forget"] = _ci_cell(f) if f else _cell("0 (reference)" if vid == data.base_id else "", None)
            if f and f[2] < 0:
                cells["forget"]["cls"] = "bad"
        checks = fnd.get(vid, [])
        cells["findings"] = _cell(", ".join(sorted(set(map(str, checks)))), len(checks),
                                  checks=sorted(set(map(str, checks))))
        cells["train_s"] = _cell(human_seconds(v.get("train_seconds")), opt(v.get("train_seconds")))
        where = " ".join(str(v[k]) for k in ("device", "dtype") if not _na(v.get(k)))
        cells["device"] = _cell(where, where, title=f"peak memory {fmt(v.get('peak_memory_mb'), 0)} MB"
                                if not _na(v.get("peak_memory_mb")) else "")
        share = v.get("real_token_share")
        cells["tps"] = _cell(fmt(v.get("tokens_per_second"), 0), opt(v.get("tokens_per_second")),
                             title="" if _na(share) else f"real-token share {float(share):.0%} (real / processed tokens)")
        cells["params"] = _cell(human_count(v.get("trainable_params")), opt(v.get("trainable_params")),
                                title="" if _na(v.get("total_params")) else
                                f"{opt(v['trainable_params']) or 0:,} of {opt(v['total_params']):,}")
        cells["artifact"] = _cell(human_bytes(v.get("artifact_bytes")), opt(v.get("artifact_bytes")),
                                  title=str(v.get("artifact") or ""))
        rows.append({"variant_id": vid, "name": str(v["name"]), "method": str(v["method"]),
                     "status": str(v["status"]), "error": str(v.get("error") or ""),
                     "reused": bool(opt(v.get("reused"))), "is_base": v["method"] == "base",
                     "n_findings": len(checks), "cells": cells})
    return cols, rows


def recommend(data: RunData, forget: dict[str, tuple[float, float, float, int]]) -> tuple[str | None, str]:
    """The best held-out variant among finished non-base variants without findings, and why."""
    metric, suite = primary_metric(data), data.suite_of("heldout")
    if metric is None:
        return None, "No recommendation: this run has no held-out field_accuracy or exact_match scores."
    flagged = set(data.findings["variant_id"]) if len(data.findings) else set()
    cands, excluded = [], []
    for v in data.variants.to_dict("records"):
        vid = str(v["variant_id"])
        if v["method"] == "base" or v["status"] != "finished":
            continue
        s = data.score(vid, suite, metric)
        if s is None or math.isnan(s[0]):
            continue
        if vid in flagged:
            checks = sorted(set(data.findings[data.findings["variant_id"] == vid]["check"].astype(str)))
            excluded.append(f"{v['name']} ({', '.join(checks)})")
            continue
        f = forget.get(vid, (0.0,))[0]
        cands.append((s[0], -f if math.isnan(f) else f, str(v["name"]), vid, s))
    if not cands:
        why = f" {len(excluded)} excluded for findings: {'; '.join(excluded[:5])}." if excluded else ""
        return None, f"No recommendation: no finished fine-tuned variant without findings has a {metric} score.{why}"
    cands.sort(key=lambda c: (-c[0], -c[1], c[2]))
    best = cands[0]
    v, lo, hi, n = best[4]
    reason = (f"Highest held-out {metric} ({fmt(v)}, 95% CI [{fmt(lo)}, {fmt(hi)}], n={n}) among "
              f"{len(cands)} finished variant{'s' if len(cands) != 1 else ''} without findings.")
    base = data.score(data.base_id, suite, metric) if data.base_id else None
    if base is not None and not math.isnan(base[0]):
        reason += f" Base scores {fmt(base[0])}."
    if len(cands) > 1:
        r = cands[1]
        overlap = r[4][2] >= lo
        reason += (f" Runner-up {r[2]} at {fmt(r[0])}" + ("; the intervals overlap, so the lead may be noise."
                                                          if overlap else "; the intervals do not overlap."))
    if excluded:
        more = f" and {len(excluded) - 5} more" if len(excluded) > 5 else ""
        reason += f" Excluded for findings: {'; '.join(excluded[:5])}{more}."
    return best[3], reason


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
            try:
                ev_text = json.dumps(json.loads(ev), indent=2, ensure_ascii=False) if isinstance(ev, str) else ""
            except ValueError:
                ev_text = str(ev)
            items.append({"check": str(f.get("check") or ""), "severity": str(f.get("severity") or ""),
                          "message": str(f.get("message") or ""), "evidence": ev_text})
        groups.append({"variant_id": str(vid), "name": str(names.get(vid, vid)), "entries": items})
    return groups
