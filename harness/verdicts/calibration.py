"""How far to trust a judge: its agreement with human ratings per criterion, and the items where the two most likely
disagree. Pure functions of DataFrames (ratings rows as the `ratings` table holds them; judge scores per example).

Items are (variant_id, example_id) pairs. Several raters of one item are averaged (their mean is the human score).
Per criterion, over the items that have both a human and a judge score:

- Spearman's rho between the human mean and the judge's score (average ranks for ties);
- Cohen's kappa with quadratic weights between the judge's score and the human mean rounded half up (so two raters
  giving 3 and 4 count as 4; for yes/no, one yes and one no count as yes), on the criterion's scale;

each with a seeded percentile bootstrap interval that resamples items (harness.stats.bootstrap_ci).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness import stats
from harness.scorers.judgments import Criterion, parse_rubric
from harness.scores import JSONValue
from harness.spec.review import Criterion as ReviewCriterion
from harness.stats import FloatArray

# A rubric: the judge's criteria, the review rubric's, or as a spec writes it (None: the judge's default; parse_rubric).
Rubric = Sequence[Criterion] | Sequence[ReviewCriterion] | JSONValue

RATING_COLUMNS = ("sheet_id", "rater", "example_id", "variant_id", "criterion", "value", "comment", "rated_at")
JUDGE_COLUMNS = ("variant_id", "example_id", "criterion", "value")
ITEM = ["variant_id", "example_id"]
AGREEMENT_COLUMNS = ["criterion", "n", "raters", "human_mean", "judge_mean", "spearman", "spearman_low",
                     "spearman_high", "kappa", "kappa_low", "kappa_high"]


def numeric(value: object) -> float:
    """A rating as a number: yes/true 1.0, no/false 0.0, numbers as they are, anything else NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    text = str(value).strip().lower() if value is not None else ""
    if text in ("yes", "true"):
        return 1.0
    if text in ("no", "false"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        return math.nan


def human_scores(ratings: pd.DataFrame) -> pd.DataFrame:
    """Per item and criterion: the mean of the raters' values (`human`) and how many distinct raters gave one."""
    cols = [*ITEM, "criterion", "human", "raters"]
    if ratings is None or ratings.empty:
        return pd.DataFrame(columns=cols)
    r = ratings.assign(value=ratings["value"].map(numeric)).dropna(subset=["value"])
    r = r.astype({"variant_id": str, "example_id": str, "criterion": str})
    out = r.groupby([*ITEM, "criterion"], as_index=False).agg(human=("value", "mean"), raters=("rater", "nunique"))
    return out[cols]


def judge_scores(samples: pd.DataFrame, suite: str | None = None) -> pd.DataFrame:
    """Judge scores per item and criterion from stored `sample_scores` rows: each `judge:<criterion>` value (yes/no
    as 1/0). Malformed judgments have none, so they are left out."""
    if samples is None or samples.empty:
        return pd.DataFrame(columns=list(JUDGE_COLUMNS))
    s = samples if suite is None else samples[samples["suite"] == suite]
    s = s[s["metric"].astype(str).str.startswith("judge:") & s["value"].notna()]
    return pd.DataFrame({"variant_id": s["variant_id"].astype(str), "example_id": s["example_id"].astype(str),
                         "criterion": s["metric"].astype(str).str.slice(len("judge:")),
                         "value": s["value"].astype(float)}, columns=list(JUDGE_COLUMNS)).reset_index(drop=True)


def _criteria(rubric: Rubric) -> dict[str, Criterion]:
    if isinstance(rubric, list) and rubric and all(isinstance(c, Criterion) for c in rubric):
        items = [c for c in rubric if isinstance(c, Criterion)]
    else:
        items = parse_rubric(rubric)
    return {c.name: c for c in items}


def _scale(criterion: str, criteria: dict[str, Criterion], values: FloatArray) -> tuple[int, int]:
    """The criterion's scale (yes/no as 0-1); for a criterion the rubric does not know, the observed range."""
    c = criteria.get(criterion)
    if c is not None:
        return (0, 1) if c.scale is None else c.scale
    lo, hi = int(np.floor(np.nanmin(values))), int(np.ceil(np.nanmax(values)))
    return (lo, hi if hi > lo else lo + 1)


def spearman(x: FloatArray, y: FloatArray) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN when either side is constant."""
    from scipy.stats import rankdata

    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def weighted_kappa(a: npt.ArrayLike, b: npt.ArrayLike, scale: tuple[int, int]) -> float:
    """Cohen's kappa with quadratic weights for two integer ratings of the same items on the scale [low, high]:
    1 - sum(w * observed) / sum(w * expected), w = (i - j)^2; NaN when no disagreement was possible by chance."""
    low, high = scale
    k = high - low + 1
    ia = np.clip(np.asarray(a, dtype=int) - low, 0, k - 1)
    ib = np.clip(np.asarray(b, dtype=int) - low, 0, k - 1)
    observed = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(float)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / max(observed.sum(), 1.0)
    grid = np.arange(k)
    w = (grid[:, None] - grid[None, :]) ** 2
    chance = float((w * expected).sum())
    return math.nan if chance == 0 else 1.0 - float((w * observed).sum()) / chance


def round_half_up(x: npt.ArrayLike) -> npt.NDArray[np.int_]:
    return np.floor(np.asarray(x, dtype=float) + 0.5).astype(int)


def _agree(h: FloatArray, j: FloatArray, scale: tuple[int, int], *, confidence: float, resamples: int, seed: int
           ) -> dict[str, float]:
    """Both means, Spearman's rho and weighted kappa of one criterion's items, each with its bootstrap interval."""
    hr, jr = round_half_up(h), round_half_up(j)
    rho = stats.bootstrap_ci(lambda i: spearman(h[i], j[i]), len(h), confidence=confidence, resamples=resamples,
                             seed=seed)
    kappa = stats.bootstrap_ci(lambda i: weighted_kappa(hr[i], jr[i], scale), len(h), confidence=confidence,
                               resamples=resamples, seed=seed)
    return {"human_mean": float(h.mean()), "judge_mean": float(j.mean()), "spearman": rho[0], "spearman_low": rho[1],
            "spearman_high": rho[2], "kappa": kappa[0], "kappa_low": kappa[1], "kappa_high": kappa[2]}


def agreement(ratings: pd.DataFrame, judge: pd.DataFrame, *, rubric: Rubric = None, confidence: float = 0.95,
              resamples: int = stats.DEFAULT_RESAMPLES, seed: int = stats.DEFAULT_SEED) -> pd.DataFrame:
    """Judge-vs-human agreement per criterion, over the items both scored: n items, the most raters any item had,
    both means, Spearman's rho and quadratic-weighted kappa, each with its bootstrap interval (AGREEMENT_COLUMNS).
    `rubric` gives the scales (default: the judge's default rubric; criteria it lacks use the observed range)."""
    criteria = _criteria(rubric)
    humans = human_scores(ratings)
    js = judge.astype({"variant_id": str, "example_id": str, "criterion": str})
    both = humans.merge(js.rename(columns={"value": "judge"}), on=[*ITEM, "criterion"]).dropna(subset=["judge"])
    rows = []
    for criterion, part in both.groupby("criterion", sort=True):
        h, j = part["human"].to_numpy(float), part["judge"].to_numpy(float)
        scale = _scale(str(criterion), criteria, np.concatenate([h, j]))
        rows.append({"criterion": criterion, "n": len(h), "raters": int(part["raters"].max()),
                     **_agree(h, j, scale, confidence=confidence, resamples=resamples, seed=seed)})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def disagreements(judge: pd.DataFrame, ratings: pd.DataFrame | None = None, *, rubric: Rubric = None,
                  k: int | None = None, by: str = "example") -> pd.DataFrame:
    """The items where judge and humans most likely disagree, most likely first (for a calibration sheet).

    Per item, over its criteria: where humans rated it, the observed disagreement, the mean of
    |judge - human mean| / (high - low) (basis 'disagreement'); where no human has, the judge's uncertainty, the
    mean of 1 - |judge - middle| / ((high - low) / 2) over its scaled criteria, 1 at mid-scale and 0 at either end
    (basis 'uncertainty'; yes/no criteria say nothing here). Both lie in [0, 1] and are ranked together; ties go
    to observed disagreement, then by example and variant id. by='example' keeps each example's highest-scoring
    variant (a sheet shows all variants of an example); by='item' keeps every (variant, example).
    """
    if by not in ("example", "item"):
        raise ValueError(f"by={by!r}: 'example' or 'item'")
    cols = [*ITEM, "score", "basis", "criteria"]
    if judge is None or judge.empty:
        return pd.DataFrame(columns=cols)
    criteria = _criteria(rubric)
    js = judge.astype({"variant_id": str, "example_id": str, "criterion": str}).dropna(subset=["value"])
    merged = js.merge(human_scores(ratings if ratings is not None else pd.DataFrame()), how="left",
                      on=[*ITEM, "criterion"])
    scales = {c: _scale(c, criteria, g.to_numpy(float)) for c, g in js.groupby("criterion")["value"]}
    rows = []
    for (vid, eid), part in merged.groupby(ITEM, sort=True):
        rated = part.dropna(subset=["human"])
        parts: list[float] = []
        for crit, value, human in zip(part["criterion"], part["value"], part["human"], strict=True):
            low, high = scales[crit]
            width = high - low
            if not rated.empty:
                if not pd.isna(human):
                    parts.append(abs(value - human) / width)
            elif not (crit in criteria and criteria[crit].scale is None):
                parts.append(1.0 - abs(value - (low + high) / 2) / (width / 2))
        rows.append({"variant_id": vid, "example_id": eid, "score": float(np.mean(parts)) if parts else 0.0,
                     "basis": "disagreement" if not rated.empty else "uncertainty",
                     "criteria": sorted(part["criterion"])})
    out = pd.DataFrame(rows, columns=cols)
    out["_rated"] = (out["basis"] == "disagreement").astype(int)
    out = out.sort_values(["score", "_rated", "example_id", "variant_id"], ascending=[False, False, True, True])
    if by == "example":
        out = out.drop_duplicates("example_id", keep="first")
    out = out.drop(columns="_rated").reset_index(drop=True)
    return out if k is None else out.head(k).reset_index(drop=True)
