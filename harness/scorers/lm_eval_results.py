"""lm-evaluation-harness results as the harness's typed results: each logged document a Sample (what was asked, what
the model chose, its per-document metric values), each metric's aggregate a Score with a 95% interval."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from harness import stats
from harness.models.lm_eval_types import LmEvalResults, LoggedSample
from harness.scores import JSONDict, JSONValue, Sample, Score

if TYPE_CHECKING:
    from lm_eval.api.task import Task

CORPUS_RESAMPLES = 200  # bootstrap resamples for metrics lm-eval aggregates over the corpus (BLEU, perplexity)


@dataclass
class Doc:
    """One scored document of one task: its Sample, its mean-aggregated metric values (per-example, comparable
    paired), and the raw per-document values lm-eval aggregates otherwise (for bootstrap intervals)."""

    leaf: str
    sample: Sample
    values: dict[str, float] = field(default_factory=dict)
    raw: dict[str, object] = field(default_factory=dict)  # "metric,filter" -> what lm-eval's aggregation takes


def metric_key(metric: str, filter_name: str) -> str:
    """lm-eval's name of a metric under a filter, as its tables write it; the `none` filter is left out."""
    return metric if filter_name == "none" else f"{metric},{filter_name}"


def documents(leaf: str, logged: list[LoggedSample], task: Task) -> list[Doc]:
    """lm-eval's logged samples of one task (one entry per document and filter) as one Doc per document."""
    from lm_eval.api.metrics import mean

    aggregations = task.aggregation()
    by_doc: dict[int, list[LoggedSample]] = {}
    for entry in logged:
        by_doc.setdefault(int(entry["doc_id"]), []).append(entry)
    out = []
    for doc_id in sorted(by_doc):
        entries = by_doc[doc_id]
        first = next((e for e in entries if e.get("filter") == "none"), entries[0])
        d = Doc(leaf, _sample(leaf, doc_id, first, task))
        for e in entries:
            for m in e.get("metrics", []):
                key, value = metric_key(m, str(e.get("filter", "none"))), e.get(m)
                d.raw[key] = value
                if aggregations.get(m) is mean and isinstance(value, bool | int | float | np.number):
                    d.values[key] = float(value)
        if len(entries) > 1:
            d.sample.detail["outputs"] = {str(e.get("filter")): jsonable(_one_response(e)) for e in entries}
        passed = next((k for m in ("acc", "exact_match") for k in d.values if k.partition(",")[0] == m), None)
        if passed is not None:  # the first filter's accuracy or exact match (gsm8k: strict-match)
            d.sample.passed = d.values[passed] == 1.0
        out.append(d)
    return out


def _one_response(entry: LoggedSample) -> object:
    """A document's filtered response: the one value of a one-request document (a generation), else the list."""
    resps = entry.get("filtered_resps") or []
    return resps[0] if len(resps) == 1 else resps


def _loglikelihood(resp: object) -> tuple[float, bool]:
    """A log-likelihood request's response: (sum log p(continuation | context), is_greedy)."""
    if isinstance(resp, Sequence) and not isinstance(resp, str) and len(resp) == 2 \
            and isinstance(resp[0], int | float | np.floating | np.integer):
        return float(resp[0]), bool(resp[1])
    raise ValueError(f"lm-eval: a log-likelihood response is (float, bool), got {resp!r}")


def _sample(leaf: str, doc_id: int, entry: LoggedSample, task: Task) -> Sample:
    """What a person reads about one document: the prompt, the model's answer and the reference."""
    args = entry.get("arguments") or [[""]]
    prompt = str(args[0][0]) if args and args[0] else ""
    resps, target = entry.get("filtered_resps") or [], entry.get("target")
    kind = str(task.get_config("output_type") or "")
    detail: JSONDict = {"task": leaf, "doc_id": doc_id, "output_type": kind}
    output, reference = "", None if target is None else str(target)
    if kind == "multiple_choice":
        choices = [str(c) for c in task.doc_to_choice(entry["doc"])]
        lls = [_loglikelihood(r)[0] for r in resps][:len(choices)]
        pred = int(np.argmax(lls))
        pred_norm = int(np.argmax(np.array(lls) / np.array([float(len(c)) for c in choices])))
        gold = choices.index(target) if isinstance(target, str) and target in choices else target
        output = choices[pred]
        if isinstance(gold, int) and 0 <= gold < len(choices):
            reference = choices[gold]
        detail.update(pred=pred, pred_norm=pred_norm, gold=jsonable(gold), loglikelihoods=lls)
    elif kind == "generate_until":
        output = str(resps[0]) if resps else ""
    elif kind == "loglikelihood" and resps:
        ll, greedy = _loglikelihood(resps[0])
        output, reference = f"log-likelihood {ll:.4f}, greedy: {greedy}", str(args[0][1])
    elif resps:
        output = f"log-likelihood {jsonable(resps[0])}"
    return Sample(f"{leaf}:{doc_id}", prompt, output, reference, None, {}, detail)


