"""Read models over the store: one run's tables, one variant's rows, decoded and typed for report, gate and sweep."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, SupportsFloat

import numpy as np
import pandas as pd

from harness.scorers import suite_kinds
from harness.store.db import Store
from harness.store.rows import RunRow

RUN_TABLES = ("variants", "scores", "examples", "findings", "train_log", "sample_scores")
ScoreCell = tuple[float, float, float, int]  # value, ci_low, ci_high, n (NaN where missing)


def is_missing(x: object) -> bool:
    """None, pandas NA/NaT, or NaN."""
    try:
        return x is None or x is pd.NA or bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def num(x: object) -> float:
    """A float, NaN for missing values."""
    if type(x) is float or type(x) is int:  # the common case first: a runtime Protocol check is slow
        return float(x)
    if is_missing(x):
        return math.nan
    if isinstance(x, SupportsFloat | str):
        return float(x)
    raise TypeError(f"not a number: {x!r}")


@dataclass
class RunData:
    """One run: its row and every per-variant table (variants in plan order, base first), JSON decoded."""

    run: RunRow
    variants: pd.DataFrame
    scores: pd.DataFrame
    examples: pd.DataFrame
    findings: pd.DataFrame
    train_log: pd.DataFrame
    samples: pd.DataFrame = field(default_factory=pd.DataFrame)  # sample_scores: variant_id, suite, example_id, metric, value
    kinds: dict[str, str] = field(default_factory=dict)  # suite -> scorer kind

    def __post_init__(self) -> None:
        self._scores: dict[tuple[str, str, str], ScoreCell] = {}
        for vid, suite, metric, v, lo, hi, n in self.scores[
                ["variant_id", "suite", "metric", "value", "ci_low", "ci_high", "n"]].itertuples(index=False):
            self._scores[(vid, suite, metric)] = (num(v), num(lo), num(hi), int(n) if not is_missing(n) else 0)
        if not self.kinds:
            self.kinds = run_suite_kinds(self.run, self.scores)
        self._values: dict[tuple[str, str, str], dict[str, float]] | None = None
        self._base: tuple[pd.DataFrame, str | None] | None = None

    def values(self, vid: str, suite: str | None, metric: str) -> dict[str, float]:
        """example_id -> one variant's per-sample value of a metric on a suite (empty where none is stored)."""
        if self._values is None:
            self._values = sample_index(self.samples)
        return self._values.get((vid, suite or "", metric), {})

    @property
    def base_id(self) -> str | None:
        if self._base is None or self._base[0] is not self.variants:  # read once per variants frame
            base = self.variants[self.variants["method"] == "base"]
            self._base = (self.variants, str(base["variant_id"].iloc[0]) if len(base) else None)
        return self._base[1]

    def suite_of(self, kind: str) -> str | None:
        """The run's suite of a kind (the one named like the kind preferred), or None."""
        names = [s for s, k in self.kinds.items() if k == kind]
        return kind if kind in names else (names[0] if names else None)

    def score(self, vid: str, suite: str | None, metric: str) -> ScoreCell | None:
        if suite is None:
            return None
        return self._scores.get((vid, suite, metric))

    def metrics_of(self, suite: str | None) -> list[str]:
        """The metrics stored for a suite, in stored order."""
        if suite is None or self.scores.empty:
            return []
        return [str(m) for m in self.scores[self.scores["suite"] == suite]["metric"].unique()]


def run_suite_kinds(run: Mapping[str, object], scores: pd.DataFrame) -> dict[str, str]:
    """suite -> kind: from the suites the run lists (its spec), then the scorer record stored with each score."""
    listed = run.get("suites")
    kinds = {str(s["name"]): str(s["kind"]) for s in (listed if isinstance(listed, list) else [])
             if isinstance(s, dict) and s.get("name") and s.get("kind")}
    for suite, kind in suite_kinds(scores).items():
        kinds.setdefault(suite, kind)
    return kinds


