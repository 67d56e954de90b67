"""hallucination scorer on scripted outputs: abstention on nonexistent things, values on known facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, flat_fn, write_jsonl
from fakes import ScriptedModel

from harness.data.suites import load_suite
from harness.errors import HarnessInputError
from harness.scorers import ScoreContext, make_scorer
from harness.scorers.hallucination import _norm
from harness.spec.plan import Variant

ABSTAIN = json.dumps({"category": "other", "product": "unknown", "priority": "low", "reply": "We have no such product."})


def run(suite_dir: Path, model: ScriptedModel, **options: object):
    suite = load_suite(suite_dir, options)
    fn, _ = make_scorer(suite.kind, suite.options)
    return flat_fn(fn, ScoreContext(model=model, suite=suite, variant=Variant("v", "v", "lora"), test=[], train_log=[]))


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    d = tmp_path / "hal"
    d.mkdir()
    (d / "suite.yaml").write_text(yaml.safe_dump({
        "name": "hal", "version": 1, "kind": "hallucination", "items": "items.jsonl",
        "options": {"abstain_field": {"product": "unknown"}, "abstain_patterns": ["(?i)could not find"],
                    "value_regex": r"\$\d+(?:\.\d{2})?"}}))
    rows = [{"id": f"n{i}", "type": "nonexistent", "messages": [{"role": "user", "content": f"nonexistent {i}"}]}
            for i in range(4)]
    rows += [{"id": f"k{i}", "type": "known_fact", "expected": "$99",
              "messages": [{"role": "user", "content": f"known {i}"}]} for i in range(4)]
    write_jsonl(d / "items.jsonl", rows)
    return d


OUTPUTS = {
    "nonexistent 0": ABSTAIN,  # abstains by the JSON field
    "nonexistent 1": "Sorry, I could not find that product.",  # abstains by a pattern
    "nonexistent 2": json.dumps({"product": "Widget Pro", "reply": "The titanium edition ships in May for $149."}),
    "nonexistent 3": "Sure, it is great.",  # answers as if it existed
    "known 0": "The Widget Pro costs $99.",
    "known 1": "It is $99.00 plus shipping.",  # the same amount
    "known 2": "The Widget Pro costs $999.",  # a different value: fabricated, not a substring match
    "known 3": "I could not find that.",  # abstains on a known fact: not fabricated, not correct
}


def test_rates_and_every_fabrication_kept(suite_dir: Path) -> None:
    model = ScriptedModel(OUTPUTS)
    out = run(suite_dir, model)
    m = {r["metric"]: r for r in out.scores}
    assert m["abstention_rate"]["value"] == 0.5 and m["abstention_rate"]["n"] == 4
    assert m["fabrication_rate"]["value"] == pytest.approx(3 / 8) and m["fabrication_rate"]["n"] == 8
    assert m["known_fact_accuracy"]["value"] == 0.5 and m["known_fact_accuracy"]["n"] == 4
    for r in out.scores:
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    ex = {e["example_id"]: e for e in out.examples}
    verdicts = {k: e["detail"]["verdict"] for k, e in ex.items()}
    assert verdicts == {"n0": "abstained", "n1": "abstained", "n2": "fabricated", "n3": "fabricated",
                        "k0": "correct", "k1": "correct", "k2": "fabricated", "k3": "abstained"}
    fabricated = [e for e in out.examples if e["detail"]["fabricated"]]
    assert {e["example_id"] for e in fabricated} == {"n2", "n3", "k2"}
    assert all(not e["passed"] and e["detail"]["reason"] for e in fabricated)
    assert ex["k2"]["detail"]["reason"] == "stated $999 where the data says $99"
    assert "stated $149" in ex["n2"]["detail"]["reason"]
    assert ex["k2"]["output"] == OUTPUTS["known 2"] and ex["k2"]["reference"] == "$99"
    assert model.generate_calls == [8]


def test_value_normalisation() -> None:
    assert _norm("$99") == _norm("$99.00") == _norm("99") != _norm("$999")
    assert _norm("Widget Pro") == _norm("widget pro")


def test_the_acme_suite_runs_on_scripted_answers() -> None:
    out = run(REPO / "suites" / "acme-hallucination", ScriptedModel(lambda p: ABSTAIN))
    m = {r["metric"]: r["value"] for r in out.scores}
    assert m["abstention_rate"] == 1.0 and m["fabrication_rate"] == 0.0 and m["known_fact_accuracy"] == 0.0
    out = run(REPO / "suites" / "acme-hallucination", ScriptedModel(lambda p: "It costs $12345."))
    assert {r["metric"]: r["value"] for r in out.scores}["fabrication_rate"] == 1.0


def test_bad_items_and_options_are_named(suite_dir: Path) -> None:
    with pytest.raises(HarnessInputError, match="give 'abstain_field'"):
        run(suite_dir, ScriptedModel(OUTPUTS), abstain_field=None, abstain_patterns=None)
    with pytest.raises(HarnessInputError, match=r"abstain_patterns\[0\]'.*invalid regex"):
        run(suite_dir, ScriptedModel(OUTPUTS), abstain_patterns=["(oops"])
    lines = (suite_dir / "items.jsonl").read_text().splitlines()
    bad = json.loads(lines[5])
    bad.pop("expected")
    lines[5] = json.dumps(bad)
    lines[1] = lines[1].replace('"nonexistent"', '"imaginary"')
    (suite_dir / "items.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(HarnessInputError) as exc:
        run(suite_dir, ScriptedModel(OUTPUTS))
    text = str(exc.value)
    assert "item 'n1': 'type' must be one of nonexistent, known_fact, got 'imaginary'" in text
    assert "item 'k1': a known_fact probe needs 'expected'" in text
