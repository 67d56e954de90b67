"""The report's "Human ratings" section: per variant and criterion the mean [95% CI], the paired difference against
base, pairwise win rates from the raters' preferences, and inter-rater agreement; only when the run has ratings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypedDict

from harness.report.data import Cell, cell, fmt
from harness.scores import JSONValue
from harness.spec.review import Criterion
from harness.store.db import Store
from harness.store.reads import RunData
from harness.store.review import run_ratings, sheet_rubrics
from harness.verdicts.compare import Comparison
from harness.verdicts.ratings import Mean, RatingSummary, summarize
from harness.verdicts.recommend import run_settings


def rubric_of(rubrics: Mapping[str, Sequence[Mapping[str, JSONValue]]]) -> list[Criterion]:
    """The criteria of these sheets' rubrics, each once, in the order they first appear."""
    seen: dict[str, Criterion] = {}
    for criteria in rubrics.values():
        for c in criteria:
            seen.setdefault(str(c["name"]), Criterion.model_validate(c))
    return list(seen.values())


def run_rating_summary(store: Store, data: RunData) -> RatingSummary | None:
    """The run's ratings summarized (None when none of its variants has a rating)."""
    ratings = run_ratings(store, str(data.run["run_id"]))
    if ratings.empty:
        return None
    rubric = rubric_of(sheet_rubrics(store, sorted(set(ratings["sheet_id"]))))
    return summarize(ratings, rubric, list(data.variants["variant_id"]), data.base_id, run_settings(data))


def _mean_cell(m: Mean | None, c: Criterion) -> Cell:
    if m is None:
        return cell("", title="not rated")
    what = "rate of yes" if c.yes_no else "mean"
    return cell(fmt(m.value, 2), ci=f"[{fmt(m.ci_low, 2)}, {fmt(m.ci_high, 2)}]",
                title=f"{what} over {m.n_items} items ({m.n_ratings} ratings), 95% bootstrap CI over items")


def _delta_cell(d: Comparison | None, c: Criterion) -> Cell:
    if d is None:
        return cell("")
    better = (d.ci_low > 0) if c.higher_is_better else (d.ci_high < 0)
    worse = (d.ci_high < 0) if c.higher_is_better else (d.ci_low > 0)
    cls = "good" if better else "bad" if worse else ""
    return cell(f"{d.difference:+.2f}", ci=f"[{d.ci_low:+.2f}, {d.ci_high:+.2f}]", title=d.how, cls=cls)


class CalibrationRow(TypedDict):
    """A criterion's judge-vs-human agreement, as display strings."""

    criterion: str
    n: int
    raters: int
    human: str
    judge: str
    rho: str
    rho_ci: str
    kappa: str
    kappa_ci: str


def judge_calibration(store: Store, data: RunData) -> list[CalibrationRow]:
    """Where the run has human ratings and judge scores on the same items: per criterion the judge's agreement with
    the raters (Spearman's rho and quadratic-weighted kappa with 95% bootstrap CIs over items), for the template."""
    from harness.verdicts.calibration import agreement, judge_scores

    ratings = run_ratings(store, str(data.run["run_id"]))
    judge = judge_scores(data.samples)
    if ratings.empty or judge.empty:
        return []
    rubric = rubric_of(sheet_rubrics(store, sorted(set(ratings["sheet_id"]))))
    table = agreement(ratings, judge, rubric=rubric)
    return [CalibrationRow(criterion=str(r.criterion), n=int(r.n), raters=int(r.raters), human=fmt(r.human_mean, 2),
                           judge=fmt(r.judge_mean, 2), rho=fmt(r.spearman, 2),
                           rho_ci=f"[{fmt(r.spearman_low, 2)}, {fmt(r.spearman_high, 2)}]", kappa=fmt(r.kappa, 2),
                           kappa_ci=f"[{fmt(r.kappa_low, 2)}, {fmt(r.kappa_high, 2)}]")
            for r in table.itertuples()]


def ratings_view(summary: RatingSummary, data: RunData) -> dict[str, object]:
    """Display rows for the template: means and deltas per variant x criterion, the win-rate matrix, agreement."""
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    rows = []
    for vid in summary.variant_ids:
        rows.append({"name": str(names.get(vid, vid)), "variant_id": vid, "is_base": vid == data.base_id,
                     "cells": [_mean_cell(summary.means.get((vid, c.name)), c) for c in summary.criteria],
                     "deltas": [_delta_cell(summary.vs_base.get((vid, c.name)), c) for c in summary.criteria]})
    wins = {(w.variant_id, w.other_id): w for w in summary.wins}
    matrix = []
    for a in summary.variant_ids:
        cells = []
        for b in summary.variant_ids:
            w = wins.get((a, b))
            if a == b or w is None:
                cells.append(cell("–" if a == b else ""))
                continue
            rate = "" if math.isnan(w.rate) else f"{w.rate:.0%}"
            ci = "" if math.isnan(w.ci_low) else f"[{w.ci_low:.0%}, {w.ci_high:.0%}]"
            cells.append(cell(rate or "n/a", ci=ci,
                              title=f"{w.wins} wins, {w.losses} losses, {w.ties} ties (no preference); Wilson 95% CI"))
        matrix.append({"name": str(names.get(a, a)), "cells": cells})
    agreement = [{"criterion": a.criterion, "level": a.level, "raters": a.raters, "units": a.units, "note": a.note,
                  "alpha": "undefined" if math.isnan(a.alpha) else f"{a.alpha:.2f}",
                  "ci": "" if math.isnan(a.ci_low) else f"[{a.ci_low:.2f}, {a.ci_high:.2f}]"}
                 for a in summary.agreement]
    return {"criteria": [{"name": c.name, "scale": c.scale, "lower": not c.higher_is_better}
                         for c in summary.criteria],
            "rows": rows, "names": [str(names.get(v, v)) for v in summary.variant_ids], "wins": matrix,
            "agreement": agreement, "raters": summary.raters, "sheets": summary.sheets, "n_items": summary.items,
            "has_base": data.base_id in summary.variant_ids}
