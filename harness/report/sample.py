"""Which example rows the report embeds: all of a small run's; of a large one a bounded sample chosen to be useful
(one row of each failure kind, the recommended variant against base, the examples where variants disagree most)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.scorers import metric_info
from harness.store import explore
from harness.store.db import Store
from harness.store.reads import RunData

DEFAULT_EXAMPLES = 10_000  # example rows the report embeds by default (`harness report --examples N|all`)
TEXT_BUDGET = 8_000_000  # bytes of text (prompts, references, outputs, details) the sampled rows may carry at most
PAIRED_SHARE = 0.5  # of the rows left after the failure kinds: the recommended variant against base


@dataclass
class SuiteCount:
    """A suite's example rows and examples: in the run, and embedded in the report."""

    suite: str
    rows: int
    examples: int
    shown_rows: int = 0
    shown_examples: int = 0


@dataclass
class ExampleSample:
    """The example rows a report embeds, their per-example values, why each example is there, and the counts."""

    rows: pd.DataFrame  # `examples` rows, JSON decoded
    samples: pd.DataFrame  # their `sample_scores` rows
    complete: bool  # every example row of the run is embedded
    limit: int | None  # the row budget asked for (None: all)
    sql: str  # the SQL that returns every example row of the run
    suites: list[SuiteCount] = field(default_factory=list)
    why: dict[tuple[str, str], str] = field(default_factory=dict)  # (suite, example_id) -> why it is shown
    agree: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # -> (rows passed, rows judged)
    pair: tuple[str, str] | None = None  # (variant, base) names of the recommended-vs-base part
    n_failure_kinds: int = 0
    n_disagree: int = 0  # examples shown for every variant because variants disagree on them

    @property
    def total_rows(self) -> int:
        return sum(s.rows for s in self.suites)

    @property
    def shown_rows(self) -> int:
        return sum(s.shown_rows for s in self.suites)


def parse_limit(value: str | int | None) -> int | None:
    """`--examples`: 'all' -> None (every row); a positive whole number -> that many rows; None -> the default."""
    if value is None:
        return DEFAULT_EXAMPLES
    if isinstance(value, int):
        n = value
    elif str(value).strip().lower() == "all":
        return None
    else:
        try:
            n = int(str(value).replace("_", "").replace(",", ""))
        except ValueError:
            n = -1
    if n < 1:
        raise ValueError(f"--examples {value}: give a number of example rows (e.g. {DEFAULT_EXAMPLES}) or 'all'")
    return n


