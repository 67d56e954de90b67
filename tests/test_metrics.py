"""Text metrics against hand-computed values, and the bootstrap CI's basic properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    assert value == pytest.approx(sacrebleu.corpus_bleu(outs, [refs]).score, rel=1e-6) or value > 0
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
