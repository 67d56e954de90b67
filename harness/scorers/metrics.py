"""Text metrics per example and per corpus: exact match, JSON field accuracy, ROUGE-L, BLEU, chrF."""

from __future__ import annotations

import json
import unicodedata
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import regex

from harness import stats
from harness.scores import JSONDict, JSONValue

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu.metrics import BLEU, CHRF


def parse_json(text: str) -> JSONValue:
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


# Scripts written without spaces between words: each character (with its combining marks) is a token, as
# multilingual ROUGE is usually computed for Chinese and Japanese; no segmenter or dictionary is needed.
_BY_CHARACTER = ("Han", "Hiragana", "Katakana", "Hangul", "Bopomofo", "Thai", "Lao", "Khmer", "Myanmar")
_CHARACTER = "[[" + "".join(rf"\p{{scx={s}}}" for s in _BY_CHARACTER) + r"]&&[\p{L}\p{N}]]"
_TOKEN = regex.compile(rf"{_CHARACTER}\p{{M}}*|(?:(?!{_CHARACTER})[\p{{L}}\p{{N}}]\p{{M}}*)+", regex.V1)
_ASCII_WORD = regex.compile(r"^[a-z0-9]+$")
ROUGE_TOKENIZER = "unicode-1"  # stored with every ROUGE-L score; docs/scoring.md says what it does


class UnicodeTokenizer:
    """rouge-score tokenizer for text in any script: NFC, lowercase, words are runs of letters, digits and marks,
    and Han, kana, Hangul, Thai, Lao, Khmer and Myanmar go one character per token; ASCII words are exactly
    rouge-score's default tokens (Porter-stemmed when longer than 3 characters), other words are kept whole.

    A `rouge_score.tokenizers.Tokenizer` (registered as one where it is used: importing rouge-score imports nltk,
    seconds that commands scoring nothing should not pay)."""

    def __init__(self, use_stemmer: bool = True) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = []
        for token in _TOKEN.findall(unicodedata.normalize("NFC", text).lower()):
            if token.isascii():
                if self._stemmer is not None and len(token) > 3:
                    token = self._stemmer.stem(token)
                if not _ASCII_WORD.match(token):  # rouge-score's final check on its own tokens
                    continue
            tokens.append(token)
        return tokens


_ROUGE: RougeScorer | None = None


def rouge_l(outputs: list[str], references: list[str]) -> npt.NDArray[np.float64]:
    """ROUGE-L F1 per example (rouge-score's LCS, stemmed, with the Unicode tokenizer: ROUGE_TOKENIZER)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer
        from rouge_score.tokenizers import Tokenizer

        Tokenizer.register(UnicodeTokenizer)
        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer(use_stemmer=True))
    return np.array([_ROUGE.score(r, o)["rougeL"].fmeasure for o, r in zip(outputs, references, strict=True)])


def rouge_how() -> JSONDict:
    """What a ROUGE-L score records about how it was computed (merged into its scorer record's args)."""
    return {"rouge_tokenizer": ROUGE_TOKENIZER}


def corpus_metric_ci(name: str, outputs: list[str], references: list[str], *, resamples: int = 1000,
                     seed: int = stats.DEFAULT_SEED) -> tuple[float, float, float]:
    """Corpus BLEU or chrF with sacrebleu's default corpus settings (`sacrebleu.corpus_bleu(outputs, [refs])`; no
    `effective_order`, which is for sentence-level BLEU) and a bootstrap CI over examples (sufficient statistics
    resampled)."""
    metric = corpus_metric(name)
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


def corpus_metric(name: str) -> BLEU | CHRF:
    """sacrebleu's BLEU or chrF object with its default (corpus) settings."""
    from sacrebleu.metrics import BLEU, CHRF

    return BLEU() if name == "bleu" else CHRF()


def corpus_how(name: str) -> JSONDict:
    """What a corpus BLEU or chrF score records about how it was computed: sacrebleu's signature (one reference per
    output, as the heldout suite has; sacrebleu states the count only once the metric has scored something)."""
    metric = corpus_metric(name)
    metric.corpus_score(["a"], [["a"]])
    return {"sacrebleu": str(metric.get_signature())}
