"""`lm-eval`: lm-evaluation-harness tasks or groups run on the variant's own loaded model (lm-eval's `HFLM` wrapping
the weights the harness holds), with lm-eval's evaluator, prompt formats, few-shot and metrics, its per-sample results
stored as the suite's examples so every metric is compared per example against base, like the `general` suite.

Metric names: `<task>/<metric>` for each name in `tasks` (a group's or tag's value pools every document of its tasks),
`<task>/<metric>:<subtask>` for each task and subgroup below a named group or tag; a filter other than lm-eval's
`none` is written as lm-eval writes it, `<metric>,<filter>` (`gsm8k/exact_match,strict-match`).
"""

from __future__ import annotations

from pathlib import Path

from harness.data.suites import Suite
from harness.errors import HarnessInputError
from harness.models.lm_eval_types import LmEvalResults
from harness.scorers.lm_eval_tasks import LoadedTasks, check_names, draw_samples, load, require_lm_eval, yaml_problems
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import SuiteResult

# Metrics lm-eval aggregates by their mean (so each document's value is stored and compared paired), and the rest.
_MEAN_HIGHER = ("acc", "acc_norm", "acc_mutual_info", "acc_bytes", "exact_match", "mc1", "mc2", "f1", "em",
                "prompt_level_strict_acc", "prompt_level_loose_acc")
_CORPUS_HIGHER = ("mcc", "bleu", "chrf", "chrf++", "inst_level_strict_acc", "inst_level_loose_acc", "acc_all")
_CORPUS_LOWER = ("perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter", "brier_score")
_FORGETTING = ("acc", "exact_match")  # a regression on these (per named task) is a forgetting finding
_COLUMNS = ("acc", "acc_norm", "exact_match")


def _declarations() -> list[Metric]:
    """Per known metric: the subtask and subgroup values first (`*/m:*`, `*/m,filter:*`), then the named task's own
    (`*/m`, `*/m,filter`), which alone feed findings, default gate rules and report columns. Metrics lm-eval knows
    and the harness does not are descriptive (no direction); their direction is recorded with each score."""
    out: list[Metric] = []
    for m in (*_MEAN_HIGHER, *_CORPUS_HIGHER, *_CORPUS_LOWER):
        per, hib = m in _MEAN_HIGHER, m not in _CORPUS_LOWER
        out += [Metric(f"*/{m}:*", hib, per), Metric(f"*/{m},*:*", hib, per)]
    for m in (*_MEAN_HIGHER, *_CORPUS_HIGHER, *_CORPUS_LOWER):
        per, hib = m in _MEAN_HIGHER, m not in _CORPUS_LOWER
        forget = m in _FORGETTING
        for name in (f"*/{m}", f"*/{m},*"):
            out.append(Metric(name, hib, per, primary=forget, finding="forgetting" if forget else None,
                              gate=("max_drop", 0.03) if forget else None,
                              column=m if m in _COLUMNS and "," not in name else None))
    return [*out, Metric("*", higher_is_better=None)]


@scorer("lm-eval", metrics=_declarations())
def lm_eval_suite(tasks: list[str] | str | None = None, include_path: str | None = None, num_fewshot: int | None = None,
                  limit: int | float | None = None, batch_size: int | str | None = None, seed: int = 1234) -> ScoreFn:
    """lm-eval tasks on the scored model: `tasks` names tasks, groups or tags (built-in or in `include_path`, a folder
    of task YAMLs inside the suite's folder); `num_fewshot` overrides the tasks' own; `limit` scores a seeded random
    sample of that many documents per task (or that fraction, below 1); `batch_size` an int or 'auto' (default: the
    harness's eval batch size); `seed` draws the sample and few-shot examples."""
    names = _check_options(tasks, include_path, num_fewshot, limit, batch_size, seed)

    def check_suite(suite: Suite) -> None:
        """Before any training: lm-eval installed, include_path a folder of readable task YAMLs, every name known."""
        where = f"{suite.where}{suite.folder / 'suite.yaml'}: "
        require_lm_eval(where)
        include = _include(suite, include_path, where)
        if include is not None:
            problems = yaml_problems(include)
            if problems:
                raise HarnessInputError(problems, title=f"suite {suite.name}: task YAMLs")
        check_names(names, include, suite.folder, where)

    def score(ctx: ScoreContext) -> SuiteResult:
        where = f"{ctx.suite.where}{ctx.suite.folder / 'suite.yaml'}: "
        require_lm_eval(where)
        import lm_eval

        # a prompt variant is scored as its base model: lm-eval's prompts are plain text, as the general suite's are
        run = getattr(getattr(ctx.model, "inner", ctx.model), "lm_eval", None)  # LocalModel.lm_eval: loaded weights
        if run is None:
            raise HarnessInputError(
                f"{where}suite {ctx.suite.name!r} (kind lm-eval) runs lm-evaluation-harness on loaded model weights; "
                f"{ctx.model.name!r} is scored through an API and has none. Drop this suite for API models, or use "
                "the general suite, which scores multiple choice by generation where log-likelihoods are missing")
        loaded = load(names, _include(ctx.suite, include_path, where), ctx.suite.folder, where)
        samples = draw_samples(loaded, limit, seed)
        _configure(loaded, num_fewshot, seed)
        res = run(loaded.task_dict, samples, batch_size=batch_size, seed=seed)
        return _result(res, loaded, limit, seed, str(lm_eval.__version__))

    score.check_suite = check_suite  # type: ignore[attr-defined]
    return score


