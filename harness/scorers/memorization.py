"""memorization: the held-out metrics on a seeded sample of training prompts beside the test set's (the train/test
gap), and regurgitation: test outputs that copy a long span of a training answer that their reference lacks."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

import harness.scorers.metrics as metrics
from harness import stats
from harness.data.chat import Example
from harness.data.sources import location
from harness.errors import HarnessInputError
from harness.scorers.common import rate_row
from harness.scorers.heldout import heldout_outputs
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, JSONValue, Sample, Score, SuiteResult

Values = npt.NDArray[np.float64]  # one metric's value per example (NaN where it has none)

DEFAULT_MAX_NEW_TOKENS = 128  # the heldout suite's default, so both share one generation
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Normalised word tokens: lower-case runs of letters and digits (punctuation and underscores split words). A
    JSON answer counts by its values alone: its keys are the format the model is asked to keep, not content."""
    parsed = metrics.parse_json(text)
    if isinstance(parsed, dict | list):
        text = " ".join(_values_of(parsed))
    return _WORD.findall(text.lower())


def _values_of(obj: JSONValue) -> list[str]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _values_of(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _values_of(x)]
    return [] if obj is None else [str(obj)]


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


@dataclass
class Copy:
    """A span of an output copied verbatim (in normalised words) from one training answer."""

    span: str
    words: int
    train_index: int


class TrainIndex:
    """Every `n`-word window of the training answers -> the first training example holding it, built once, so a
    check is one dict look-up per window of the output (linear in its length).

    Only distinctive windows count: one found in more than `max_answers` training answers is the data's house style
    (a closing line, a templated reply), which fine-tuning is meant to learn, not a copy of one example."""

    def __init__(self, answers: list[str], n: int, max_answers: int = 1):
        self.n = n
        self.tokens = [words(a) for a in answers]
        self.first: dict[tuple[str, ...], int] = {}
        seen_in: dict[tuple[str, ...], int] = {}
        for j, toks in enumerate(self.tokens):
            for g in set(ngrams(toks, n)):
                self.first.setdefault(g, j)
                seen_in[g] = seen_in.get(g, 0) + 1
        for g, k in seen_in.items():
            if k > max_answers:
                del self.first[g]

    def copied(self, output: str, reference: str) -> Copy | None:
        """The first span of at least n words that the output shares with a training answer and that the item's own
        reference does not contain; extended as far as it runs on in that training answer."""
        out = words(output)
        ref = set(ngrams(words(reference), self.n))
        for i, g in enumerate(ngrams(out, self.n)):
            j = self.first.get(g)
            if j is None or g in ref:
                continue
            source = " " + " ".join(self.tokens[j]) + " "
            end = i + self.n
            while end < len(out) and f" {' '.join(out[i:end + 1])} " in source:
                end += 1
            return Copy(" ".join(out[i:end]), end - i, j)
        return None


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """A seeded sample of k of n training examples (all of them when k >= n), in file order."""
    return sorted(random.Random(seed).sample(range(n), min(k, n)))


def _values(outs: list[str], refs: list[str]) -> dict[str, Values]:
    """Per-example held-out metrics (harness.scorers.metrics): exact_match, field_accuracy (NaN where the reference
    is no JSON object), rougeL."""
    return {"exact_match": np.array([metrics.exact_match(o, r) for o, r in zip(outs, refs, strict=True)], dtype=float),
            "field_accuracy": np.array([np.nan if (f := metrics.field_accuracy(o, r)[0]) is None else f
                                        for o, r in zip(outs, refs, strict=True)], dtype=float),
            "rougeL": metrics.rouge_l(outs, refs) if outs else np.array([], dtype=float)}


def _where(e: Example) -> str:
    return location(Path(e.source).name, e.line, e.unit)


