"""The report's client-side data: plot series, the example explorer (compact, interned) and the cross-run view."""

from __future__ import annotations

import json
import math
from typing import TypedDict

import numpy as np
import pandas as pd

from harness.report.data import KIND_ORDER, Cell, ci_cell, fmt, opt, primary_metric
from harness.report.sample import ExampleSample
from harness.scores import JSONDict, JSONValue
from harness.store.db import Store
from harness.store.reads import RunData, is_missing, load_run, num, sample_index

# Suites of these kinds come first in the score tables and the explorer, in this order.

MAX_TRAIN_POINTS = 200  # per variant; the loss curve is downsampled beyond this


def _r(x: object) -> float | None:
    """A float rounded to 4 significant digits for the page (None for missing)."""
    f = x if isinstance(x, float | int) else num(x)
    return float(f"{f:.4g}") if math.isfinite(f) else None


class Strings:
    """An interned string table: every distinct prompt, reference, output or text value is stored once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def add(self, s: object) -> int:
        if s is None or (isinstance(s, float) and math.isnan(s)) or s is pd.NA:
            return -1
        text = str(s)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(text)
        return i


def variant_list(data: RunData) -> list[JSONDict]:
    return [{"id": str(v["variant_id"]), "name": str(v["name"]), "method": str(v["method"]),
             "status": str(v["status"]), "rank": opt(v["rank"]), "epochs": opt(v["epochs"])}
            for v in data.variants.to_dict("records")]


# -- plots ---------------------------------------------------------------------------------------------------
def loss_curves(data: RunData, vindex: dict[str, int]) -> list[JSONDict]:
    """Per variant: train and validation loss by epoch (train downsampled), and the best validation epoch."""
    out: list[JSONDict] = []
    log = data.train_log
    if log.empty:
        return out
    log = log.dropna(subset=["loss"]).sort_values(["variant_id", "step"])
    rows = {str(v["variant_id"]): v for v in data.variants.to_dict("records")} if "scored_step" in data.variants else {}
    for vid, part in log.groupby("variant_id", sort=False):
        if vid not in vindex:
            continue
        x = part["epoch"].fillna(part["step"]).to_numpy(dtype=float)
        y = part["loss"].to_numpy(dtype=float)
        is_val = (part["split"] == "validation").to_numpy()
        tr = np.flatnonzero(~is_val)
        if len(tr) > MAX_TRAIN_POINTS:
            tr = tr[np.linspace(0, len(tr) - 1, MAX_TRAIN_POINTS).round().astype(int)]
        va = np.flatnonzero(is_val)
        best = None
        if len(va):
            b = va[int(np.argmin(y[va]))]
            best = [_r(x[b]), _r(y[b])]
        out.append({"v": vindex[vid], "train": [[_r(x[i]), _r(y[i])] for i in tr],
                    "val": [[_r(x[i]), _r(y[i])] for i in va], "best": best, "scored": _scored_point(rows.get(str(vid)), part)})
    return out


def _scored_point(v: dict[str, object] | None, part: pd.DataFrame) -> list[JSONValue] | None:
    """[epoch, loss, why] of the checkpoint the variant (its `variants` row) was scored at (train.select), where
    its row records one."""
    if v is None or is_missing(v.get("scored_step")):
        return None
    step = int(str(v["scored_step"]))
    at = part[(part["step"] == step)]
    val = at[at["split"] == "validation"]
    y = float((val if len(val) else at)["loss"].iloc[0]) if len(at) else None
    config = v.get("config")
    scored = config.get("scored") if isinstance(config, dict) else None
    why = str((scored if isinstance(scored, dict) else {}).get("why") or "")
    return [_r(num(v.get("scored_epoch"))), None if y is None else _r(y), why]


def pareto(data: RunData, vindex: dict[str, int], forget: dict[str, tuple[float, float, float, int]]
           ) -> JSONDict:
    """Held-out score against forgetting delta per variant, with the Pareto front (maximise both) marked."""
    metric, suite = primary_metric(data), data.suite_of("heldout")
    if metric is None or not forget:
        return {"metric": metric, "points": []}
    pts: list[tuple[float, float, JSONDict]] = []
    for vid, idx in vindex.items():
        s = data.score(vid, suite, metric)
        f = (0.0, 0.0, 0.0, 0) if vid == data.base_id else forget.get(vid)
        if s is None or f is None or math.isnan(s[0]) or math.isnan(f[0]):
            continue
        pts.append((f[0], s[0], {"v": idx, "x": _r(f[0]), "xlo": _r(f[1]), "xhi": _r(f[2]), "y": _r(s[0]),
                                 "ylo": _r(s[1]), "yhi": _r(s[2]), "front": False}))
    best_y = -math.inf
    for _x, y, p in sorted(pts, key=lambda t: (-t[0], -t[1])):
        if y > best_y:
            p["front"] = True
            best_y = y
    return {"metric": metric, "points": [p for _, _, p in pts]}


def heatmap(data: RunData) -> JSONDict:
    """Mean held-out score by (method, rank) x epochs, over learning rates and seeds."""
    metric, suite = primary_metric(data), data.suite_of("heldout")
    v = data.variants[(data.variants["status"] == "finished") & data.variants["epochs"].notna()]
    if metric is None or v.empty:
        return {"metric": metric, "rows": [], "cols": [], "cells": []}
    recs = []
    for r in v.to_dict("records"):
        s = data.score(str(r["variant_id"]), suite, metric)
        if s is None or math.isnan(s[0]):
            continue
        label = str(r["method"]) + ("" if opt(r["rank"]) is None else f" r{int(r['rank'])}")
        recs.append({"row": label, "method": str(r["method"]), "rank": opt(r["rank"]) or 0,
                     "col": int(r["epochs"]), "value": s[0], "name": str(r["name"])})
    if not recs:
        return {"metric": metric, "rows": [], "cols": [], "cells": []}
    df = pd.DataFrame(recs)
    order = df.drop_duplicates("row").sort_values(["method", "rank"])["row"].tolist()
    cols = sorted(df["col"].unique().tolist())
    cells = []
    for (row, col), g in df.groupby(["row", "col"]):
        cells.append({"r": order.index(row), "c": cols.index(col), "v": _r(g["value"].mean()), "n": len(g),
                      "names": g["name"].head(6).tolist()})
    base = data.score(data.base_id, suite, metric) if data.base_id else None
    return {"metric": metric, "rows": order, "cols": [int(c) for c in cols], "cells": cells,
            "base": _r(base[0]) if base else None}


def suite_scores(data: RunData, vindex: dict[str, int]) -> list[JSONDict]:
    """Every (suite, metric) with each variant's value and CI, for the per-suite bar chart."""
    out: list[JSONDict] = []
    sc = data.scores[data.scores["variant_id"].isin(vindex)]
    for (suite, metric), g in sc.groupby(["suite", "metric"], sort=False):
        vals = [[vindex[str(r.variant_id)], _r(r.value), _r(r.ci_low), _r(r.ci_high)]
                for r in g.itertuples(index=False)]
        vals.sort(key=lambda t: t[0] or 0)
        out.append({"suite": str(suite), "metric": str(metric), "kind": data.kinds.get(suite, ""), "values": vals})
    return out


