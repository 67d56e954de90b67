"""What a report shows, read from the store alone: run header, leaderboard, forgetting, recommendation, findings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NotRequired, TypedDict

import pandas as pd

from harness.report.findings_view import detectable, findings_by_variant
from harness.scorers import metric_info
from harness.scores import JSONValue
from harness.store.reads import RunData, is_missing, num
from harness.verdicts.compare import Comparison
from harness.verdicts.recommend import primary

__all__ = ["KIND_ORDER", "Cell", "Column", "cell", "Header", "LeaderRow", "ci_cell", "data_checks", "declared_columns",
           "detectable", "findings_by_variant", "fmt", "forgetting_cells", "forgetting_mde", "header", "human_bytes",
           "human_count", "human_seconds", "leaderboard", "opt", "primary_metric"]

# Held-out metrics shown on the leaderboard, in this order, when present (every metric is under "All scores").
KIND_ORDER = ("heldout", "format", "hallucination", "general", "divergence")  # the report's order of suites
Forget = dict[str, tuple[float, float, float, int]]  # variant -> forgetting delta, ci_low, ci_high, n


def opt(x: object) -> JSONValue:
    """A plain Python value or None (pandas NA/NaN/NaT -> None; numpy scalars -> Python; anything else as text)."""
    if is_missing(x):
        return None
    item = getattr(x, "item", None)
    plain = item() if callable(item) else x
    return plain if isinstance(plain, str | int | float | bool) else str(plain)


def fmt(value: object, digits: int = 3) -> str:
    x = num(value)
    if math.isnan(x):
        return ""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits if abs(x) < 10 else min(digits, 1)}f}"


def human_bytes(value: object) -> str:
    if is_missing(value):
        return ""
    n = num(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def human_count(value: object) -> str:
    if is_missing(value):
        return ""
    n = num(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


def human_seconds(value: object) -> str:
    if is_missing(value):
        return ""
    s = num(value)
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


# -- the header ---------------------------------------------------------------------------------------------
class Header(TypedDict):
    """The report's header: the run, its spec and provenance, as display strings."""

    name: str
    run_id: str
    status: str
    spec: str
    spec_hash: str
    spec_path: str
    model: str
    model_fingerprint: str
    harness_version: str
    git_sha: str
    git_dirty: bool
    started: str
    finished: str
    duration: str
    fingerprints: dict[str, str]
    libraries: dict[str, str]
    suites: list[str]
    n_variants: int
    n_failed: int
    n_reused: int


def header(data: RunData) -> Header:
    """Run name, spec, provenance and timing, as display strings."""
    r = data.run
    started, finished = r.get("started_at"), r.get("finished_at")
    duration = ((pd.Timestamp(finished) - pd.Timestamp(started)).total_seconds()
                if not is_missing(started) and not is_missing(finished) else None)

    def mapping(key: str) -> dict[str, str]:
        value = r.get(key)
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    stored = r.get("suites")
    suites: list[object] = list(stored) if isinstance(stored, list) else []
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
        "fingerprints": mapping("data_fingerprints"), "libraries": mapping("library_versions"),
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


class Cell(TypedDict):
    """A table cell: display text, a sort value, its interval, hover title, css class and the findings it lists."""

    text: str
    sort: JSONValue
    ci: str
    title: str
    cls: str
    checks: list[str]
    delta: NotRequired[str]  # a breakdown cell's point difference from base


def cell(text: object, sort: object = None, *, ci: str = "", title: str = "", cls: str = "",
          checks: list[str] | None = None) -> Cell:
    """A table cell: display text, a sort value, and optional ci, title, cls (css class), finding checks."""
    return Cell(text="" if is_missing(text) else str(text), sort=opt(sort) if sort is not None else None, ci=ci,
                title=title, cls=cls, checks=checks or [])


def ci_cell(s: tuple[float, float, float, int] | None, digits: int = 3) -> Cell:
    if s is None or math.isnan(s[0]):
        return cell("")
    v, lo, hi, n = s
    ci = "" if math.isnan(lo) else f"[{fmt(lo, digits - 1)}, {fmt(hi, digits - 1)}]"
    full = "" if math.isnan(lo) else f"[{fmt(lo, digits + 1)}, {fmt(hi, digits + 1)}]"
    return cell(fmt(v, digits), v, ci=ci, title=f"{fmt(v, digits + 1)}, 95% CI {full}, n={n}" if ci else f"n={n}")


