"""Text metrics against hand-computed values, and the bootstrap CI's basic properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import stats
from harness.scorers import metrics


def test_exact_match_compares_json_as_values() -> None:
    assert metrics.exact_match(' {"a": 1, "b": 2} ', '{"b":2,"a":1}')
    assert not metrics.exact_match('{"a": 1}', '{"a": 2}')
    assert metrics.exact_match("Paris", " Paris ")
    assert not metrics.exact_match("paris", "Paris")


def test_field_accuracy_by_hand() -> None:
    acc, per = metrics.field_accuracy('{"a": 1, "b": "x", "c": 0}', '{"a": 1, "b": "y", "c": 0, "d": 5}')
    assert acc == pytest.approx(2 / 4)
    assert per == {"a": True, "b": False, "c": True, "d": False}
    assert metrics.field_accuracy("not json", '{"a": 1}')[0] == 0.0
    assert metrics.field_accuracy("x", "plain text")[0] is None


def test_parse_json_handles_fences_and_surrounding_text() -> None:
    assert metrics.parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert metrics.parse_json('Sure! {"a": 1} Hope that helps') == {"a": 1}
    assert metrics.parse_json("nope") is None


def test_rouge_l_by_hand() -> None:
    # LCS("the cat sat", "the cat ran") = 2 tokens; P = R = 2/3 -> F = 2/3
    assert metrics.rouge_l(["the cat sat"], ["the cat ran"])[0] == pytest.approx(2 / 3)


def test_bleu_and_chrf_match_sacrebleu_and_ci_contains_value() -> None:
    import sacrebleu

    outs = ["the cat sat on the mat", "a dog ran", "hello world again", "it is raining today"]
    refs = ["the cat sat on a mat", "the dog ran", "hello world", "it rains today"]
    value, lo, hi = metrics.corpus_metric_ci("bleu", outs, refs)
    assert value == pytest.approx(sacrebleu.corpus_bleu(outs, [refs]).score, rel=1e-12)
    assert lo <= value <= hi
    cv, clo, chi = metrics.corpus_metric_ci("chrf", outs, refs)
    assert cv == pytest.approx(sacrebleu.corpus_chrf(outs, [refs]).score)
    assert clo <= cv <= chi and chi - clo > 0


def test_identical_outputs_score_perfectly() -> None:
    refs = ["alpha beta gamma delta", "one two three four"]
    assert metrics.corpus_metric_ci("bleu", refs, refs)[0] == pytest.approx(100.0)
    assert metrics.corpus_metric_ci("chrf", refs, refs)[0] == pytest.approx(100.0)


def test_mean_ci_is_seeded_and_contains_mean() -> None:
    x = np.random.default_rng(1).random(50)
    a, b = stats.mean_ci(x), stats.mean_ci(x)
    assert a == b and a[1] <= a[0] <= a[2]
    assert stats.mean_ci([1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in stats.mean_ci([]))


def test_wilson_matches_known_value() -> None:
    # 8/10 at 95%: Wilson interval (0.4902, 0.9433)
    p, lo, hi = stats.wilson_ci(8, 10)
    assert p == 0.8 and lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


# -- corpus BLEU: sacrebleu's standard corpus settings ----------------------------------------------------------
@pytest.mark.parametrize("outs,refs", [
    (["the cat sat on the mat", "a dog ran"], ["the cat sat on a mat", "the dog ran"]),
    # every output shorter than 4 words: no 4-grams at all, where effective_order (sentence-level) would differ
    (["yes please", "no thanks", "ok"], ["yes please", "no thank you", "ok then"]),
    (["refund approved", "order shipped today"], ["refund approved", "the order shipped today"]),
])
def test_corpus_bleu_is_sacrebleus_corpus_bleu_with_default_settings(outs: list[str], refs: list[str]) -> None:
    import sacrebleu

    value, lo, hi = metrics.corpus_metric_ci("bleu", outs, refs)
    assert value == sacrebleu.corpus_bleu(outs, [refs]).score
    assert lo <= value <= hi
    assert "eff:no" in metrics.corpus_how("bleu")["sacrebleu"]  # recorded with the score: sacrebleu's signature


# -- ROUGE-L in every language --------------------------------------------------------------------------------
IDENTICAL = {
    "japanese": "東京は日本の首都です。コーヒーを飲みました。",
    "chinese": "我们明天上午十点开会，请准时参加。",
    "korean": "안녕하세요, 주문하신 상품이 내일 도착합니다.",
    "thai": "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "russian": "Пожалуйста, проверьте счёт ещё раз.",
    "arabic": "يرجى التحقق من الفاتورة مرة أخرى",
    "german": "Bitte prüfen Sie die Rechnung für Kündigungen.",
    "hindi": "कृपया बिल की दोबारा जाँच करें",
    "greek": "Παρακαλώ ελέγξτε ξανά τον λογαριασμό",
}


@pytest.mark.parametrize("language", sorted(IDENTICAL))
def test_rouge_l_scores_identical_strings_in_any_script_1(language: str) -> None:
    text = IDENTICAL[language]
    assert metrics.UnicodeTokenizer().tokenize(text)  # something to match: not an empty token list
    assert metrics.rouge_l([text], [text])[0] == 1.0


def test_rouge_scores_default_tokenizer_drops_non_latin_text() -> None:
    """Why the harness has its own tokenizer: rouge-score's default keeps only a-z and 0-9."""
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for language in ("japanese", "russian", "arabic"):
        assert default.score(IDENTICAL[language], IDENTICAL[language])["rougeL"].fmeasure == 0.0


