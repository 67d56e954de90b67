"""general (forgetting): multiple choice by summed log-likelihood as lm-evaluation-harness scores it, plus perplexity."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, replace

import numpy as np

from harness import stats
from harness.data.suites import Suite, read_jsonl
from harness.errors import HarnessInputError
from harness.scorers.common import rate_row
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONValue, Sample, Score, SuiteResult


@dataclass(frozen=True)
class Item:
    """One multiple-choice item: the context, its choices and the gold choice's index; its category (acc per
    category) and cluster (questions sharing a passage, kept per example so intervals resample clusters)."""

    id: str
    context: str
    choices: list[str]
    gold: int
    category: JSONValue = None
    cluster: str | None = None


def _items(suite: Suite) -> list[Item]:
    """The suite's multiple-choice items with `gold` as an index; every malformed line is reported."""
    where = suite.path(suite.items_file) if suite.items_file else suite.folder / "suite.yaml"
    rows = suite.items()
    if not rows:
        raise HarnessInputError(f"{where}: suite {suite.name!r} has no items; add JSONL lines "
                                '{"id": ..., "context": ..., "choices": [...], "gold": INDEX}')
    problems, out = [], []
    for i, row in enumerate(rows, start=1):
        choices, gold = row.get("choices"), row.get("gold")
        if not isinstance(row.get("context"), str):
            problems.append(f"{where}:{i}: 'context' must be a string")
            continue
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            problems.append(f"{where}:{i}: 'choices' must list at least two non-empty strings")
            continue
        if isinstance(gold, str) and gold in choices:
            gold = choices.index(gold)
        if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < len(choices):
            problems.append(f"{where}:{i}: 'gold' must be the index (0..{len(choices) - 1}) or text of a choice, "
                            f"got {row.get('gold')!r}")
            continue
        out.append(Item(str(row.get("id", f"{suite.name}-{i}")), row["context"], list(choices), gold,
                        row.get("category"), None if row.get("cluster") is None else str(row["cluster"])))
    if problems:
        raise HarnessInputError(problems, title=f"suite {suite.name}")
    return out


def contexts(items: list[Item], num_fewshot: int, *, description: str, target_delimiter: str,
             fewshot_delimiter: str, seed: int) -> list[str]:
    """Each item's context: the description, `num_fewshot` other items answered with their gold choice, the item."""
    out = []
    for i, item in enumerate(items):
        shots: list[str] = []
        if num_fewshot:
            others = [j for j in range(len(items)) if j != i]
            for j in random.Random(seed * 1_000_003 + i).sample(others, min(num_fewshot, len(others))):
                shot = items[j]
                shots.append(shot.context + target_delimiter + shot.choices[shot.gold])
        out.append(description + "".join(s + fewshot_delimiter for s in shots) + item.context)
    return out


def choose(lls: list[float], choices: list[str]) -> tuple[int, int]:
    """(pred, pred_norm) as lm-evaluation-harness: argmax of the summed log-likelihood, and of it divided by the
    choice's length in characters (the choice text without the target delimiter); ties go to the first choice."""
    ll = np.asarray(lls, dtype=float)
    return int(np.argmax(ll)), int(np.argmax(ll / np.array([float(len(c)) for c in choices])))


def perplexity_rows(results: list[tuple[float, int]], texts: list[str]) -> list[Score]:
    """Token perplexity, word perplexity and bits per byte over all texts, each with a bootstrap CI over texts."""
    nll = np.array([-lp for lp, _ in results])
    units = {"perplexity": np.array([n for _, n in results], dtype=float),
             "word_perplexity": np.array([len(re.split(r"\s+", t)) for t in texts], dtype=float),
             "bits_per_byte": np.array([len(t.encode("utf-8")) for t in texts], dtype=float)}
    rows = []
    for metric, den in units.items():
        r, lo, hi = stats.ratio_ci(nll, den)
        f = (lambda x: x / math.log(2)) if metric == "bits_per_byte" else math.exp
        rows.append(Score(metric, f(r), f(lo), f(hi), len(texts)))
    return rows