def leaderboard(data: RunData, forget: dict[str, tuple[float, float, float, int]],
                mde: dict[str, float] | None = None) -> tuple[list[Column], list[LeaderRow]]:
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
        cells: dict[str, Cell] = {
            "name": cell(v["name"], str(v["name"])), "method": cell(v["method"], str(v["method"])),
            "rank": cell(opt(v["rank"]), opt(v["rank"])), "epochs": cell(opt(v["epochs"]), opt(v["epochs"])),
            "lr": cell("" if is_missing(v["learning_rate"]) else f"{float(v['learning_rate']):.0e}", opt(v["learning_rate"])),
            "seed": cell(opt(v["seed"]), opt(v["seed"]))}
        for key, (suite, metric, _, _, _) in declared.items():
            cells[key] = ci_cell(data.score(vid, suite, metric))
        if forget:
            f = forget.get(vid)
            cells["forget"] = ci_cell(f) if f else cell("0 (reference)" if vid == data.base_id else "", None)
            if f and f[2] < 0:
                cells["forget"]["cls"] = "bad"
            if f and mde and vid in mde:
                cells["forget"]["title"] += f"; detects changes >= {mde[vid]:.3f} (80% power)"
        checks = fnd.get(vid, [])
        cells["findings"] = cell(", ".join(sorted(set(map(str, checks)))), len(checks),
                                  checks=sorted(set(map(str, checks))))
        cells.update(_cost_cells(v))
        rows.append(LeaderRow(variant_id=vid, name=str(v["name"]), method=str(v["method"]), status=str(v["status"]),
                              error=str(v.get("error") or v.get("stop_reason") or ""), reused=bool(opt(v.get("reused"))),
                              is_base=v["method"] == "base", n_findings=len(checks), cells=cells))
    return cols, rows


class LeaderRow(TypedDict):
    """A leaderboard row: the variant, its status, and its cells by column key."""

    variant_id: str
    name: str
    method: str
    status: str
    error: str
    reused: bool
    is_base: bool
    n_findings: int
    cells: dict[str, Cell]


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


def _ran_on(v: Mapping[str, object]) -> str:
    """The device cell's tooltip: peak memory, and how the variant ran (processes, strategy, devices, node)."""
    parts = [f"peak memory {fmt(v.get('peak_memory_mb'), 0)} MB"] if not is_missing(v.get("peak_memory_mb")) else []
    processes = v.get("processes")
    if not is_missing(processes):
        strategy = "" if is_missing(v.get("strategy")) else f" ({v['strategy']})"
        parts.append(f"{processes} training process{'es' if processes != 1 else ''}{strategy}")
    parts += [f"{k} {v[k]}" for k in ("devices", "node") if not is_missing(v.get(k))]
    return "; ".join(parts)


def _cost_cells(v: Mapping[str, object]) -> dict[str, Cell]:
    """What a variant cost: training time, where it ran, tokens/s, parameters, artifact size, and per request."""
    where = " ".join(str(v[k]) for k in ("device", "dtype") if not is_missing(v.get(k)))
    share = v.get("real_token_share")
    return {
        "train_s": cell(human_seconds(v.get("train_seconds")), opt(v.get("train_seconds"))),
        "device": cell(where, where, title=_ran_on(v)),
        "tps": cell(fmt(v.get("tokens_per_second"), 0), opt(v.get("tokens_per_second")),
                     title="" if is_missing(share) else f"real-token share {num(share or 0):.0%} (real / processed tokens)"),
        "params": cell(human_count(v.get("trainable_params")), opt(v.get("trainable_params")),
                        title="" if is_missing(v.get("total_params")) else
                        f"{opt(v['trainable_params']) or 0:,} of {opt(v['total_params']):,}"),
        "artifact": cell(human_bytes(v.get("artifact_bytes")), opt(v.get("artifact_bytes")),
                          title=str(v.get("artifact") or "")),
        "prompt_tok": cell(fmt(v.get("prompt_tokens_per_request"), 0), opt(v.get("prompt_tokens_per_request")),
                            title=_prompt_title(v)),
        "output_tok": cell(fmt(v.get("output_tokens_per_request"), 0), opt(v.get("output_tokens_per_request"))),
        "s_req": cell(fmt(v.get("seconds_per_request"), 3), opt(v.get("seconds_per_request"))),
    }


def _prompt_title(v: Mapping[str, object]) -> str:
    """A prompt variant's prompt, for the cell's hover text: its shots and the start of its system prompt."""
    config = v.get("config")
    prompt = config.get("prompt") if isinstance(config, dict) else None
    if not prompt or not isinstance(prompt, dict):
        return ""
    system = str(prompt.get("system") or "")
    return (f"{prompt.get('shots') or 0} few-shot examples from the training split"
            + (f"; system prompt: {system[:200]}{'...' if len(system) > 200 else ''}" if system else ""))


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
