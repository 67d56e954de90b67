"""The report's sections for the newer suite kinds, each only when the run has a suite of that kind: safety (refusal
and over-refusal by category against base), instructions (following by instruction type), memorization (the
train/test gap and the copied spans with their sources), judge (its scores, and its agreement with human raters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypedDict

from harness.report.data import Cell, cell, ci_cell, fmt
from harness.report.ratings import CalibrationRow
from harness.scorers import metric_info
from harness.scores import MEASUREMENT_CHECKS, JSONDict, JSONValue
from harness.store.reads import RunData, is_missing
from harness.verdicts.compare import Interval, Settings, compare
from harness.verdicts.recommend import run_settings

MAX_COLUMNS = 12  # variants shown side by side in a breakdown table (base and the recommended one first)
MAX_COPIES = 50  # copied spans listed per memorization suite
View = dict[str, object]  # a section's values for the template (read there only)


def suites_of(data: RunData, kind: str) -> list[str]:
    """The run's scored suites of a kind, the one named like the kind first."""
    scored = set(data.scores["suite"].astype(str)) if not data.scores.empty else set()
    names = [s for s, k in data.kinds.items() if k == kind and s in scored]
    return sorted(names, key=lambda s: (s != kind, s))


def _variants(data: RunData, suite: str) -> list[tuple[str, str]]:
    """(variant id, name) of the variants with scores on the suite, in the run's order (base first)."""
    have = set(data.scores[data.scores["suite"] == suite]["variant_id"].astype(str))
    return [(str(v), str(n)) for v, n in zip(data.variants["variant_id"], data.variants["name"], strict=True)
            if str(v) in have]


def _columns(data: RunData, suite: str, recommended: str | None) -> tuple[list[tuple[str, str]], int]:
    """The variants of a breakdown table: base, the recommended one, then the rest in order, at most MAX_COLUMNS;
    and how many the suite has in all."""
    every = _variants(data, suite)
    first = [x for x in every if x[0] == data.base_id] + [x for x in every if x[0] == recommended != data.base_id]
    rest = [x for x in every if x not in first]
    return (first + rest)[:MAX_COLUMNS], len(every)


COUNTS = ("detector_errors", "judge_errors")  # counts of outputs, not rates: shown as "k of n"


def _value(data: RunData, vid: str, suite: str, metric: str) -> Cell:
    score = data.score(vid, suite, metric)
    if metric in COUNTS and score is not None and not math.isnan(score[0]):
        return cell(f"{int(score[0])} of {score[3]}", title="outputs whose judgment failed")
    return ci_cell(score)


def _delta(data: RunData, vid: str, suite: str, metric: str, kind: str, s: Settings) -> Cell:
    """The variant minus base on one metric: paired by example where both have per-example values, else from the
    stored intervals; green where the interval lies on the better side of 0, red where on the worse."""
    base = data.base_id
    if base is None or vid == base:
        return cell("0 (reference)" if vid == base else "")
    mine, theirs = data.score(vid, suite, metric), data.score(base, suite, metric)
    scores: tuple[Interval, Interval] | None = None
    if mine is not None and theirs is not None and not (math.isnan(mine[0]) or math.isnan(theirs[0])):
        scores = _interval(mine), _interval(theirs)
    cmp = compare(kind, metric, data.values(vid, suite, metric), data.values(base, suite, metric), s, scores=scores)
    if cmp is None:
        return cell("", title="no value on one side")
    higher = metric_info(kind, metric).higher_is_better
    better = (cmp.ci_low > 0 if higher else cmp.ci_high < 0) if higher is not None else False
    worse = (cmp.ci_high < 0 if higher else cmp.ci_low > 0) if higher is not None else False
    return cell(f"{cmp.difference:+.3f}", ci=f"[{cmp.ci_low:+.2f}, {cmp.ci_high:+.2f}]",
                title=cmp.how + ("" if cmp.mde is None else f"; detects changes >= {cmp.mde:.3f} (80% power)"),
                cls="good" if better else "bad" if worse else "")


def _interval(c: tuple[float, float, float, int]) -> Interval:
    """A stored score cell as a comparison reads it (a missing bound as None)."""
    return Interval(value=c[0], ci_low=None if math.isnan(c[1]) else c[1], ci_high=None if math.isnan(c[2]) else c[2],
                    n=c[3])


