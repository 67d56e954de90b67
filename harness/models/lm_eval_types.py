"""lm-evaluation-harness's data as the harness hands it over and reads it back: the loaded tasks, and the evaluator's
results with their per-document logs. lm-eval ships no types of its own; these name the keys the harness uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from lm_eval.api.group import ConfigurableGroup
    from lm_eval.api.task import Task


class TaskDict(TypedDict):
    """Loaded tasks as lm-eval's TaskManager.load returns them and its evaluator.evaluate takes them."""

    tasks: dict[str, Task]  # leaf task name -> the task, with its documents
    groups: dict[str, ConfigurableGroup]  # group name -> the group
    group_map: dict[str, list[str]]  # group name -> its children (subgroups and tasks)


class LoggedSample(TypedDict, total=False):
    """One logged (document, filter) entry of `evaluate(log_samples=True)`. Each metric's per-document value is under
    the metric's own name, which `metrics` lists (so those keys are read with `.get(name)`)."""

    doc_id: int
    doc: dict[str, object]  # the dataset row
    target: object  # the gold answer: text, a choice index, or a list
    arguments: Sequence[Sequence[object]]  # each request's arguments: (context, continuation) or (context, gen_kwargs)
    filtered_resps: list[object]  # each request's response after the filter: (log-likelihood, is_greedy) or text
    filter: str  # the filter's name ('none' when unfiltered)
    metrics: list[str]


# What evaluator.evaluate returns (the keys the harness reads): aggregates per task and group ("metric,filter" ->
# value), the per-document logs per leaf task, each task's few-shot count, version and metric directions.
LmEvalResults = TypedDict("LmEvalResults", {
    "results": dict[str, dict[str, object]],
    "samples": dict[str, list[LoggedSample]],
    "n-shot": dict[str, object],
    "versions": dict[str, object],
    "higher_is_better": dict[str, dict[str, object]],
}, total=False)