def task_scores(name: str, sub: str | None, members: list[str], docs: list[Doc], res: LmEvalResults,
                tasks: Mapping[str, Task], sizes: dict[str, tuple[int, int]], sample_note: str | None,
                how: JSONDict, metric_name: Callable[[str, str, str | None], str]) -> list[Score]:
    """The aggregates of one named task (sub None) or of one subtask or subgroup below it: per-example metrics as
    the mean over documents (Wilson interval for 0/1 values, else a bootstrap), corpus-level ones (a single task
    only) as lm-eval computes them, with a bootstrap over documents of lm-eval's own aggregation."""
    keys: list[str] = []
    for d in docs:
        keys += [k for k in d.raw if k not in keys]
    leaf = members[0] if len(members) == 1 else None
    base: JSONDict = {**how, "tasks": list(members) if leaf is None else leaf,
                      "num_fewshot": _one({m: res.get("n-shot", {}).get(m) for m in members}),
                      "task_version": _one({m: res.get("versions", {}).get(m) for m in members})}
    if sample_note:
        k, n = sum(sizes[m][0] for m in members), sum(sizes[m][1] for m in members)
        base["sample"] = f"{sample_note}: {k} of {n} documents"
    out = []
    for key in keys:
        metric, _, filter_name = key.partition(",")
        direction = _one({m: res.get("higher_is_better", {}).get(m, {}).get(metric) for m in members})
        rec: JSONDict = {**base, "lm_eval_higher_is_better": direction}
        values = [d.values[key] for d in docs if key in d.values]
        if len(values) == len(docs) and values:
            binary = all(v in (0.0, 1.0) for v in values)
            interval = stats.wilson_ci(int(sum(values)), len(values)) if binary else stats.mean_ci(values)
            rec["intervals"] = "Wilson (0/1 values)" if binary else "percentile bootstrap over documents"
            if sub is None and leaf is None and name in res.get("results", {}):
                own = res["results"][name].get(f"{metric},{filter_name or 'none'}")
                if isinstance(own, int | float) and not math.isclose(own, interval[0], abs_tol=1e-9):
                    rec["lm_eval_group_value"] = own  # lm-eval weighs its tasks otherwise; the harness pools documents
            out.append(Score.of(metric_name(name, key, sub), interval, len(values), rec))
        elif leaf is not None:
            out.append(_corpus_score(metric_name(name, key, sub), key, docs, res, tasks[leaf], rec))
    return out


def _corpus_score(label: str, key: str, docs: list[Doc], res: LmEvalResults, task: Task, rec: JSONDict) -> Score:
    """A metric lm-eval aggregates over the corpus, its value as lm-eval reports it and a bootstrap interval."""
    metric, _, filter_name = key.partition(",")
    agg = task.aggregation()[metric]
    raw = [d.raw[key] for d in docs if key in d.raw]

    def statistic(idx: npt.NDArray[np.intp]) -> float:
        try:
            return float(agg([raw[i] for i in idx]))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return math.nan

    value, lo, hi = stats.bootstrap_ci(statistic, len(raw), resamples=CORPUS_RESAMPLES)
    own = res.get("results", {}).get(task.task_name if hasattr(task, "task_name") else "", {}).get(
        f"{metric},{filter_name or 'none'}")
    rec["intervals"] = f"percentile bootstrap over documents of lm-eval's {getattr(agg, '__name__', 'aggregation')} " \
                       f"({CORPUS_RESAMPLES} resamples)"
    return Score(label, float(own) if isinstance(own, int | float) else value, lo, hi, len(raw), rec)


def _one(by_task: Mapping[str, object]) -> JSONValue:
    """One value when every task agrees, else the value per task."""
    vals = list(by_task.values())
    return jsonable(vals[0]) if all(v == vals[0] for v in vals) else jsonable(by_task)


def jsonable(value: object) -> JSONValue:
    """A JSON-safe copy of lm-eval's values (tuples, numpy numbers)."""
    return json.loads(json.dumps(value, default=lambda x: x.item() if hasattr(x, "item") else str(x)))
