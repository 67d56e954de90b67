"""Running a variant's suites on a loaded model: each suite's registered scorer, its rows labelled with the suite."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import stats
from harness.data.suites import Suite
from harness.progress import Progress
from harness.scorers.registry import ScoreContext, SuiteOutput, make_scorer, metric_info


def score_suites(model: Any, variant: Any, suites: list[Suite], test: list[Any], train_log: list[dict[str, Any]],
                 progress: Progress, train: list[Any] | None = None, *,
                 open_judge: Callable[[str, str | None], Any] | None = None,
                 base_outputs: dict[str, dict[str, str]] | None = None,
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every suite on one model (a ScoringModel); returns (scores, examples, findings) rows. `train` holds the
    experiment's training examples, for suites that compare test behaviour with training data (memorization);
    `open_judge` opens judge models; `base_outputs` holds base's outputs by suite and example id (`base_references`)."""
    scores: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for suite in suites:
        fn, record = make_scorer(suite.kind, suite.options)
        progress.phase(f"scoring {suite.name} (requests done)", None)
        out = fn(ScoreContext(model=model, suite=suite, variant=variant, test=test, train_log=train_log, cache=cache,
                                train=list(train or []), open_judge=open_judge,
                                base_outputs=None if base_outputs is None else base_outputs.get(suite.name)))
        progress.close_phase()
        cluster_intervals(out, suite.kind)
        for r in out.scores:
            extra = r.pop("scorer_args", None)  # how this model was scored, e.g. multiple choice by generation
            r.update(suite=suite.name, suite_version=suite.version,
                     scorer={**record, "args": {**record["args"], **extra}} if extra else record)
        for r in out.examples:
            r.update(suite=suite.name)
        scores += out.scores
        examples += out.examples
        findings += out.findings
    return scores, examples, findings


def cluster_intervals(out: SuiteOutput, kind: str) -> None:
    """Where a suite's items carry a `cluster`, the intervals of its per-example metrics resample whole clusters
    (Miller 2024): items of one cluster are not independent. The score's scorer arguments say so."""
    labels = [e["detail"].get("cluster") for e in out.examples]
    if len({str(x) for x in labels if x is not None}) < 2:
        return
    for row in out.scores:
        if not metric_info(kind, row["metric"]).per_example:
            continue
        pairs = [(e["detail"][row["metric"]], str(c) if c is not None else f"item:{e['example_id']}")
                 for e, c in zip(out.examples, labels, strict=True)
                 if isinstance(e["detail"].get(row["metric"]), bool | int | float)]
        if not pairs:
            continue
        values, clusters = [float(v) for v, _ in pairs], [c for _, c in pairs]
        value, lo, hi = stats.mean_ci(values, clusters=clusters)
        k = len(set(clusters))
        row.update(value=value, ci_low=lo, ci_high=hi, n=len(values))
        row["scorer_args"] = {**(row.get("scorer_args") or {}),
                              "intervals": f"cluster bootstrap over {k} clusters of {len(values)} items"}


def base_references(suites: list[Suite], examples: Any) -> dict[str, dict[str, str]]:
    """Base's outputs by suite and example id, for the suites that compare variants with them (option
    `pairwise_against`); `examples` are base's example rows (a list of dicts or a DataFrame)."""
    rows = examples.to_dict("records") if hasattr(examples, "to_dict") else list(examples or [])
    out: dict[str, dict[str, str]] = {}
    for suite in suites:
        if suite.options.get("pairwise_against"):
            outputs = {str(r["example_id"]): str(r["output"] or "") for r in rows if r.get("suite") == suite.name}
            if outputs:
                out[suite.name] = outputs
    return out