def _check_options(tasks: object, include_path: object, num_fewshot: object, limit: object, batch_size: object,
                   seed: object) -> list[str]:
    """The task names; every bad option is reported at once."""
    names = [tasks] if isinstance(tasks, str) else tasks
    problems = []
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        problems.append(f"lm-eval option 'tasks': a list of lm-eval task, group or tag names (e.g. [mmlu, hellaswag, "
                        f"arc_easy]), got {tasks!r}")
    if include_path is not None and not isinstance(include_path, str):
        problems.append(f"lm-eval option 'include_path': a folder inside the suite's folder, got {include_path!r}")
    if num_fewshot is not None and (not isinstance(num_fewshot, int) or isinstance(num_fewshot, bool)
                                    or num_fewshot < 0):
        problems.append(f"lm-eval option 'num_fewshot': a whole number >= 0 (or leave it out for each task's own), "
                        f"got {num_fewshot!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0
                              or (isinstance(limit, float) and not limit.is_integer() and limit >= 1)):
        problems.append(f"lm-eval option 'limit': documents per task (a whole number >= 1) or a fraction in (0, 1), "
                        f"got {limit!r}")
    if batch_size is not None and batch_size != "auto" and (not isinstance(batch_size, int)
                                                            or isinstance(batch_size, bool) or batch_size < 1):
        problems.append(f"lm-eval option 'batch_size': a whole number >= 1 or 'auto', got {batch_size!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.append(f"lm-eval option 'seed': a whole number, got {seed!r}")
    if problems:
        raise HarnessInputError(problems)
    return [str(n).strip() for n in names] if isinstance(names, list) else []


def _include(suite: Suite, include_path: str | None, where: str) -> Path | None:
    """The include_path folder, inside the suite's folder (None when not given)."""
    if include_path is None:
        return None
    folder = suite.path(include_path)
    if not folder.is_dir():
        raise HarnessInputError(f"{where}option 'include_path': no folder {folder} (relative to the suite's folder "
                                f"{suite.folder}); put the task YAMLs there")
    return folder


def _configure(loaded: LoadedTasks, num_fewshot: int | None, seed: int) -> None:
    """Few-shot as lm-eval's `simple_evaluate` sets it: `num_fewshot` overrides each task's own unless its YAML
    fixes 0; a task with none gets 0; every task's few-shot examples drawn with `seed`."""
    for task in loaded.task_dict["tasks"].values():
        if num_fewshot is not None and task.get_config("num_fewshot") != 0:
            task.set_config(key="num_fewshot", value=num_fewshot)
        elif task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=seed)


def _result(res: LmEvalResults, loaded: LoadedTasks, limit: int | float | None, seed: int, version: str
            ) -> SuiteResult:
    """lm-eval's per-sample logs as Samples (one per document, its per-document metric values under the harness's
    names: the named task's, and its subtask's and subgroups' below a group) and each aggregate as a Score."""
    from harness.scorers.lm_eval_results import documents, task_scores

    note = None if limit is None else f"a seeded random sample (seed {seed}, limit {limit} per task)"
    out = SuiteResult()
    tasks = loaded.task_dict["tasks"]
    for name, leaves in loaded.leaves.items():
        docs = {leaf: documents(leaf, res["samples"].get(leaf, []), tasks[leaf]) for leaf in leaves}
        subsets: list[tuple[str | None, list[str]]] = [(None, leaves), *[(leaf, [leaf]) for leaf in leaves
                                                                         if leaf != name],
                                                       *loaded.within[name].items()]
        for sub, members in subsets:
            out.scores += task_scores(name, sub, members, [d for m in members for d in docs[m]], res, tasks,
                                      loaded.sizes, note, {"lm_eval": version}, _metric_name)
        for leaf in leaves:
            for d in docs[leaf]:
                d.sample.scores = {_metric_name(name, key, sub): v for sub, members in subsets if leaf in members
                                   for key, v in d.values.items()}
                out.samples.append(d.sample)
    return out


def _metric_name(name: str, key: str, sub: str | None) -> str:
    """`<task>/<metric>` or `<task>/<metric>:<subtask>` (key is lm-eval's `metric` or `metric,filter`)."""
    return f"{name}/{key}" if sub is None else f"{name}/{key}:{sub}"