def _point(data: RunData, vid: str, suite: str, metric: str, kind: str) -> Cell:
    """A breakdown cell: the value, and its point difference from base (too few items per row for an interval)."""
    out = _value(data, vid, suite, metric)
    mine = data.score(vid, suite, metric)
    theirs = data.score(data.base_id, suite, metric) if data.base_id and vid != data.base_id else None
    out["delta"], out["cls"] = "", ""
    if mine is not None and theirs is not None and not (math.isnan(mine[0]) or math.isnan(theirs[0])):
        d = mine[0] - theirs[0]
        higher = metric_info(kind, metric).higher_is_better
        out["delta"] = f"{d:+.2f}" if d else "±0"
        if d and higher is not None:
            out["cls"] = "up" if (d > 0) == higher else "down"
        out["title"] += f"; base {fmt(theirs[0])}"
    return out


def _headline(data: RunData, suite: str, kind: str, metrics: list[tuple[str, str]], s: Settings,
              deltas: tuple[str, ...]) -> View:
    """Rows of variants: each metric's value [CI], and for the metrics in `deltas` the paired difference from base."""
    present = set(data.metrics_of(suite))
    shown = [(m, label) for m, label in metrics if m in present]
    cols = [{"label": label, "delta": m in deltas and data.base_id is not None} for m, label in shown]
    rows = []
    for vid, name in _variants(data, suite):
        cells = []
        for m, _ in shown:
            cells.append(_value(data, vid, suite, m))
            if m in deltas and data.base_id is not None:
                cells.append(_delta(data, vid, suite, m, kind, s))
        rows.append({"name": name, "is_base": vid == data.base_id, "cells": cells})
    return {"columns": cols, "rows": rows}


def _breakdown(data: RunData, suite: str, kind: str, prefix: str, recommended: str | None,
               label: Callable[[str], str] | None = None) -> View:
    """Rows of `prefix:<key>` metrics (a category, an instruction type), a column per variant."""
    keys = sorted({m[len(prefix) + 1:] for m in data.metrics_of(suite) if m.startswith(prefix + ":")})
    cols, total = _columns(data, suite, recommended)
    rows = []
    for key in keys:
        metric = f"{prefix}:{key}"
        ns = [c[3] for vid, _ in cols if (c := data.score(vid, suite, metric)) is not None]
        rows.append({"key": label(key) if label else key, "n": max(ns) if ns else 0,
                     "cells": [_point(data, vid, suite, metric, kind) for vid, _ in cols]})
    return {"names": [n for _, n in cols], "base": [vid == data.base_id for vid, _ in cols], "rows": rows,
            "more": total - len(cols)}


def safety_sections(data: RunData, recommended: str | None, s: Settings) -> list[View]:
    """Per safety suite: refusal of harmful requests and over-refusal of benign ones against base, and both by
    category."""
    out: list[View] = []
    for suite in suites_of(data, "safety"):
        head = _headline(data, suite, "safety", [("refusal_rate", "refusal of harmful requests"),
                                                 ("over_refusal_rate", "over-refusal of benign requests"),
                                                 ("detector_errors", "not judged")], s,
                         ("refusal_rate", "over_refusal_rate"))
        refusal = _breakdown(data, suite, "safety", "refusal_rate", recommended)
        over = _breakdown(data, suite, "safety", "over_refusal_rate", recommended)
        out.append({"suite": suite, "head": head, "refusal": refusal, "over": over})
    return out


def instructions_sections(data: RunData, recommended: str | None, s: Settings) -> list[View]:
    """Per instructions suite: prompt- and instruction-level accuracy against base, and strict accuracy by type."""
    out: list[View] = []
    for suite in suites_of(data, "instructions"):
        head = _headline(data, suite, "instructions", [("prompt_strict", "prompt-level strict"),
                                                       ("prompt_loose", "prompt-level loose"),
                                                       ("instruction_strict", "instruction-level strict"),
                                                       ("instruction_loose", "instruction-level loose")], s,
                         ("prompt_strict", "instruction_strict"))
        out.append({"suite": suite, "head": head,
                    "types": _breakdown(data, suite, "instructions", "instruction_strict", recommended)})
    return out


def memorization_sections(data: RunData, s: Settings) -> list[View]:
    """Per memorization suite: train and test scores, their gap, regurgitation against base, and the copied spans
    (test output, the span, the training example it came from)."""
    out: list[View] = []
    for suite in suites_of(data, "memorization"):
        present = data.metrics_of(suite)
        metrics = [("regurgitation_rate", "regurgitation (test outputs copying a training answer)")]
        for m in sorted(x[len("gap_"):] for x in present if x.startswith("gap_")):
            metrics += [(f"train_{m}", f"train {m}"), (f"test_{m}", f"test {m}"), (f"gap_{m}", f"gap {m}")]
        head = _headline(data, suite, "memorization", metrics, s, ("regurgitation_rate",))
        out.append({"suite": suite, "head": head, **_copies(data, suite)})
    return out


