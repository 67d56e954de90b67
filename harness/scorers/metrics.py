"""Text metrics per example and per corpus: exact match, JSON field accuracy, ROUGE-L, BLEU, chrF."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from harness import stats


def parse_json(text: str) -> Any | None:
    """The JSON value in `text` (also inside a ```json fence), or None."""
    t = text.strip()
    if t.startswith("```"):
        t = t.strip("`")
        t = t[4:] if t.startswith("json") else t
    try:
        return json.loads(t)
    except (json.JSONDecodeError, ValueError):
        start, end = t.find("{"), t.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(t[start:end + 1])
            except (json.JSONDecodeError, ValueError):
                return None
        return None


def exact_match(output: str, reference: str) -> bool:
    """Equal after trimming; JSON answers compare as parsed values (key order and spacing do not matter)."""
    if output.strip() == reference.strip():
        return True
    ref = parse_json(reference)
    return isinstance(ref, dict | list) and parse_json(output) == ref


def field_accuracy(output: str, reference: str) -> tuple[float | None, dict[str, bool]]:
    """Share of the reference object's fields that the output gets right; None when the reference is no object."""
    ref = parse_json(reference)
    if not isinstance(ref, dict) or not ref:
        return None, {}
    out = parse_json(output)
    out = out if isinstance(out, dict) else {}
    per_field = {k: (k in out and out[k] == v) for k, v in ref.items()}
    return sum(per_field.values()) / len(per_field), per_field


_ROUGE: Any = None


def rouge_l(outputs: list[str], references: list[str]) -> np.ndarray:
    """ROUGE-L F1 per example (rouge-score, stemmed)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([_ROUGE.score(r, o)["rougeL"].fmeasure for o, r in zip(outputs, references, strict=True)])


def corpus_metric_ci(name: str, outputs: list[str], references: list[str], *, resamples: int = 1000,
                     seed: int = stats.DEFAULT_SEED) -> tuple[float, float, float]:
    """Corpus BLEU or chrF (sacrebleu) with a bootstrap CI over examples (sufficient statistics resampled)."""
    from sacrebleu.metrics import BLEU, CHRF

    metric = BLEU(effective_order=True) if name == "bleu" else CHRF()
    value = float(metric.corpus_score(outputs, [references]).score)
    if len(outputs) < 2:
        return value, value, value
    # Per-sentence sufficient statistics add up to the corpus statistics, so a resample is a weighted sum.
    sent_stats = np.array(metric._extract_corpus_statistics(outputs, [references]), dtype=float)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(outputs), np.full(len(outputs), 1 / len(outputs)), size=resamples)
    sums = counts @ sent_stats
    boot = np.array([metric._compute_score_from_stats(list(row)).score for row in sums])
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return value, float(min(lo, value)), float(max(hi, value))