@scorer("general", metrics=[
    Metric("acc", per_example=True, primary=True, finding="forgetting", gate=("max_drop", 0.03)),
    Metric("acc_norm", per_example=True),
    Metric("acc:*", per_example=True),  # per category
    Metric("perplexity", higher_is_better=False), Metric("word_perplexity", higher_is_better=False),
    Metric("bits_per_byte", higher_is_better=False),
])
def general(text: str | None = None, num_fewshot: int = 0, description: str = "", target_delimiter: str = "",
            fewshot_delimiter: str = "\n\n", fewshot_seed: int = 1234) -> ScoreFn:
    """Multiple-choice acc and acc_norm (one batched log-likelihood call) and perplexity on the suite's `text` file."""
    if not isinstance(num_fewshot, int) or num_fewshot < 0:
        raise HarnessInputError(f"general option 'num_fewshot': a whole number >= 0, got {num_fewshot!r}")

    def score(ctx: ScoreContext) -> SuiteResult:
        items = _items(ctx.suite)
        ctxs = contexts(items, num_fewshot, description=description, target_delimiter=target_delimiter,
                        fewshot_delimiter=fewshot_delimiter, seed=fewshot_seed)
        if ctx.model.supports_loglikelihood:
            out = _by_loglikelihood(ctx, items, ctxs)
        else:
            out = _by_generation(ctx, items, ctxs)
        if text and ctx.model.supports_loglikelihood:
            out.scores += _perplexity(ctx)
        return out

    def _by_loglikelihood(ctx: ScoreContext, items: list[Item], ctxs: list[str]) -> SuiteResult:
        requests = [(c, target_delimiter + choice) for c, it in zip(ctxs, items, strict=True) for choice in it.choices]
        results = ctx.model.loglikelihood(requests)
        if len(results) != len(requests):
            raise RuntimeError(f"{ctx.model.name}: {len(results)} log-likelihoods for {len(requests)} requests")
        examples, k = [], 0
        for c, it in zip(ctxs, items, strict=True):
            lls = [float(lp) for lp, _ in results[k:k + len(it.choices)]]
            k += len(it.choices)
            pred, pred_norm = choose(lls, it.choices)
            gold = it.gold
            examples.append(Sample(
                it.id, c, it.choices[pred], it.choices[gold], pred == gold,
                {"acc": float(pred == gold), "acc_norm": float(pred_norm == gold)},
                {"gold": gold, "pred": pred, "pred_norm": pred_norm, "loglikelihoods": lls,
                 "category": it.category, "method": "loglikelihood"}, it.cluster))
        return SuiteResult(_accuracy_rows(examples, ("acc", "acc_norm")), examples)

    def _by_generation(ctx: ScoreContext, items: list[Item], ctxs: list[str]) -> SuiteResult:
        from harness.scorers.multiple_choice import MC_GENERATION_ARGS, choose_by_generation

        chosen = choose_by_generation(ctx.model, [(c, it.choices) for c, it in zip(ctxs, items, strict=True)])
        examples = []
        for c, it, (pred, raw) in zip(ctxs, items, chosen, strict=True):
            gold = it.gold
            examples.append(Sample(
                it.id, c, raw, it.choices[gold], pred == gold, {"acc": float(pred == gold)},
                {"gold": gold, "pred": pred, "category": it.category, "method": "generation"}, it.cluster))
        # recorded with the scorer's arguments
        rows = [replace(r, how=dict(MC_GENERATION_ARGS)) for r in _accuracy_rows(examples, ("acc",))]
        return SuiteResult(rows, examples)

    def _perplexity(ctx: ScoreContext) -> list[Score]:
        assert text is not None  # called only when the suite names a text file
        path = ctx.suite.path(text)
        if not path.is_file():
            raise HarnessInputError(f"{ctx.suite.folder / 'suite.yaml'}: option 'text': no file {path}")
        rows = read_jsonl(path)
        bad = [i for i, r in enumerate(rows, start=1) if not isinstance(r.get("text"), str) or not r["text"].strip()]
        if bad:
            raise HarnessInputError(f"{path}: line(s) {', '.join(map(str, bad[:10]))} need a non-empty 'text'")
        return perplexity_rows(ctx.model.loglikelihood_rolling([r["text"] for r in rows]), [r["text"] for r in rows])

    return score


def _accuracy_rows(examples: list[Sample], metrics: tuple[str, ...]) -> list[Score]:
    """acc (and acc_norm) over all items and acc per category, as rates with Wilson CIs; each example's
    per-category value is stored under the metric's name too."""
    for e in examples:
        if e.detail.get("category"):
            e.scores[f"acc:{e.detail['category']}"] = e.scores["acc"]
    rows = [rate_row(m, int(sum(e.scores[m] for e in examples)), len(examples)) for m in metrics]
    cats = sorted({str(e.detail["category"]) for e in examples if e.detail.get("category")})
    for cat in cats:
        part = [e for e in examples if e.detail.get("category") == cat]
        rows.append(rate_row(f"acc:{cat}", int(sum(e.scores["acc"] for e in part)), len(part)))
    return rows