# -- the example explorer ------------------------------------------------------------------------------------
def _detail_columns(details: list[JSONValue]) -> dict[str, tuple[str, list[JSONValue]]]:
    """Flatten per-example detail objects into typed columns: key -> (type, values); type: bool | num | text."""
    parsed = [d if isinstance(d, dict) else ({} if d is None else {"detail": d}) for d in details]
    keys: dict[str, None] = {}
    for d in parsed:
        keys.update(dict.fromkeys(d))
    cols: dict[str, tuple[str, list[JSONValue]]] = {}
    for k in keys:
        vals = [d.get(k) for d in parsed]
        present = [x for x in vals if x is not None]
        if present and all(isinstance(x, bool) for x in present):
            cols[str(k)] = ("bool", [None if x is None else int(bool(x)) for x in vals])
        elif present and all(isinstance(x, int | float) and not isinstance(x, bool) for x in present):
            cols[str(k)] = ("num", [_r(x) if x is not None else None for x in vals])
        else:
            cols[str(k)] = ("text", [x if isinstance(x, str) or x is None else json.dumps(x, ensure_ascii=False)
                                     for x in vals])
    return cols


def explorer(sample: ExampleSample, data: RunData, vindex: dict[str, int], strings: Strings) -> list[JSONDict]:
    """Per suite: the embedded examples' ids, prompts, references, why each is shown, how many variants pass it,
    and per variant its rows (`cols`: positions into the suite's examples, outputs, pass flags, detail columns).

    Texts are indexes into `strings`; a variant lists only the examples it has a row for, so a sample of a large
    sweep costs only its own rows.
    """
    ex = sample.rows
    if ex.empty:
        return []
    base = data.base_id
    ex = ex[ex["variant_id"].isin(vindex)]
    ex = pd.concat([ex[ex["variant_id"] == base], ex[ex["variant_id"] != base]]) if base else ex
    suites = sorted(ex["suite"].unique(), key=lambda s: (_kind_order(data.kinds.get(s, "")), str(s)))
    totals = {c.suite: c for c in sample.suites}
    sample_values: dict[str, dict[tuple[str, str], dict[str, float | None]]] = {}  # suite -> (variant, example) -> values
    for (vid, suite, metric), by_example in sample_index(sample.samples).items():
        for eid, value in by_example.items():
            sample_values.setdefault(suite, {}).setdefault((vid, eid), {})[metric] = _r(value)
    out: list[JSONDict] = []
    for suite in suites:
        part = ex[ex["suite"] == suite]
        codes, ids = pd.factorize(part["example_id"].astype(str))
        first = part.assign(_c=codes).drop_duplicates("_c").sort_values("_c")
        present = set(part["variant_id"])
        vids = [v for v in vindex if v in present]
        values = sample_values.get(str(suite), {})
        shown: list[JSONValue] = [{**values.get((str(v), str(e)), {}), **(d if isinstance(d, dict) else {} if d is None else {"detail": d})}
                 for v, e, d in zip(part["variant_id"], part["example_id"], part["detail"], strict=True)]
        columns = _detail_columns(shown)
        dkeys = [{"key": key, "type": typ} for key, (typ, _) in columns.items()]
        dvals = [[None if x is None else strings.add(x) for x in vals] if typ == "text" else vals
                 for typ, vals in columns.values()]
        outs = [strings.add(o) for o in part["output"]]
        passed = [-1 if opt(p) is None else int(bool(p)) for p in part["passed"]]
        where: dict[str, list[int]] = {}
        for k, v in enumerate(part["variant_id"]):
            where.setdefault(v, []).append(k)
        cols: list[JSONDict] = []
        for v in vids:
            ks = where[v]
            cols.append({"i": [int(codes[k]) for k in ks], "out": [outs[k] for k in ks],
                         "pass": [passed[k] for k in ks], "d": [[vals[k] for k in ks] for vals in dvals]})
        count = totals.get(str(suite))
        why = [strings.add(sample.why.get((str(suite), str(i)))) for i in ids]
        agree = [list(sample.agree[(str(suite), str(i))]) if (str(suite), str(i)) in sample.agree else None
                 for i in ids]
        out.append({
            "suite": str(suite), "kind": data.kinds.get(suite, ""), "ids": [str(i) for i in ids],
            "prompt": [strings.add(p) for p in first["prompt"]],
            "reference": [strings.add(r) for r in first["reference"]],
            "variants": [vindex[v] for v in vids], "cols": cols, "dkeys": dkeys,
            "total": count.examples if count else len(ids), "why": why if any(w >= 0 for w in why) else None,
            "agree": agree if any(a is not None for a in agree) else None,
        })
    return out


