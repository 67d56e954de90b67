"""The one comparison of a candidate against a reference: paired per example where both have per-example values,
else from the two stored intervals, saying why.

Paired: the mean of (candidate - reference) over the examples both have, with a seeded paired bootstrap CI, and
McNemar's exact test when every value is 0/1. Unpaired: the difference of the stored aggregates with an interval
combined from their stored CIs (MOVER, Newcombe/Zou), which is wider and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TypedDict

import numpy as np
import pandas as pd

from harness import stats
from harness.scorers import metric_info
from harness.scores import JSONDict


class Interval(TypedDict):
    """A stored score as a comparison reads it: its value, 95% interval and n (None where missing)."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None


@dataclass(frozen=True)
class Comparison:
    """candidate - reference, with its interval and how it was computed."""

    candidate: float | None  # the candidate's mean over the compared examples (or its stored score)
    reference: float | None
    difference: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int  # examples compared (paired), or the candidate's n (unpaired)
    paired: bool
    how: str
    mcnemar_p: float | None = None
    p_value: float | None = None  # two-sided, that the difference is 0 (McNemar, paired t, or cluster z)
    mde: float | None = None  # the smallest difference this comparison detects with 80% power
    clustered: bool = False

    def evidence(self) -> JSONDict:
        """As stored in findings evidence (the keys findings have always had)."""
        d = asdict(self)
        d["variant"], d["base"] = d.pop("candidate"), d.pop("reference")
        return d


@dataclass(frozen=True)
class Settings:
    """How comparisons are made (the spec's findings or gate block sets these)."""

    confidence: float = 0.95
    resamples: int = stats.DEFAULT_RESAMPLES
    seed: int = stats.DEFAULT_SEED


def clusters_of(examples: pd.DataFrame, suite: str) -> dict[str, str]:
    """example_id -> its cluster, for items that carry one (`examples.cluster`, from the suite item's `cluster`)."""
    if examples is None or examples.empty or "suite" not in examples or "cluster" not in examples:
        return {}
    ex = examples[(examples["suite"] == suite) & examples["cluster"].notna()]
    return {str(e): str(c) for e, c in zip(ex["example_id"], ex["cluster"], strict=True)}


def per_example(samples: pd.DataFrame, suite: str, metric: str) -> dict[str, float]:
    """example_id -> the metric's per-sample value on a suite, from `sample_scores` rows (one variant's)."""
    if samples is None or samples.empty or "suite" not in samples:
        return {}
    part = samples[(samples["suite"] == suite) & (samples["metric"] == metric)]
    out: dict[str, float] = {}
    for eid, x in zip(part["example_id"], part["value"], strict=True):
        if x is not None and not math.isnan(float(x)):
            out.setdefault(str(eid), float(x))
    return out


def paired(candidate: Mapping[str, float], reference: Mapping[str, float], s: Settings,
           clusters: Mapping[str, str] | None = None) -> Comparison | None:
    """The paired comparison over the example ids both sides have (None when they share none); with clusters,
    intervals, p-value and MDE resample and count whole clusters."""
    ids = sorted(set(candidate) & set(reference))
    if not ids:
        return None
    x = np.array([candidate[i] for i in ids], dtype=float)
    y = np.array([reference[i] for i in ids], dtype=float)
    labels = [clusters.get(i, i) for i in ids] if clusters else None
    d, lo, hi = stats.paired_diff_ci(x, y, confidence=s.confidence, resamples=s.resamples, seed=s.seed,
                                     clusters=labels)
    binary = bool(np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all())
    se = stats.paired_se(x - y, labels, binary=binary)
    how = f"paired bootstrap over {len(ids)} examples"
    mcnemar = None
    if labels is not None:
        k = len(set(labels))
        how += f" in {k} clusters (resampled whole)"
        p = float(2 * (1 - _norm_cdf(abs(d) / se))) if se > 0 else 1.0
        how += f", cluster z-test p={p:.3g}"
    elif binary:
        p = mcnemar = stats.mcnemar_exact(x > 0.5, y > 0.5)
        how += f", McNemar p={p:.3g}"
    else:
        p = stats.paired_t_p(x - y)
        how += f", paired t-test p={p:.3g}"
    unmatched = len(set(candidate) ^ set(reference))
    if unmatched:
        how += f", {unmatched} examples without a partner left out"
    return Comparison(float(x.mean()), float(y.mean()), d, lo, hi, s.confidence, len(ids), True, how, mcnemar, p,
                      stats.mde(se, confidence=s.confidence), labels is not None)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def unpaired(candidate: Interval, reference: Interval, why: str, s: Settings) -> Comparison:
    """From two stored scores ({value, ci_low, ci_high, n}): the difference and a MOVER interval from their CIs."""
    if candidate["value"] is None or reference["value"] is None:
        raise ValueError("an unpaired comparison needs a value on both sides")
    c, b = float(candidate["value"]), float(reference["value"])
    d = c - b
    n = int(candidate.get("n") or 0)
    c_lo, c_hi, b_lo, b_hi = (candidate.get("ci_low"), candidate.get("ci_high"), reference.get("ci_low"),
                              reference.get("ci_high"))
    if c_lo is None or c_hi is None or b_lo is None or b_hi is None or any(map(_missing, (c_lo, c_hi, b_lo, b_hi))):
        return Comparison(c, b, d, d, d, s.confidence, n, False, f"point values only ({why}; no stored CI)")
    lo = d - math.hypot(c - c_lo, b_hi - b)
    hi = d + math.hypot(c_hi - c, b - b_lo)
    # the stored intervals are 95% ones: their half-widths over 1.96 are the two standard errors
    se = math.hypot(c_hi - c_lo, b_hi - b_lo) / (2 * stats.z(0.95))
    p = float(2 * (1 - _norm_cdf(abs(d) / se))) if se > 0 else (1.0 if d == 0 else 0.0)
    return Comparison(c, b, d, lo, hi, s.confidence, n, False, f"unpaired, from the stored 95% CIs ({why})",
                      None, p, stats.mde(se, confidence=s.confidence))


def compare(kind: str | None, metric: str, candidate: Mapping[str, float] | None, reference: Mapping[str, float] | None,
            s: Settings, *, scores: tuple[Interval, Interval] | None = None,
            unpaired_why: str | None = None, clusters: Mapping[str, str] | None = None,
            declared: JSONDict | None = None) -> Comparison | None:
    """candidate - reference on one metric: paired when the metric is per-example (the registry says so) and both
    sides have values, else unpaired from the stored `scores` (candidate, reference) when given, else None."""
    why = unpaired_why
    if why is None and not metric_info(kind, metric, {"metric": declared} if declared else None).per_example:
        why = f"{metric} is a corpus-level score with no per-example values"
    if why is None and not (candidate and reference):
        why = "one side stores no per-example values for it (scored by an older harness?)"
    if why is None:
        assert candidate is not None and reference is not None
        result = paired(candidate, reference, s, clusters)
        if result is not None:
            return result
        why = "no example ids in common"
    return unpaired(scores[0], scores[1], why, s) if scores is not None else None


def _missing(x: float | None) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
