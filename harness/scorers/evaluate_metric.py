"""evaluate: any Hugging Face `evaluate` metric computed on the held-out outputs against the test references, from a
local metric module (a folder or .py file next to the suite or the spec; works offline) or a hub name."""

from __future__ import annotations

import hashlib
import inspect
import math
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from harness import stats
from harness.data.suites import Suite
from harness.errors import HarnessInputError
from harness.scorers.heldout import heldout_outputs
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, Sample, Score, SuiteResult
from harness.spec.schema import resolve_inside

if TYPE_CHECKING:
    from evaluate import EvaluationModule

# result keys of Hugging Face's own metrics where lower is better; any other key is taken as higher-is-better
LOWER_IS_BETTER = ("wer", "cer", "ter", "mae", "mse", "rmse", "perplexity", "mean_perplexity", "loss")
PER_EXAMPLE = ("auto", True, False)
_LOADED: dict[tuple[str, str], EvaluationModule] = {}  # (module, sha256) -> loaded metric, so each variant does not reload it


def _where(suite: Suite) -> str:
    return f"{suite.folder / 'suite.yaml'}: option 'metric'"


def _local_script(name: str, suite: Suite) -> Path | None:
    """The metric script `name` names, relative to the suite folder or else the spec's folder (never outside them):
    a .py file, or a folder holding a script named after it (evaluate's convention). None where neither holds it."""
    roots = [suite.folder] + ([suite.spec_dir] if suite.spec_dir is not None else [])
    for root in roots:
        try:
            path = resolve_inside(Path(root), name, key="metric", source=str(suite.folder / "suite.yaml"))
        except HarnessInputError:
            continue
        if path.is_file() and path.suffix == ".py":
            return path
        if path.is_dir():
            script = path / f"{path.name}.py"
            if not script.is_file():
                raise HarnessInputError(f"{_where(suite)}: the folder {path} holds no {path.name}.py; evaluate loads "
                                        "the script named after its folder (metrics/word_f1/word_f1.py)")
            return script
    return None


def _looks_like_path(name: str) -> bool:
    return name.endswith(".py") or name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def code_sha256(script: Path) -> str:
    """sha256 of a metric module's code: the script's bytes, then those of each local file it imports
    (`from .helpers import ...`, found as evaluate finds them), in import order."""
    from evaluate.loading import get_imports

    h = hashlib.sha256(script.read_bytes())
    for kind, name, _, _ in get_imports(str(script)):
        local = script.parent / f"{name}.py"
        if kind == "internal" and local.is_file():
            h.update(local.read_bytes())
    return h.hexdigest()


def load_metric(name: str, suite: Suite) -> tuple[EvaluationModule, JSONDict]:
    """The loaded metric and what the stored scorer arguments say about it: the module and the sha256 of its code."""
    import evaluate

    script = _local_script(name, suite)
    if script is None and _looks_like_path(name):
        roots = " or ".join(str(r) for r in [suite.folder, getattr(suite, "spec_dir", None)] if r)
        raise HarnessInputError(f"{_where(suite)}: no metric module {name!r} in {roots}; give a .py file or a folder "
                                "holding a script of the folder's name, relative to the suite's or the spec's folder")
    if script is not None:
        digest = code_sha256(script)
        if (str(script), digest) not in _LOADED:
            try:
                _LOADED[(str(script), digest)] = evaluate.load(str(script), keep_in_memory=True)
            except Exception as exc:  # noqa: BLE001 - the user's module: say which file and why
                raise HarnessInputError(f"{script}: the metric module could not be loaded ({exc.__class__.__name__}: "
                                        f"{exc}); it must define one evaluate.Metric subclass (docs/scoring.md, "
                                        "'evaluate')") from None
        return _LOADED[(str(script), digest)], {"metric_module": str(script), "metric_sha256": digest}
    if (name, "hub") not in _LOADED:
        _LOADED[(name, "hub")] = _load_hub(name, suite)
    module = _LOADED[(name, "hub")]
    code = Path(inspect.getfile(type(module)))
    return module, {"metric_module": f"hub:{name}", "metric_sha256": code_sha256(code)}


def _load_hub(name: str, suite: Suite) -> EvaluationModule:
    import evaluate

    try:
        return evaluate.load(name, keep_in_memory=True)
    except (FileNotFoundError, ConnectionError, OSError) as exc:
        local = (f"give a local path to the metric module instead: copy its files ({name}.py and the .py files it "
                 f"imports, from https://huggingface.co/spaces/evaluate-metric/{name}) into a folder {name}/ in the "
                 f"suite's or the spec's folder, where `metric: {name}` finds it, or set `metric` to the path of a "
                 "metric folder or .py file there (docs/scoring.md, 'evaluate')")
        if _hub_reachable():
            raise HarnessInputError(f"{_where(suite)}: the Hugging Face Hub has no evaluate module {name!r} "
                                    f"({exc}); check the name, or {local}") from None
        raise HarnessInputError(f"{_where(suite)}: {name!r} is a Hugging Face Hub name and the hub cannot be reached "
                                f"from this machine (offline, or HF_EVALUATE_OFFLINE is set); {local}") from None


def _hub_reachable(timeout: float = 3.0) -> bool:
    import evaluate

    if evaluate.config.HF_EVALUATE_OFFLINE:
        return False
    url = urlparse(evaluate.config.HF_ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _numeric(result: Mapping[str, object] | None) -> dict[str, float]:
    return {k: float(v) for k, v in (result or {}).items()
            if isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)}