def test_a_word_with_non_ascii_letters_is_one_token() -> None:
    from rouge_score.tokenizers import DefaultTokenizer, Tokenizer

    tok = metrics.UnicodeTokenizer()
    metrics.rouge_l(["x"], ["x"])
    assert isinstance(tok, Tokenizer)  # rouge-score's own tokenizer interface, through its tokenizer= hook
    assert tok.tokenize("prüfen") == ["prüfen"]
    assert DefaultTokenizer(use_stemmer=True).tokenize("prüfen") == ["pr", "fen"]
    assert tok.tokenize("Prüfen, Sie: PRÜFEN!") == ["prüfen", "sie", "prüfen"]  # lowercased, punctuation dropped
    assert tok.tokenize("prüfen") == tok.tokenize("pru\u0308fen")  # NFC: composed and decomposed ü are one letter
    assert tok.tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]  # combining vowel signs stay inside their word
    # 5 words each, 3 in common in order: P = R = F = 3/5 (ASCII words stemmed: "bitte" -> "bitt" on both sides)
    assert metrics.rouge_l(["Bitte prüfen Sie die Rechnung"], ["Bitte prüfen Sie den Vertrag"])[0] == pytest.approx(0.6)


def test_cjk_and_thai_are_tokenized_by_character() -> None:
    tok = metrics.UnicodeTokenizer()
    assert tok.tokenize("東京は日本の首都です。") == list("東京は日本の首都です")  # punctuation is no token
    assert tok.tokenize("コーヒー") == ["コ", "ー", "ヒ", "ー"]
    assert tok.tokenize("안녕 세계") == ["안", "녕", "세", "계"]
    assert tok.tokenize("ที่นี่") == ["ที่", "นี่"]  # Thai tone and vowel marks stay on their consonant
    assert tok.tokenize("東京でiPhone15を買った") == ["東", "京", "で", "iphone15", "を", "買", "っ", "た"]  # a Latin word inside
    # 10 and 8 characters, the 8 in common: P = 8/10, R = 1, F = 2PR / (P + R)
    assert metrics.rouge_l(["東京は日本の首都です"], ["東京は日本の首都"])[0] == pytest.approx(2 * 0.8 / 1.8)


ASCII_PAIRS = [
    ("the cat sat", "the cat ran"),
    ("The cats were running quickly", "a cat runs quick"),
    ('{"category": "billing", "priority": "high"}', '{"category": "billing", "priority": "normal"}'),
    ("Order #12345 shipped on 2024-01-05.", "order 12345 ships 2024-01-05"),
    ("snake_case and CamelCase, e-mail: a@b.com", "snake case camel case email a b com"),
    ("", "nothing here"),
    ("!!! ???", "..."),
    ("Generalizations are generally generated", "generalization generate generals"),
]


@pytest.mark.parametrize("output,reference", ASCII_PAIRS)
def test_ascii_text_scores_exactly_as_rouge_scores_default(output: str, reference: str) -> None:
    from rouge_score import rouge_scorer
    from rouge_score.tokenizers import DefaultTokenizer

    default = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    assert metrics.rouge_l([output], [reference])[0] == default.score(reference, output)["rougeL"].fmeasure
    for text in (output, reference):
        assert metrics.UnicodeTokenizer().tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=80))
def test_any_ascii_text_tokenizes_as_rouge_scores_default(text: str) -> None:
    from rouge_score.tokenizers import DefaultTokenizer

    assert metrics.UnicodeTokenizer().tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)


def test_the_tokenizer_and_bleu_settings_are_recorded_with_the_scores() -> None:
    from conftest import flat
    from fakes import ScriptedModel

    from harness.data.chat import Example
    from harness.scorers import ScoreContext, make_scorer
    from harness.spec.plan import Variant

    refs = {"q0": "Bitte prüfen Sie die Rechnung.", "q1": "東京は日本の首都です", "q2": "the order shipped today"}
    test = [Example([{"role": "user", "content": q}, {"role": "assistant", "content": r}], "/d/test.jsonl", i + 1)
            for i, (q, r) in enumerate(refs.items())]
    fn, record = make_scorer("heldout", {"max_new_tokens": 16, "loss": False})
    ctx = ScoreContext(model=ScriptedModel(dict(refs)), suite=None, variant=Variant("v", "v", "lora"), test=test,
                       train_log=[], cache={})
    out = fn(ctx)
    out.scorer = record
    by = {s.metric: s for s in out.scores}
    assert by["rougeL"].value == 1.0  # identical German, Japanese and English answers
    assert by["rougeL"].how == {"rouge_tokenizer": metrics.ROUGE_TOKENIZER}
    assert by["bleu"].how is not None and by["bleu"].how["sacrebleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    stored = {r["metric"]: r for r in flat(out).scores}  # the scorer record stored with each score
    assert stored["rougeL"]["scorer"]["args"]["rouge_tokenizer"] == "unicode-1"