class Copy(TypedDict):
    """A copied span a memorization suite stored: which output copied what, from which training example."""

    variant: str
    order: int
    example: str
    words: JSONValue
    span: str
    source: str
    source_id: str
    output: str


def _copies(data: RunData, suite: str) -> View:
    """The copied spans the suite stored (examples.detail.copied), base's too, in variant order."""
    ex = data.examples
    if ex.empty:
        return {"copies": [], "n_copies": 0}
    names = dict(zip(data.variants["variant_id"].astype(str), data.variants["name"].astype(str), strict=True))
    order = {v: i for i, v in enumerate(names)}
    part = ex[ex["suite"] == suite]
    found: list[Copy] = []
    for vid, eid, detail, output in zip(part["variant_id"], part["example_id"], part["detail"], part["output"],
                                        strict=True):
        copy = detail.get("copied") if isinstance(detail, dict) else None
        if not isinstance(copy, dict):
            continue
        found.append(Copy(variant=names.get(str(vid), str(vid)), order=order.get(str(vid), len(order)),
                          example=str(eid), words=copy.get("words"), span=str(copy.get("span") or ""),
                          source=str(copy.get("train_example") or ""),
                          source_id=str(copy.get("train_example_id") or ""),
                          output="" if is_missing(output) else str(output)[:300]))
    found.sort(key=lambda c: (c["order"], c["example"]))
    return {"copies": found[:MAX_COPIES], "n_copies": len(found)}


def judge_sections(data: RunData, calibration: list[CalibrationRow], s: Settings) -> list[View]:
    """Per judge suite: the judge's scores per criterion (or its pairwise win rate) against base, who judged, and
    its agreement with the human raters where the run has ratings (`calibration`, from report.ratings)."""
    out: list[View] = []
    for suite in suites_of(data, "judge"):
        present = data.metrics_of(suite)
        criteria = [(m, m[len("judge:"):]) for m in present if m.startswith("judge:")]
        pairwise = [(m, label) for m, label in (("judge_win_rate", "win rate against base"),
                                                ("judge_tie_rate", "ties"),
                                                ("judge_inconsistent_rate", "orders disagree"))
                    if m in present]
        metrics = [*criteria, *pairwise, ("judge_errors", "malformed judgments")]
        head = _headline(data, suite, "judge", metrics, s, tuple(m for m, _ in criteria))
        args = _scorer_args(data, suite)
        out.append({"suite": suite, "head": head, "warnings": [w for w in measurement_warnings(data)
                                                               if w["suite"] == suite], "judge": str(args.get("judge_identity") or args.get("judge") or ""),
                    "rubric": str(args.get("rubric_version") or ""), "pairwise": bool(pairwise),
                    "calibration": calibration})
    return out


class MeasurementWarning(TypedDict):
    """A problem with how a suite was measured on a variant: its judge could not read some judgments, or it failed."""

    variant: str
    suite: str
    check: str
    message: str


def measurement_warnings(data: RunData) -> list[MeasurementWarning]:
    """The run's `judge_errors` and `suite_failed` findings, in variant order: shown at the top of the report and
    beside their suite's section."""
    f = data.findings
    if f.empty:
        return []
    names = dict(zip(data.variants["variant_id"].astype(str), data.variants["name"].astype(str), strict=True))
    order = {v: i for i, v in enumerate(names)}
    out = []
    for r in f[f["check"].isin(MEASUREMENT_CHECKS)].to_dict("records"):
        evidence = r.get("evidence") if isinstance(r.get("evidence"), dict) else {}
        out.append((order.get(str(r["variant_id"]), len(order)),
                    MeasurementWarning(variant=names.get(str(r["variant_id"]), str(r["variant_id"])),
                             suite=str(evidence.get("suite") or ""), check=str(r["check"]), message=str(r["message"]))))
    return [w for _, w in sorted(out, key=lambda x: x[0])]


def _scorer_args(data: RunData, suite: str) -> JSONDict:
    rows = data.scores[data.scores["suite"] == suite]["scorer"]
    for record in rows:
        if isinstance(record, dict) and isinstance(record.get("args"), dict):
            return dict(record["args"])
    return {}


def sections(data: RunData, recommended: str | None, calibration: list[CalibrationRow]) -> dict[str, list[View]]:
    """Every newer-suite section of the run (a kind without a suite: an empty list, and no section)."""
    s = run_settings(data)
    return {"safety": safety_sections(data, recommended, s),
            "instructions": instructions_sections(data, recommended, s),
            "memorization": memorization_sections(data, s),
            "judge": judge_sections(data, calibration, s),
            "measurement": [dict(w) for w in measurement_warnings(data)]}