@scorer("evaluate", metrics=[
    *(Metric(k, higher_is_better=False, per_example=True) for k in LOWER_IS_BETTER),
    # a result key's per-example values are stored where the metric averages over examples (see per_example)
    Metric("*", per_example=True),
])
def evaluate_metric(metric: str = "", metric_args: JSONDict | None = None, keys: list[str] | None = None,
                    per_example: bool | str = "auto", corpus_resamples: int = 200, max_new_tokens: int | None = None
                    ) -> ScoreFn:
    """The module's numeric result keys on the held-out outputs, each with a 95% bootstrap interval.

    per_example 'auto': a key whose per-example values average to its corpus value is per-example (interval over
    examples, values kept per example); other keys are corpus-level (the computation bootstrapped
    `corpus_resamples` times). max_new_tokens None: reuse the variant's held-out generation (else 128 new tokens).
    """
    problems = []
    if not isinstance(metric, str) or not metric.strip():
        problems.append("evaluate option 'metric': a local metric module (a folder or .py file, relative to the suite "
                        "or the spec) or a Hugging Face Hub name, e.g. metrics/word_f1 or bleu")
    if metric_args is not None and not isinstance(metric_args, dict):
        problems.append(f"evaluate option 'metric_args': a mapping of keyword arguments for compute(), got {metric_args!r}")
    if keys is not None and (not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys)):
        problems.append(f"evaluate option 'keys': a list of result keys, got {keys!r}")
    if per_example not in PER_EXAMPLE:
        problems.append(f"evaluate option 'per_example': one of auto, true, false; got {per_example!r}")
    if not isinstance(corpus_resamples, int) or isinstance(corpus_resamples, bool) or corpus_resamples < 20:
        problems.append(f"evaluate option 'corpus_resamples': a whole number >= 20, got {corpus_resamples!r}")
    if problems:
        raise HarnessInputError(problems, title="evaluate options")

    def score(ctx: ScoreContext) -> SuiteResult:
        module, record = load_metric(metric, ctx.suite)
        outs = heldout_outputs(ctx, max_new_tokens)
        refs = [e.reference for e in ctx.test]

        def compute(idx: Iterable[int]) -> dict[str, float]:
            try:
                result = module.compute(predictions=[outs[i] for i in idx], references=[refs[i] for i in idx],
                                        **(metric_args or {}))
            except (TypeError, ValueError, KeyError) as exc:
                raise HarnessInputError(f"{ctx.suite.folder / 'suite.yaml'}: metric {module.name!r} failed to compute "
                                        f"({exc.__class__.__name__}: {exc}); check option 'metric_args'") from None
            return _numeric(result)

        corpus = compute(range(len(outs)))
        chosen = keys or sorted(corpus)
        missing = [k for k in chosen if k not in corpus]
        if missing or not chosen:
            raise HarnessInputError(f"{ctx.suite.folder / 'suite.yaml'}: option 'keys': metric {module.name!r} returns "
                                    f"no numeric {', '.join(missing) or 'result'}; its numeric keys: "
                                    f"{', '.join(sorted(corpus)) or '(none)'}")
        per = _per_example_values(compute, len(outs), chosen) if per_example is not False else None
        if per is None and per_example is True:
            raise HarnessInputError(f"{ctx.suite.folder / 'suite.yaml'}: option 'per_example': metric "
                                    f"{module.name!r} cannot be computed on one example at a time; set it to auto")
        by_example = [k for k in chosen if per is not None and (per_example is True or _averages(per[k], corpus[k]))]
        corpus_keys = [k for k in chosen if k not in by_example]
        rows: list[Score] = []
        for k in by_example:
            assert per is not None
            rows.append(Score.of(k, stats.mean_ci(per[k]), len(outs), {
                **record, "intervals": f"percentile bootstrap over {len(outs)} examples (per-example values)"}))
        cis = stats.resample_ci(lambda idx: {k: v for k, v in compute(idx).items() if k in corpus_keys}, len(outs),
                                resamples=corpus_resamples) if corpus_keys and len(outs) > 1 else {}
        for k in corpus_keys:
            lo, hi = cis.get(k, (corpus[k], corpus[k]))
            rows.append(Score(k, corpus[k], min(lo, corpus[k]), max(hi, corpus[k]), len(outs), {
                **record, "intervals": f"percentile bootstrap of the corpus computation, {corpus_resamples} resamples "
                                       "of the examples"}))
        examples = [Sample(e.example_id, e.prompt_messages[-1]["content"], outs[i], e.reference, None,
                           {k: float(per[k][i]) for k in by_example} if per is not None else {})
                    for i, e in enumerate(ctx.test)]
        return SuiteResult(rows, examples)

    def check_suite(suite: Suite) -> None:
        """Find and load the metric module at sweep start, so a missing module or an unreachable hub stops the sweep
        before any training (called by harness.scorers.check_suites)."""
        load_metric(metric, suite)

    score.check_suite = check_suite  # type: ignore[attr-defined]
    return score


def _per_example_values(compute: Callable[[Iterable[int]], dict[str, float]], n: int, keys: list[str]
                        ) -> dict[str, npt.NDArray[np.float64]] | None:
    """Each key computed on each example alone; None where the metric cannot be computed on one example."""
    try:
        results = [compute([i]) for i in range(n)]
    except Exception:  # noqa: BLE001 - a corpus-level metric may refuse a single example in its own way
        return None
    if not all(k in r for r in results for k in keys):
        return None
    return {k: np.array([r[k] for r in results], dtype=float) for k in keys}


def _averages(values: npt.NDArray[np.float64], corpus: float) -> bool:
    """Whether the corpus value is the mean of the per-example values: then the metric is a mean over examples."""
    return values.size > 0 and math.isclose(float(values.mean()), corpus, rel_tol=1e-9, abs_tol=1e-9)