def _kind_order(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# -- across runs ---------------------------------------------------------------------------------------------
def compare(store: Store, main: RunData, others: list[str]) -> JSONDict:
    """Scores of variants matched by name across runs, oldest run first, for tables and line charts."""
    runs = [main] + [load_run_scores(store, r) for r in others if r != main.run["run_id"]]
    runs.sort(key=lambda d: (pd.Timestamp(d.run["started_at"]) if opt(d.run.get("started_at")) is not None
                             else pd.Timestamp.min, str(d.run["run_id"])))
    names: dict[str, None] = {}
    metrics: dict[tuple[str, str], None] = {}
    for d in runs:
        names.update(dict.fromkeys(d.variants["name"].astype(str)))
        metrics.update(dict.fromkeys(zip(d.scores["suite"].astype(str), d.scores["metric"].astype(str), strict=True)))
    mlist = list(metrics)
    by_name = [dict(zip(d.variants["name"].astype(str), d.variants["variant_id"].astype(str), strict=True))
               for d in runs]
    values: list[list[list[list[float | None] | None]]] = []
    for name in names:
        per_metric = []
        for suite, metric in mlist:
            series: list[list[float | None] | None] = []
            for d, ids in zip(runs, by_name, strict=True):
                s = d.score(ids[name], suite, metric) if name in ids else None
                series.append(None if s is None or math.isnan(s[0]) else [_r(s[0]), _r(s[1]), _r(s[2])])
            per_metric.append(series)
        values.append(per_metric)
    primary = primary_metric(main)
    heldout = main.suite_of("heldout")
    key = (heldout, primary) if heldout and primary else None
    default = mlist.index(key) if key in metrics else 0
    table: list[JSONDict] = []
    for ni, name in enumerate(names):
        cells: list[dict[str, str]] = []
        prev: float | None = None
        for point in (values[ni][default] if mlist else []):
            v = point[0] if point else None
            delta = "" if v is None or prev is None else f"{v - prev:+.3f}"
            cells.append({"text": fmt(v), "delta": delta, "ci": f"[{fmt(point[1])}, {fmt(point[2])}]" if point else ""})
            prev = v if v is not None else prev
        table.append({"name": name, "cells": cells})
    return {
        "runs": [{"id": str(d.run["run_id"]), "name": str(d.run.get("name") or ""),
                  "started": "" if opt(d.run.get("started_at")) is None else f"{d.run['started_at']:%Y-%m-%d %H:%M}",
                  "sha": str(d.run.get("git_sha") or "")[:10], "main": d is main} for d in runs],
        "metrics": [list(m) for m in mlist], "names": list(names), "values": values, "default": default,
        "table": table, "table_metric": f"{mlist[default][0]} / {mlist[default][1]}" if mlist else "",
    }


def load_run_scores(store: Store, run_id: str) -> RunData:
    """A run for comparison: its variants and scores (examples are not needed)."""
    return load_run(store, run_id, tables=("variants", "scores"))


class ScoreRow(TypedDict):
    """A row of a suite's score table: the variant's name and one cell per metric."""

    name: str
    cells: list[Cell]


class ScoreTable(TypedDict):
    """One suite's stored scores: metrics as columns, variants as rows."""

    suite: str
    kind: str
    metrics: list[str]
    rows: list[ScoreRow]
    version: str


def score_tables(data: RunData) -> list[ScoreTable]:
    """Every stored score, generically: one table per suite, metrics as columns, variants as rows."""
    out = []
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    for suite in data.scores["suite"].unique():
        sub = data.scores[data.scores["suite"] == suite]
        metrics = [str(m) for m in sub["metric"].unique()]
        rows = []
        have = set(sub["variant_id"])
        for vid in data.variants["variant_id"]:
            if vid not in have:
                continue
            rows.append(ScoreRow(name=str(names[vid]), cells=[ci_cell(data.score(vid, suite, m)) for m in metrics]))
        out.append(ScoreTable(suite=str(suite), kind=data.kinds.get(suite, ""), metrics=metrics, rows=rows,
                              version=str(opt(sub["suite_version"].iloc[0]) or "")))
    return out
