"""Scorers: registered suite kinds, each declaring its metrics (direction, per-example or corpus-level, primary),
and running a variant's suites. Importing the package registers the built-in kinds."""

import harness.scorers.divergence  # noqa: E402,F401  (importing a scorer module registers its kind)
import harness.scorers.evaluate_metric  # noqa: E402,F401
import harness.scorers.format  # noqa: E402,F401
import harness.scorers.general  # noqa: E402,F401
import harness.scorers.hallucination  # noqa: E402,F401
import harness.scorers.heldout  # noqa: E402,F401
import harness.scorers.instructions  # noqa: E402,F401
import harness.scorers.lm_eval_suite  # noqa: E402,F401  (`lm-eval`: lm-evaluation-harness tasks, an optional extra)
import harness.scorers.memorization  # noqa: E402,F401
import harness.scorers.python_scorer  # noqa: E402,F401  (`python`: a scorer in the user's own file)
import harness.scorers.refusal_judge  # noqa: E402,F401  (the safety suite's `judge` refusal detector)
import harness.scorers.rubric_judge  # noqa: E402,F401
import harness.scorers.safety  # noqa: E402,F401
from harness.scorers.registry import (
    UNDECLARED,
    Metric,
    ScoreContext,
    check_suites,
    declared_findings,
    declared_metrics,
    kinds,
    make_scorer,
    metric_info,
    primary_metric,
    scorer,
    suite_kinds,
)
from harness.scores import SuiteResult

__all__ = [
    "Metric",
    "ScoreContext",
    "SuiteResult",
    "UNDECLARED",
    "check_suites",
    "declared_findings",
    "declared_metrics",
    "kinds",
    "make_scorer",
    "metric_info",
    "primary_metric",
    "scorer",
    "suite_kinds",
]
