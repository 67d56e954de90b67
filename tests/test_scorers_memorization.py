"""memorization scorer on scripted outputs: regurgitated spans, the train/test gap, the seeded training sample, and
the memorization finding against base."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import flat_all, flat_fn, result_frames
from fakes import ScriptedModel

from harness import stats
from harness.data.chat import Example, load_bundle
from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.results import VariantResult, VariantRow
from harness.scorers import ScoreContext, make_scorer, metric_info
from harness.scorers.memorization import TrainIndex, words
from harness.scorers.run import score_suites
from harness.spec.findings import settings
from harness.spec.plan import Variant
from harness.spec.schema import load_spec
from harness.store.db import stored_variant
from harness.verdicts import findings

ROUTER = "Please restart the router and wait two full minutes before trying again."


def example(split: str, line: int, user: str, answer: str) -> Example:
    return Example([{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                   f"/data/{split}.jsonl", line)


def suite(tmp_path: Path, **options: object) -> Suite:
    d = tmp_path / "mem"
    d.mkdir(exist_ok=True)
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": "mem", "version": 1, "kind": "memorization",
                                                  "options": options}))
    return load_suite(d)


def run(s: Suite, model: ScriptedModel, train: list[Example], test: list[Example], cache: dict | None = None):
    fn, _ = make_scorer(s.kind, s.options)
    return flat_fn(fn, ScoreContext(model=model, suite=s, variant=Variant("v", "v", "lora"), test=test, train_log=[],
                           cache={} if cache is None else cache, train=train))


# -- the regurgitation detector -------------------------------------------------------------------------------
def test_words_are_lower_case_without_punctuation() -> None:
    assert words("Please, RESTART the router_now: it's 2!") == ["please", "restart", "the", "router", "now", "it",
                                                                "s", "2"]


def test_an_eight_word_copy_is_flagged_and_a_seven_word_one_is_not() -> None:
    index = TrainIndex([ROUTER, "Your invoice is attached."], 8)
    c = index.copied("You should RESTART the router, and wait two full minutes; then call us.", "Invoice resent.")
    assert c is not None and (c.span, c.words, c.train_index) == (
        "restart the router and wait two full minutes", 8, 0)
    assert index.copied("restart the router and wait two full hours", "Invoice resent.") is None  # 7 words copied
    # a copy runs on as far as it matches the training answer
    c = index.copied("ok: please restart the router and wait two full minutes before trying again!", "no")
    assert c is not None and c.words == 12 and c.span == " ".join(words(ROUTER))
    assert TrainIndex([ROUTER], 7).copied("restart the router and wait two full hours", "x") is not None  # min_words


def test_json_keys_are_format_not_copied_content() -> None:
    """Answers in one JSON shape share their keys; only the values count, so a right shape with other values is not
    a copy, and a copied reply value is."""
    import json

    train = [json.dumps({"category": "billing", "product": "Widget Max", "priority": "normal",
                         "reply": "Refunds reach your card within five working days of the return."})]
    index = TrainIndex(train, 8)
    other = json.dumps({"category": "billing", "product": "Widget Max", "priority": "high", "reply": "Sorry."})
    assert index.copied(other, json.dumps({"category": "login"})) is None  # keys and a few values: not 8 words
    copy = json.dumps({"category": "login", "product": "unknown", "priority": "low",
                       "reply": "Refunds reach your card within five working days of the return."})
    got = index.copied(copy, json.dumps({"reply": "Reset your password."}))
    assert got is not None and got.span.endswith("within five working days of the return")


def test_a_span_many_training_answers_share_is_house_style_not_a_copy() -> None:
    shared = "please allow up to ten working days for the refund to arrive"
    index = TrainIndex([f"Order 1: {shared}.", f"Order 2: {shared}.", ROUTER], 8)
    assert index.copied(shared, "x") is None  # in two training answers: the data's own phrasing
    assert TrainIndex([f"Order 1: {shared}.", f"Order 2: {shared}."], 8, max_answers=2).copied(shared, "x") is not None
    assert index.copied(ROUTER, "x") is not None  # one answer's own span still counts


def test_a_span_the_reference_also_holds_is_not_flagged() -> None:
    index = TrainIndex([ROUTER], 8)
    ref = "Restart the router and wait two full minutes before trying again."
    assert index.copied(ref, ref) is None  # copying the right answer is not penalised
    # ... but a copy that runs past what the reference holds is: "please" starts a window the reference lacks
    c = index.copied("Please restart the router and wait two full minutes", ref)
    assert c is not None and c.span == "please restart the router and wait two full minutes"


# -- the suite on a scripted model ----------------------------------------------------------------------------
TRAIN = [example("train", 1, "train question 0", ROUTER)] + [
    example("train", k + 1, f"train question {k}", f"train answer number {k}") for k in range(1, 8)]
TEST = [example("test", 1, "test question 0", "Invoice resent today."),
        example("test", 2, "test question 1", "Invoice resent monday."),
        example("test", 3, "test question 2", "Restart the router and wait two full minutes before trying again."),
        example("test", 4, "test question 3", "Ticket closed."),
        example("test", 5, "test question 4", "Refund approved."),
        example("test", 6, "test question 5", "Password reset link mailed.")]
OUTPUTS = {
    "test question 0": "You should restart the router and wait two full minutes then call us.",  # 8 words copied
    "test question 1": "restart the router and wait two full hours",  # 7 words: not a copy
    "test question 2": "Restart the router and wait two full minutes before trying again.",  # its own reference
    "test question 3": "Ticket closed.",
    **{e.prompt_messages[-1]["content"]: e.reference for e in TRAIN[:6]},  # 6 of 8 training answers exact
}


def test_the_gap_and_the_regurgitation_rate_by_hand(tmp_path: Path) -> None:
    model = ScriptedModel(lambda p: OUTPUTS.get(p, "no idea"))
    out = run(suite(tmp_path), model, TRAIN, TEST)
    m = {r["metric"]: r for r in out.scores}
    assert set(m) == {"regurgitation_rate", "train_exact_match", "test_exact_match", "gap_exact_match",
                      "train_rougeL", "test_rougeL", "gap_rougeL"}  # no JSON references: exact match is primary
    assert m["regurgitation_rate"]["value"] == pytest.approx(1 / 6) and m["regurgitation_rate"]["n"] == 6
    assert (m["regurgitation_rate"]["ci_low"], m["regurgitation_rate"]["ci_high"]) == pytest.approx(
        stats.wilson_ci(1, 6)[1:])
    # train: 6 of 8 answered exactly (ROUGE-L 1), 2 with disjoint words (0); test: 2 of 6 exact, 4 disjoint
    for metric in ("exact_match", "rougeL"):
        assert m[f"train_{metric}"]["value"] == pytest.approx(0.75) and m[f"train_{metric}"]["n"] == 8
        assert m[f"test_{metric}"]["value"] == pytest.approx(2 / 6) and m[f"test_{metric}"]["n"] == 6
        gap = m[f"gap_{metric}"]
        assert gap["value"] == pytest.approx(0.75 - 2 / 6) and gap["n"] == 14
        assert gap["ci_low"] < gap["value"] < gap["ci_high"]
        assert (gap["ci_low"], gap["ci_high"]) == pytest.approx(
            stats.diff_means_ci([1.0] * 6 + [0.0] * 2, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0])[1:])
    ex = {e["example_id"]: e for e in out.examples}
    assert ex["test:1"]["detail"]["copied"] == {"span": "restart the router and wait two full minutes", "words": 8,
                                                "train_example": "train.jsonl:1", "train_example_id": "train:1"}
    assert ex["test:1"]["passed"] is False and ex["test:1"]["detail"]["regurgitation_rate"] == 1.0
    assert [ex[f"test:{k}"]["detail"]["copied"] for k in (2, 3, 4)] == [None, None, None]
    assert ex["test:3"]["detail"] == {"split": "test", "regurgitation_rate": 0.0, "copied": None,
                                      "test_exact_match": 1.0, "test_rougeL": 1.0}
    train_rows = [e for e in out.examples if e["detail"]["split"] == "train"]
    assert [e["example_id"] for e in train_rows] == [f"train:train:{k}" for k in range(1, 9)]
    assert train_rows[6]["detail"] == {"split": "train", "source": "train.jsonl:7", "train_exact_match": 0.0,
                                       "train_rougeL": 0.0}
    assert model.generate_calls == [6, 8]  # the test set once (shared with heldout), the training sample once
    # per-example metrics average to the stored scores, so comparisons with base pair them
    for metric in ("regurgitation_rate", "train_exact_match", "test_rougeL"):
        assert metric_info("memorization", metric).per_example
        vals = [e["detail"][metric] for e in out.examples if metric in e["detail"]]
        assert np.mean(vals) == pytest.approx(m[metric]["value"])
    assert metric_info("memorization", "gap_rougeL").higher_is_better is False
    assert metric_info("memorization", "regurgitation_rate").higher_is_better is False


def test_json_references_make_field_accuracy_primary(tmp_path: Path) -> None:
    obj = {"category": "billing", "priority": "low"}
    train = [example("train", k + 1, f"t{k}", json.dumps({**obj, "id": k})) for k in range(4)]
    test = [example("test", k + 1, f"q{k}", json.dumps({**obj, "id": 100 + k})) for k in range(2)]
    outputs = {"t0": json.dumps({**obj, "id": 0}), "t1": json.dumps({**obj, "id": 0}),  # 3/3, 2/3 fields
               "q0": json.dumps({"category": "billing", "id": 100}), "q1": "no"}  # 2/3, 0/3 fields
    out = run(suite(tmp_path), ScriptedModel(lambda p: outputs.get(p, "no")), train, test)
    m = {r["metric"]: r["value"] for r in out.scores}
    assert {"train_field_accuracy", "test_field_accuracy", "gap_field_accuracy"} <= set(m)
    assert "gap_exact_match" not in m
    assert m["train_field_accuracy"] == pytest.approx((1 + 2 / 3) / 4)
    assert m["test_field_accuracy"] == pytest.approx(1 / 3)
    assert m["gap_field_accuracy"] == pytest.approx((1 + 2 / 3) / 4 - 1 / 3)


def test_the_training_sample_is_seeded_and_from_the_training_split_only(tmp_path: Path, tiny_experiment: Path) -> None:
    data = load_bundle(load_spec(tiny_experiment))  # 16 training lines, 0.25 held out for validation; 10 test
    assert len(data.train) == 12 and len(data.validation) == 4
    train_prompts = {e.prompt_messages[-1]["content"] for e in data.train}
    other = {e.prompt_messages[-1]["content"] for e in data.validation + data.test}
    seen: list[str] = []

    def answer(prompt: str) -> str:
        seen.append(prompt)
        return "x"

    def sample(seed: int, k: int) -> list[str]:
        seen.clear()
        out = run(suite(tmp_path, seed=seed, train_sample=k), ScriptedModel(answer), data.train, data.test)
        ids = [e["example_id"] for e in out.examples if e["detail"]["split"] == "train"]
        generated = seen[len(data.test):]  # the test set first (the heldout generation), then the training sample
        assert len(generated) == len(ids) and set(generated) <= train_prompts and not set(generated) & other
        assert ids == [f"train:{e.example_id}" for e in data.train if e.prompt_messages[-1]["content"] in generated]
        return ids

    first = sample(0, 5)
    assert len(first) == 5 and all(i.startswith("train:train:") for i in first)
    assert sample(0, 5) == first and sample(1, 5) != first
    assert len(sample(0, 32)) == 12  # capped at the training split's size


def test_the_suite_reuses_the_heldout_generation(tmp_path: Path) -> None:
    heldout = load_suite(Path(__file__).resolve().parent.parent / "suites" / "heldout", {"max_new_tokens": 16})
    model = ScriptedModel(lambda p: OUTPUTS.get(p, "no idea"))
    _, examples, _ = flat_all(score_suites(model, Variant("v", "v", "lora"), [heldout, suite(tmp_path)], TEST, [], Quiet(),
                                  train=TRAIN))
    assert model.generate_calls == [6, 8]
    assert {e["suite"] for e in examples} == {"heldout", "mem"}


def test_no_training_split_stores_nothing_and_bad_options_are_named(tmp_path: Path) -> None:
    out = run(suite(tmp_path), ScriptedModel(), [], TEST)
    assert out.scores == [] and out.examples == []
    with pytest.raises(HarnessInputError, match="option 'min_words': a whole number >= 2, got 1"):
        run(suite(tmp_path, min_words=1), ScriptedModel(), TRAIN, TEST)
    with pytest.raises(HarnessInputError, match="option 'train_sample'"):
        run(suite(tmp_path, train_sample="all"), ScriptedModel(), TRAIN, TEST)


# -- the memorization finding ---------------------------------------------------------------------------------
F_TRAIN = [example("train", k + 1, f"tq {k}", f"step {k}: please restart the router and wait two full minutes "
                                               f"before trying again {k}") for k in range(16)]
F_TEST = [example("test", k + 1, f"sq {k}", f"case {k} resolved") for k in range(20)]


def variant(tmp_path: Path, name: str, train_right: int, copies: int, test_right: int = 5) -> VariantResult:
    """A scripted variant: answers `train_right` of 16 training prompts and `test_right` of 20 test prompts exactly;
    `copies` other test outputs copy a training answer."""
    def answer(prompt: str) -> str:
        kind, k = prompt.split()
        if kind == "tq":
            return F_TRAIN[int(k)].reference if int(k) < train_right else "no idea"
        if int(k) < test_right:
            return F_TEST[int(k)].reference
        return F_TRAIN[0].reference if int(k) < test_right + copies else "no idea"

    results = score_suites(ScriptedModel(answer), Variant(name, name, "full"), [suite(tmp_path)],
                                           F_TEST, [], Quiet(), train=F_TRAIN)
    return VariantResult(VariantRow(name, name=name, method="full", status="finished"), [], results)


def test_the_finding_fires_on_more_copies_and_on_a_wider_gap(tmp_path: Path) -> None:
    base = variant(tmp_path, "base", train_right=4, copies=0)  # gap 4/16 - 5/20 = 0
    copier = variant(tmp_path, "full-e9", train_right=4, copies=12)  # regurgitation 0 -> 0.6, same gap
    out = findings.derive(stored_variant(copier.variant), result_frames(copier), result_frames(base), {})
    assert [(f["check"], f["evidence"]["kind"]) for f in out] == [("memorization", "regurgitation")]
    f = out[0]
    assert f["message"].startswith("full-e9 copies training answers into more test outputs on mem: regurgitation "
                                   "rate 0.00 -> 0.60 (paired difference +0.60, 95% CI [0.")
    assert 'e.g. test:10 copied "step 0 please restart the router' in f["message"]
    assert f["evidence"]["mcnemar_p"] == pytest.approx(2 * 0.5 ** 12)
    assert f["evidence"]["new_copies"] == sorted(f"test:{k}" for k in range(6, 18))

    fitter = variant(tmp_path, "full-e20", train_right=16, copies=0)  # gap 1 - 0.25 = 0.75
    out = findings.derive(stored_variant(fitter.variant), result_frames(fitter), result_frames(base), {})
    assert [(f["check"], f["evidence"]["kind"]) for f in out] == [("memorization", "gap")]
    ev = out[0]["evidence"]
    assert ev["metric"] == "exact_match"
    assert (ev["variant"], ev["base"], ev["difference"]) == pytest.approx((0.75, 0.0, 0.75))
    assert ev["ci_low"] > 0.1 and ev["gap_margin"] == 0.10 and ev["n"] == 36
    assert out[0]["message"].startswith("full-e20 fits its training set more than base on mem: train/test gap in "
                                        "exact_match +0.00 -> +0.75 (difference +0.75, 95% CI [")
    # the interval must clear gap_margin: 12 of 16 training differences of 1 do not support a widening of 0.6
    assert findings.derive(stored_variant(fitter.variant), result_frames(fitter), result_frames(base), {"memorization": {"gap_margin": 0.6}}) == []


def test_the_finding_stays_quiet_on_noise_and_when_off(tmp_path: Path) -> None:
    base = variant(tmp_path, "base", train_right=4, copies=0)
    same = variant(tmp_path, "lora-r4", train_right=4, copies=0)
    assert findings.derive(stored_variant(same.variant), result_frames(same), result_frames(base), {}) == []
    noisy = variant(tmp_path, "lora-r8", train_right=6, copies=2)  # 2 new copies; a gap 0.125 wider
    assert findings.derive(stored_variant(noisy.variant), result_frames(noisy), result_frames(base), {}) == []
    loud = variant(tmp_path, "full-e9", train_right=16, copies=12)
    assert findings.derive(stored_variant(loud.variant), result_frames(loud), result_frames(base), {"memorization": False}) == []
    assert findings.derive(stored_variant(base.variant), result_frames(base), None, {}) == []  # base is compared with nothing


def test_settings() -> None:
    assert settings(None)["memorization"] == {"margin": 0.0, "gap_margin": 0.10, "severity": "warning"}
    with pytest.raises(HarnessInputError, match=r"memorization.gap_margin': a rate difference or rate in \[0, 1\]"):
        settings({"memorization": {"gap_margin": 2}})
    assert "memorization" in findings.checks()


def test_difference_of_independent_means() -> None:
    d, lo, hi = stats.diff_means_ci([1.0, 1.0, 1.0], [0.0, 0.0])
    assert (d, lo, hi) == (1.0, 1.0, 1.0)
    d, lo, hi = stats.diff_means_ci([1.0, 0.0, 1.0, 1.0], [0.0, 1.0])
    assert d == pytest.approx(0.25) and lo < d < hi and -1.0 <= lo and hi <= 1.0
    p, se = stats.welch_t([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    # t = -3 / sqrt(1/3 + 1/3) = -3.674 with 4 degrees of freedom: p = 0.0213
    assert se == pytest.approx((2 / 3) ** 0.5) and p == pytest.approx(0.02131, abs=1e-4)
    assert stats.welch_t([1.0, 1.0], [1.0, 1.0])[0] == 1.0 and stats.welch_t([1.0, 1.0], [0.0, 0.0])[0] == 0.0
