"""Running a variant's suites on a loaded model: each suite's registered scorer, its rows labelled with the suite."""

from __future__ import annotations

from typing import Any

from harness.data.suites import Suite
from harness.progress import Progress
from harness.scorers.registry import ScoreContext, make_scorer


def score_suites(model: Any, variant: Any, suites: list[Suite], test: list[Any], train_log: list[dict[str, Any]],
                 progress: Progress) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every suite on one model (a ScoringModel); returns (scores, examples, findings) rows."""
    scores: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for suite in suites:
        fn, record = make_scorer(suite.kind, suite.options)
        progress.phase(f"scoring {suite.name} (requests done)", None)
        out = fn(ScoreContext(model=model, suite=suite, variant=variant, test=test, train_log=train_log, cache=cache))
        progress.close_phase()
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