def load_run(store: Store, run_id: str, tables: tuple[str, ...] = RUN_TABLES) -> RunData:
    """Read one run's rows (variants in plan order, base first); tables not asked for come back empty."""
    frames = {t: store.run_table(run_id, t) if t in tables else store.empty_table(t) for t in RUN_TABLES}
    v = frames["variants"]
    v = pd.concat([v[v["method"] == "base"], v[v["method"] != "base"]], ignore_index=True)
    return RunData(store.run_row(run_id), v, frames["scores"], frames["examples"], frames["findings"],
                   frames["train_log"], frames["sample_scores"])


def sample_index(samples: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, float]]:
    """(variant_id, suite, metric) -> {example_id: value}, from sample_scores rows (finite values only; the first
    row of an example where it has several)."""
    out: dict[tuple[str, str, str], dict[str, float]] = {}
    if samples is None or samples.empty:
        return out
    values = pd.to_numeric(samples["value"], errors="coerce").to_numpy(dtype=float, na_value=math.nan)
    keep = np.flatnonzero(np.isfinite(values))
    codes, labels = [], []
    for c in ("variant_id", "suite", "metric", "example_id"):
        code, uniques = pd.factorize(samples[c].astype(str).to_numpy(dtype=object)[keep])
        codes.append(code.astype(np.int64))
        labels.append(uniques)
    group = (codes[0] * len(labels[1]) + codes[1]) * len(labels[2]) + codes[2]
    _, first = np.unique(group * len(labels[3]) + codes[3], return_index=True)  # an example's first row
    first.sort()
    group, eids, values = group[first], codes[3][first], values[keep][first]
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    names = labels[3]
    for part in np.split(order, bounds) if len(order) else []:
        v, s, m = np.unravel_index(int(group[part[0]]), (len(labels[0]), len(labels[1]), len(labels[2])))
        out[(str(labels[0][v]), str(labels[1][s]), str(labels[2][m]))] = dict(zip(names[eids[part]].tolist(), values[part].tolist(), strict=True))
    return out


def variant_rows(store: Store, variant_id: str) -> dict[str, pd.DataFrame]:
    """One stored variant's scores, examples, sample scores and train_log (what findings compare against)."""
    frames = {t: store.variant_table(variant_id, t) for t in ("scores", "examples", "train_log")}
    frames["samples"] = store.variant_table(variant_id, "sample_scores")
    return frames


@dataclass
class VariantRecord:
    """Everything stored about one variant of a run: the run row, its `variants` row and its rows."""

    run: RunRow
    variant: dict[str, Any]  # Any: the `variants` row as pandas reads it (numpy scalars, NaN), read by gate.baseline
    scores: pd.DataFrame
    examples: pd.DataFrame
    findings: pd.DataFrame
    samples: pd.DataFrame  # sample_scores rows


def variant_record(store: Store, run_id: str, variant_id: str) -> VariantRecord:
    """The run row, the variant's row as the run lists it, and its scores, examples and findings (sorted)."""
    variants = store.run_table(run_id, "variants")
    row = variants[variants["variant_id"] == variant_id]
    if row.empty:
        raise KeyError(f"variant {variant_id} is not in run {run_id}")
    scores = store.variant_table(variant_id, "scores").sort_values(["suite", "metric"], kind="stable")
    examples = store.variant_table(variant_id, "examples").sort_values(["suite", "example_id"], kind="stable")
    findings = store.variant_table(variant_id, "findings").sort_values(["check", "message"], kind="stable")
    samples = store.variant_table(variant_id, "sample_scores").sort_values(["suite", "example_id", "metric"],
                                                                          kind="stable")
    return VariantRecord(store.run_row(run_id), row.iloc[0].to_dict(), scores.reset_index(drop=True),
                         examples.reset_index(drop=True), findings.reset_index(drop=True),
                         samples.reset_index(drop=True))
