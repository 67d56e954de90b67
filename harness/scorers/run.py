"""Running a variant's suites on a loaded model: each suite's registered scorer, its result labelled with the suite."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from harness import stats
from harness.data.chat import Example
from harness.data.suites import Suite
from harness.models.protocol import JudgeModel, ScoringModel
from harness.progress import Progress
from harness.results import LogPoint
from harness.scorers.registry import UNDECLARED, ScoreContext, make_scorer, metric_info
from harness.scores import JSONDict, SuiteResult
from harness.spec.plan import Variant


def score_suites(model: ScoringModel, variant: Variant, suites: list[Suite], test: list[Example],
                 train_log: list[LogPoint], progress: Progress, train: list[Example] | None = None, *,
                 open_judge: Callable[[str, str | None], JudgeModel] | None = None,
                 base_outputs: dict[str, dict[str, str]] | None = None) -> list[SuiteResult]:
    """Run every suite on one model (a ScoringModel); one labelled SuiteResult per suite. `train` holds the
    experiment's training examples, for suites that compare test behaviour with training data (memorization);
    `open_judge` opens judge models; `base_outputs` holds base's outputs by suite and example id (`base_references`)."""
    results: list[SuiteResult] = []
    cache: dict[str, dict[int, list[str]]] = {}
    for suite in suites:
        fn, record = make_scorer(suite.kind, suite.options, suite=suite)
        progress.phase(f"scoring {suite.name} (requests done)", None)
        out = fn(ScoreContext(model=model, suite=suite, variant=variant, test=test, train_log=train_log, cache=cache,
                              train=list(train or []), open_judge=open_judge,
                              base_outputs=None if base_outputs is None else base_outputs.get(suite.name)))
        progress.close_phase()
        results.append(label(cluster_intervals(out, str(record["kind"])), suite, record))
    return results


def label(out: SuiteResult, suite: Suite, record: JSONDict) -> SuiteResult:
    """The result named for its suite, with the record of its scorer; each score's `how` (how this model was scored,
    e.g. multiple choice by generation) is merged into the record's args, and its metric's declaration added."""
    out.suite, out.suite_version, out.scorer = suite.name, suite.version, record
    kind = str(record.get("kind") or "") or None
    out.records = {s.metric: score_record(out, kind, s.metric, s.how) for s in out.scores}
    return out


def score_record(result: SuiteResult, kind: str | None, metric: str, how: JSONDict | None) -> JSONDict:
    """The `scorer` JSON stored with one score: kind, arguments (with `how` merged in) and the metric's declaration."""
    rec = dict(result.scorer)
    args = rec.get("args")
    if how:
        rec["args"] = {**(args if isinstance(args, dict) else {}), **how}
    declared = metric_info(kind, metric, result.scorer)
    if declared is not UNDECLARED:
        rec["metric"] = declared.record()
    return rec


def cluster_intervals(out: SuiteResult, kind: str) -> SuiteResult:
    """Where a suite's items carry a `cluster`, the intervals of its per-example metrics resample whole clusters
    (Miller 2024): items of one cluster are not independent. The score's `how` says so."""
    labels = [s.cluster for s in out.samples]
    if len({x for x in labels if x is not None}) < 2:
        return out
    scores = []
    for row in out.scores:
        pairs = [(s.scores[row.metric], s.cluster if s.cluster is not None else f"item:{s.example_id}")
                 for s in out.samples if row.metric in s.scores] if metric_info(kind, row.metric).per_example else []
        if not pairs:
            scores.append(row)
            continue
        values, clusters = [float(v) for v, _ in pairs], [c for _, c in pairs]
        interval = stats.mean_ci(values, clusters=clusters)
        k = len(set(clusters))
        scores.append(replace(row, value=interval[0], ci_low=interval[1], ci_high=interval[2], n=len(values),
                              how={**(row.how or {}),
                                   "intervals": f"cluster bootstrap over {k} clusters of {len(values)} items"}))
    out.scores = scores
    return out


def base_references(suites: Sequence[Suite], results: Sequence[SuiteResult] | pd.DataFrame
                    ) -> dict[str, dict[str, str]]:
    """Base's outputs by suite and example id, for the suites that compare variants with them (option
    `pairwise_against`); `results` are base's SuiteResults, or its stored example rows (a DataFrame)."""
    if isinstance(results, pd.DataFrame):
        rows = results.to_dict("records")
        outputs_of = {s.name: {str(r["example_id"]): str(r["output"] or "") for r in rows if r.get("suite") == s.name}
                      for s in suites}
    else:
        outputs_of = {r.suite: {x.example_id: x.output or "" for x in r.samples} for r in results}
    return {s.name: outputs_of[s.name] for s in suites
            if s.options.get("pairwise_against") and outputs_of.get(s.name)}
