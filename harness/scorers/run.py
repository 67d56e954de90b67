"""Running a variant's suites on a loaded model: each suite's registered scorer, its result labelled with the suite."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from harness import stats
from harness.data.chat import Example
from harness.data.suites import Suite
from harness.managed.client import scrub
from harness.models.protocol import JudgeModel, ScoringModel
from harness.progress import Progress
from harness.results import LogPoint
from harness.scorers.registry import UNDECLARED, ScoreContext, make_scorer, metric_info
from harness.scores import JUDGE_ERRORS, SUITE_FAILED, Finding, JSONDict, SuiteResult
from harness.spec.plan import Variant

ERROR_COUNTS = ("judge_errors", "detector_errors")  # metrics counting outputs whose judgment could not be read
ERROR_KEPT = 2000  # characters of a failed suite's error kept


def score_suites(model: ScoringModel, variant: Variant, suites: list[Suite], test: list[Example],
                 train_log: list[LogPoint], progress: Progress, train: list[Example] | None = None, *,
                 open_judge: Callable[[str, str | None], JudgeModel] | None = None,
                 base_outputs: dict[str, dict[str, str]] | None = None) -> list[SuiteResult]:
    """Run every suite on one model (a ScoringModel); one labelled SuiteResult per suite. `train` holds the
    experiment's training examples, for suites that compare test behaviour with training data (memorization);
    `open_judge` opens judge models; `base_outputs` holds base's outputs by suite and example id (`base_references`).
    Each suite is scored on its own: one that raises comes back empty with its `error` and a `suite_failed`
    finding, and the next suite is scored; a judge whose judgments failed gets a `judge_errors` warning."""
    results: list[SuiteResult] = []
    cache: dict[str, dict[int, list[str]]] = {}
    for suite in suites:
        try:
            fn, record = make_scorer(suite.kind, suite.options, suite=suite)
            progress.phase(f"scoring {suite.name} (requests done)", None)
            out = fn(ScoreContext(model=model, suite=suite, variant=variant, test=test, train_log=train_log,
                                  cache=cache, train=list(train or []), open_judge=open_judge,
                                  base_outputs=None if base_outputs is None else base_outputs.get(suite.name)))
        except Exception as exc:  # noqa: BLE001 - one suite's failure must not discard the suites that finished
            progress.close_phase()
            failed = failed_suite(suite, f"{exc.__class__.__name__}: {exc}")
            progress.info(f"{variant.name}: suite {suite.name} FAILED ({failed.error}); the other suites go on")
            results.append(failed)
            continue
        progress.close_phase()
        out = judged(label(cluster_intervals(out, str(record["kind"])), suite, record))
        for f in out.findings:
            if f.check == JUDGE_ERRORS:
                progress.info(f"{variant.name}: suite {suite.name}: warning: {f.message}")
        results.append(out)
    return results


def failed_suite(suite: Suite, error: str) -> SuiteResult:
    """A suite that failed: no rows, its error, and the `suite_failed` finding that records it in the store."""
    error = scrub(error)[:ERROR_KEPT]
    return SuiteResult(findings=[Finding(SUITE_FAILED, "error", f"suite {suite.name} failed: {error}",
                                         {"suite": suite.name, "kind": suite.kind, "error": error})],
                       suite=suite.name, suite_version=suite.version, error=error)


def judged(out: SuiteResult) -> SuiteResult:
    """A warning per suite whose judge (or refusal detector) could not read some judgments, with the count and the
    reasons; when none at all could be read the suite has failed (its rows are kept, for reading the replies)."""
    row = next((s for s in out.scores if s.metric in ERROR_COUNTS), None)
    if row is None or not row.value or not row.n:
        return out
    errors, n = int(row.value), int(row.n)
    reasons = Counter(_reason(str(x.detail.get(key)))
                      for x in out.samples for key in ("judge_error", "detector_error") if x.detail.get(key))
    why = ", ".join(f"{r} {k}" if len(reasons) > 1 else r for r, k in reasons.most_common()) or "no reason kept"
    message = f"{out.suite}: {errors} of {n} judgments failed ({why})"
    evidence: JSONDict = {"suite": out.suite, "metric": row.metric, "errors": errors, "n": n,
                          "reasons": dict(reasons.most_common())}
    out.findings = [*out.findings, Finding(JUDGE_ERRORS, "warning", message, evidence)]
    if errors >= n:
        out.error = (f"{message}: no judgment succeeded, so the suite has no score (the replies are kept in "
                     "examples.detail); fix the judge or its endpoint and run the sweep again")
        out.findings.append(Finding(SUITE_FAILED, "error", f"suite {out.suite} failed: {out.error}",
                                    {"suite": out.suite, "error": out.error}))
    return out


REASONS = (("not JSON", "reply not JSON"), ("not a JSON object", "reply not a JSON object"),
           ("does not fit", "reply does not fit the schema"), ("refused the request", "request refused by the API"),
           ("refused to answer", "judge refused"), ("cut off", "reply cut off at judge_max_tokens"),
           ("empty", "empty reply"), ("wrote nothing", "empty reply"), ("no choice", "empty reply"),
           ("base has no output", "base has no output"))


def _reason(error: str) -> str:
    """A judgment's error, in the few words a warning counts it under."""
    return next((label for needle, label in REASONS if needle in error), "unreadable reply")


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
