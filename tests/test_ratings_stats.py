"""What ratings become: means, paired deltas, win rates and agreement, against hand-computed values and the
`krippendorff` package."""

from __future__ import annotations

import math
from datetime import datetime

import krippendorff
import numpy as np
import pandas as pd
import pytest

from harness.spec.review import DEFAULT_RUBRIC, Criterion
from harness.verdicts.compare import Settings
from harness.verdicts.ratings import agreement, krippendorff_alpha, rating_snapshot, summarize, win_rates

NAN = math.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the worked example: 4 observers x 12 units,
# values 1-5; his published results: nominal 0.743, ordinal 0.815, interval 0.849.
CLASSIC = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
])
SCALE = Criterion(name="accuracy")
YES_NO = Criterion(name="hallucination", scale="yes/no")


def _row(rater: str, eid: str, vid: str, criterion: str, value: float | None, sheet: str = "s1") -> dict:
    return {"sheet_id": sheet, "rater": rater, "example_id": eid, "variant_id": vid, "criterion": criterion,
            "value": value, "comment": None, "rated_at": datetime(2026, 1, 1), "label": "A"}


def test_alpha_on_the_classic_matrix_equals_the_package_and_the_published_values() -> None:
    assert krippendorff_alpha(CLASSIC, SCALE) == pytest.approx(
        krippendorff.alpha(reliability_data=CLASSIC, level_of_measurement="ordinal"), abs=1e-12)
    assert krippendorff_alpha(CLASSIC, SCALE) == pytest.approx(0.815, abs=5e-4)
    assert krippendorff.alpha(reliability_data=CLASSIC, level_of_measurement="nominal") == pytest.approx(0.743, abs=5e-4)
    yes_no = np.array([[1, 0, 1, 1, 0, NAN], [1, 0, 0, 1, 0, 1], [1, 1, 0, 1, NAN, 1]])
    assert krippendorff_alpha(yes_no, YES_NO) == pytest.approx(
        krippendorff.alpha(reliability_data=yes_no, level_of_measurement="nominal"), abs=1e-12)
    assert SCALE.level == "ordinal" and YES_NO.level == "nominal"


def test_agreement_from_rating_rows_rebuilds_the_matrix_and_bootstraps_items() -> None:
    rows = [_row(f"obs{i}", f"u{j:02d}", "v", "accuracy", float(x))
            for i, line in enumerate(CLASSIC) for j, x in enumerate(line) if not math.isnan(x)]
    a = agreement(pd.DataFrame(rows), SCALE, resamples=200, seed=3)
    assert a is not None and a.raters == 4 and a.level == "ordinal"
    assert a.alpha == pytest.approx(0.8154, abs=1e-4)
    assert a.units == 11  # unit 12 has one rating: not pairable
    assert a.ci_low <= a.alpha <= a.ci_high and a.ci_high - a.ci_low > 0.05
    again = agreement(pd.DataFrame(rows), SCALE, resamples=200, seed=3)
    assert again == a  # seeded
    one_rater = pd.DataFrame([r for r in rows if r["rater"] == "obs1"])
    assert agreement(one_rater, SCALE) is None


def test_agreement_is_undefined_not_invented_when_every_rating_is_the_same() -> None:
    rows = [_row(r, f"e{i}", "v", "hallucination", 0.0) for r in ("a", "b") for i in range(5)]
    a = agreement(pd.DataFrame(rows), YES_NO)
    assert a is not None and math.isnan(a.alpha) and "same value" in a.note


def _judgments() -> pd.DataFrame:
    """Two raters, three items, variants X, Y, Z shown on each; preferences by hand (see the test)."""
    chosen = {("r1", "e1"): "X", ("r1", "e2"): "X", ("r1", "e3"): "Y",
              ("r2", "e1"): "Z", ("r2", "e2"): None, ("r2", "e3"): "X"}
    rows = []
    for (rater, eid), pick in chosen.items():
        rows += [_row(rater, eid, v, "preferred", 1.0 if v == pick else 0.0) for v in "XYZ"]
    return pd.DataFrame(rows)


def test_win_rates_against_hand_counts_and_wilson() -> None:
    wins = {(w.variant_id, w.other_id): w for w in win_rates(_judgments(), ["X", "Y", "Z"])}
    xy = wins[("X", "Y")]
    # X over Y: r1e1, r1e2, r2e3 (3); Y over X: r1e3 (1); r2e2 a tie; r2e1 went to Z (neither)
    assert (xy.wins, xy.losses, xy.ties) == (3, 1, 1)
    assert xy.rate == 0.75
    # Wilson at 95% (z = 1.959964) for 3 of 4: centre (0.75 + z^2/8) / (1 + z^2/4), half-width
    # z * sqrt(0.75 * 0.25 / 4 + z^2 / 64) / (1 + z^2/4)
    assert (xy.ci_low, xy.ci_high) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    yx = wins[("Y", "X")]
    assert (yx.wins, yx.losses, yx.ties, yx.rate) == (1, 3, 1, 0.25)
    xz = wins[("X", "Z")]
    assert (xz.wins, xz.losses, xz.ties) == (3, 1, 1)
    zy = wins[("Z", "Y")]
    assert (zy.wins, zy.losses) == (1, 1) and zy.rate == 0.5


def test_means_and_the_paired_delta_against_base_by_hand() -> None:
    acc = {"X": {"e1": (4, 5), "e2": (3, 3), "e3": (5, 4)}, "base": {"e1": (2, 3), "e2": (3, 3), "e3": (4, 4)}}
    rows = [_row(r, e, v, "accuracy", float(x)) for v, items in acc.items() for e, xs in items.items()
            for r, x in zip(("r1", "r2"), xs, strict=True)]
    rows += [_row("r1", e, v, "hallucination", h) for v, hs in {"X": (0, 0, 1), "base": (1, 1, 1)}.items()
             for e, h in zip(("e1", "e2", "e3"), hs, strict=True)]
    rows += [_row("r1", "e1", "X", "comment", None)]  # a bare comment is not a rating
    df = pd.DataFrame(rows)
    s = summarize(df, DEFAULT_RUBRIC, ["base", "X"], "base", Settings(resamples=500))
    assert s is not None and s.variant_ids == ["base", "X"] and s.raters == ["r1", "r2"] and s.items == 3
    x = s.means[("X", "accuracy")]
    assert x.value == pytest.approx(4.0) and (x.n_items, x.n_ratings) == (3, 6)  # items 4.5, 3, 4.5
    assert s.means[("base", "accuracy")].value == pytest.approx(19 / 6)  # items 2.5, 3, 4
    d = s.vs_base[("X", "accuracy")]
    assert d.paired and d.n == 3 and d.difference == pytest.approx(5 / 6)  # differences 2, 0, 0.5
    assert d.ci_low <= d.difference <= d.ci_high
    assert s.means[("X", "hallucination")].value == pytest.approx(1 / 3)  # rate of yes
    assert s.vs_base[("X", "hallucination")].difference == pytest.approx(-2 / 3)
    assert ("X", "tone") not in s.means  # not rated
    snap = rating_snapshot(df[df["variant_id"] == "X"], "X")
    assert set(snap) == {"accuracy", "hallucination"}
    assert snap["accuracy"]["items"] == {"e1": 4.5, "e2": 3.0, "e3": 4.5} and snap["accuracy"]["n"] == 3
    assert summarize(df.iloc[0:0], DEFAULT_RUBRIC, ["X"], None, Settings()) is None