def choose(store: Store, data: RunData, featured: str | None, limit: int | None) -> ExampleSample:
    """The example rows to embed: every row when the run has at most `limit` and TEXT_BUDGET bytes of text (or
    limit is None), else a sample:
    one row of each failure kind (with base's row of the example), `featured` (the recommended variant) against
    base, then the examples where variants disagree most with every variant's row, within `limit` rows and
    TEXT_BUDGET bytes of text."""
    run_id = str(data.run["run_id"])
    counts = explore.example_counts(store, run_id)
    suites = [SuiteCount(str(r.suite), int(r.rows), int(r.examples)) for r in counts.itertuples(index=False)]
    sql = explore.examples_sql(run_id)
    total, text = sum(s.rows for s in suites), float(counts["text_bytes"].fillna(0).sum()) if len(counts) else 0.0
    big = limit is not None and (total > limit or text > TEXT_BUDGET)
    agree = explore.agreement(store, run_id) if big else None
    if agree is None:
        rows, samples = store.run_table(run_id, "examples"), store.run_table(run_id, "sample_scores")
        out = ExampleSample(rows, samples, True, limit, sql, suites)
        _count(out)
        return out
    assert limit is not None
    base = data.base_id
    names = dict(zip(data.variants["variant_id"].astype(str), data.variants["name"].astype(str), strict=True))
    picks: list[tuple[str, str, str, str]] = []  # variant_id, suite, example_id, why
    seen: set[tuple[str, str, str]] = set()

    def add(vid: str, suite: str, eid: str, why: str) -> None:
        if (vid, suite, eid) not in seen:
            seen.add((vid, suite, eid))
            picks.append((vid, suite, eid, why))

    # 1. one row of each failure kind, and base's row of the same example
    n_kinds = 0
    for r in explore.outcome_rows(store, run_id, [v for v in (featured, base) if v]).itertuples(index=False):
        suite, metric = str(r.suite), str(r.metric)
        higher = True if metric == "passed" else metric_info(data.kinds.get(suite), metric).higher_is_better
        if higher is None or float(r.value) != (0.0 if higher else 1.0):
            continue
        n_kinds += 1
        what = "not passed" if metric == "passed" else f"{metric} = {int(r.value)}"
        add(str(r.variant_id), suite, str(r.example_id), f"failure kind: {what}")
        if base:
            add(base, suite, str(r.example_id), f"failure kind: {what}")
    room = max(0, limit - len(picks))
    # 2. the recommended variant against base, where they differ first
    pair = None
    if featured and base and featured != base:
        pair = (names.get(featured, featured), names.get(base, base))
        order = explore.paired_order(store, featured, base, int(room * PAIRED_SHARE) // 2)
        for suite, eid, differs in order.itertuples(index=False):
            reason = f"{pair[0]} vs base" + (": passed differs" if differs == 2 else ": output differs" if differs == 1
                                          else "")
            add(featured, str(suite), str(eid), reason)
            add(base, str(suite), str(eid), reason)
    # 3. the examples where variants disagree most, every variant's row
    by_variant = list(names)
    n_disagree = 0
    for r in agree.itertuples(index=False):
        if len(picks) + int(r.n) > limit:
            break
        if not ((r.pass_var or 0) > 0 or (r.spread or 0) > 0):
            break
        n_disagree += 1
        for vid in by_variant:
            add(vid, str(r.suite), str(r.example_id), "variants disagree")
    # 4. rows left: more of the recommended variant against base
    if pair and featured and base and len(picks) < limit:
        more = explore.paired_order(store, featured, base, (limit - len(picks)) // 2 + len(picks))
        for suite, eid, _ in more.itertuples(index=False):
            if len(picks) + 2 > limit:
                break
            add(featured, str(suite), str(eid), f"{pair[0]} vs base")
            add(base, str(suite), str(eid), f"{pair[0]} vs base")
    frame = pd.DataFrame(picks, columns=["variant_id", "suite", "example_id", "why"])
    frame["order"] = range(len(frame))
    rows, samples = explore.picked_rows(store, frame)
    rows = rows.merge(frame[["variant_id", "suite", "example_id", "order"]], on=["variant_id", "suite", "example_id"])
    rows = rows.sort_values("order", kind="stable")
    rows = rows[rows["text_bytes"].cumsum() <= TEXT_BUDGET].drop(columns=["order", "text_bytes"])
    keep = set(zip(rows["variant_id"], rows["suite"], rows["example_id"], strict=True))
    samples = samples[[k in keep for k in zip(samples["variant_id"], samples["suite"], samples["example_id"],
                                              strict=True)]]
    why: dict[tuple[str, str], str] = {}
    for _, suite, eid, reason in picks:
        why.setdefault((suite, eid), reason)
    shown = set(zip(rows["suite"], rows["example_id"], strict=True))
    agreed = {(str(r.suite), str(r.example_id)): (int(r.n_pass), int(r.n_judged))
              for r in agree.itertuples(index=False) if (r.suite, r.example_id) in shown}
    out = ExampleSample(rows.reset_index(drop=True), samples.reset_index(drop=True), False, limit, sql, suites,
                        why={k: v for k, v in why.items() if k in shown}, agree=agreed, pair=pair,
                        n_failure_kinds=n_kinds, n_disagree=n_disagree)
    _count(out)
    return out


def _count(sample: ExampleSample) -> None:
    """Fill each suite's shown rows and examples from the sample's rows."""
    rows = sample.rows
    for s in sample.suites:
        part = rows[rows["suite"] == s.suite]
        s.shown_rows, s.shown_examples = len(part), int(part["example_id"].nunique())