@scorer("memorization", metrics=[
    Metric("regurgitation_rate", higher_is_better=False, per_example=True, primary=True, finding="memorization"),
    Metric("train_*", per_example=True),  # held-out metrics on the sampled training prompts
    Metric("test_*", per_example=True),  # the same on the test set
    Metric("gap_*", higher_is_better=False),  # train minus test: the wider, the more the model fits its training set
])
def memorization(train_sample: int = 32, seed: int = 0, min_words: int = 8, max_new_tokens: int | None = None,
                 max_answers: int = 1) -> ScoreFn:
    """Train/test gap on the primary held-out metric and ROUGE-L, and the regurgitation rate of test outputs.

    max_new_tokens None: reuse whichever held-out generation the variant already has (else 128 new tokens); the
    training prompts are generated with the same number.
    """
    for key, value, least in (("train_sample", train_sample, 1), ("min_words", min_words, 2), ("max_answers", max_answers, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise HarnessInputError(f"memorization option {key!r}: a whole number >= {least}, got {value!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise HarnessInputError(f"memorization option 'seed': a whole number, got {seed!r}")

    def score(ctx: ScoreContext) -> SuiteResult:
        if not ctx.train:  # nothing trained in this run, so there is no training split to compare with
            return SuiteResult()
        tokens = max_new_tokens or next(iter(ctx.cache.get("heldout_outputs", {})), DEFAULT_MAX_NEW_TOKENS)
        test_outs = heldout_outputs(ctx, tokens)
        test_refs = [e.reference for e in ctx.test]
        sample = [ctx.train[i] for i in sample_indices(len(ctx.train), train_sample, seed)]
        train_outs = ctx.model.generate([e.prompt_messages for e in sample], tokens)
        train_refs = [e.reference for e in sample]
        train_vals, test_vals = _values(train_outs, train_refs), _values(test_outs, test_refs)
        primary = "field_accuracy" if not np.isnan(test_vals["field_accuracy"]).all() else "exact_match"
        how: JSONDict = {"max_new_tokens": tokens, "primary": primary}
        rows: list[Score] = []
        for m in (primary, "rougeL"):
            tr, te = train_vals[m], test_vals[m]
            how_m = {**how, **metrics.rouge_how()} if m == "rougeL" else how
            for split, v in (("train", tr), ("test", te)):
                if not np.isnan(v).all():
                    rows.append(Score.of(f"{split}_{m}", stats.mean_ci(v), int((~np.isnan(v)).sum()), how_m))
            if not (np.isnan(tr).all() or np.isnan(te).all()):
                rows.append(Score.of(f"gap_{m}", stats.diff_means_ci(tr, te),
                                     int((~np.isnan(tr)).sum() + (~np.isnan(te)).sum()), how_m))
        index = TrainIndex([e.reference for e in ctx.train], min_words, max_answers)
        copies = [index.copied(o, r) for o, r in zip(test_outs, test_refs, strict=True)]
        rows.insert(0, replace(rate_row("regurgitation_rate", sum(c is not None for c in copies), len(copies)), how=how))
        kept = (primary, "rougeL")
        examples = []
        for i, (e, out, c) in enumerate(zip(ctx.test, test_outs, copies, strict=True)):
            copy: JSONDict | None = None if c is None else {
                "span": c.span, "words": c.words, "train_example": _where(ctx.train[c.train_index]),
                "train_example_id": ctx.train[c.train_index].example_id}
            examples.append(Sample(e.example_id, e.prompt_messages[-1]["content"], out, e.reference, c is None,
                                   {"regurgitation_rate": float(c is not None), **_per_example("test", test_vals, i, kept)},
                                   {"split": "test", "copied": copy}))
        for i, (e, out) in enumerate(zip(sample, train_outs, strict=True)):
            examples.append(Sample(f"train:{e.example_id}", e.prompt_messages[-1]["content"], out, e.reference,
                                   bool(train_vals["exact_match"][i]), _per_example("train", train_vals, i, kept),
                                   {"split": "train", "source": _where(e)}))
        return SuiteResult(rows, examples)

    return score


def _per_example(split: str, vals: dict[str, Values], i: int, kept: tuple[str, ...]) -> dict[str, float]:
    """One example's values of the stored metrics, under the metrics' own names (train_rougeL, test_exact_match)."""
    return {f"{split}_{m}": float(vals[m][i]) for m in kept if not np.isnan(vals[m][i])}
