"""format scorer on scripted outputs: JSON, schema, required/forbidden patterns, length; items or heldout source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, chat, flat, flat_all, write_jsonl
from fakes import ScriptedModel

from harness.data.chat import Example
from harness.data.suites import load_suite
from harness.errors import HarnessInputError
from harness.scorers import ScoreContext, make_scorer
from harness.spec.plan import Variant

CLOSING = "Thank you for choosing AcmeCorp."
GOOD = json.dumps({"category": "billing", "product": "Widget Pro", "priority": "normal",
                   "reply": f"We refunded the charge. {CLOSING}"})


def run(suite_dir: Path, model: ScriptedModel, test: list[Example] | None = None, cache: dict | None = None,
        **options: object):
    suite = load_suite(suite_dir, options)
    fn, record = make_scorer(suite.kind, suite.options)
    ctx = ScoreContext(model=model, suite=suite, variant=Variant("v", "v", "lora"), test=test or [], train_log=[],
                       cache=cache if cache is not None else {})
    return flat(fn(ctx)), record


def by_metric(out) -> dict[str, dict]:
    return {r["metric"]: r for r in out.scores}


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    d = tmp_path / "fmt"
    d.mkdir()
    (d / "suite.yaml").write_text(yaml.safe_dump({
        "name": "fmt", "version": 1, "kind": "format", "items": "items.jsonl",
        "options": {"json": True, "schema": "schema.json", "max_chars": 120,
                    "required_patterns": [{"name": "closing", "field": "reply", "regex": r"Thanks\.$"}],
                    "forbidden_patterns": [{"name": "placeholder", "regex": r"\[(NAME|TODO)\]"}]}}))
    (d / "schema.json").write_text(json.dumps({
        "type": "object", "required": ["category", "reply"], "additionalProperties": False,
        "properties": {"category": {"enum": ["login", "billing"]}, "reply": {"type": "string"}}}))
    write_jsonl(d / "items.jsonl", [{"id": f"f{i}", "messages": [{"role": "user", "content": f"q{i}"}]}
                                    for i in range(6)])
    return d


OUTPUTS = {
    "q0": json.dumps({"category": "login", "reply": "Reset it. Thanks."}),  # passes every rule
    "q1": "Reset it. Thanks.",  # not JSON
    "q2": json.dumps({"category": "refund", "reply": "Done. Thanks."}),  # schema: enum
    "q3": json.dumps({"category": "login", "reply": "Done."}),  # closing missing
    "q4": json.dumps({"category": "login", "reply": "Dear [NAME], done. Thanks."}),  # placeholder
    "q5": json.dumps({"category": "login", "reply": "x" * 150 + " Thanks."}),  # too long
}


def test_each_rule_counts_and_keeps_its_reason(suite_dir: Path) -> None:
    model = ScriptedModel(OUTPUTS)
    out, record = run(suite_dir, model)
    m = by_metric(out)
    assert m["compliance"]["value"] == pytest.approx(1 / 6) and m["compliance"]["n"] == 6
    assert m["compliance"]["ci_low"] <= 1 / 6 <= m["compliance"]["ci_high"]
    assert m["json_valid"]["value"] == pytest.approx(5 / 6)
    assert m["schema_valid"]["value"] == pytest.approx(4 / 6)  # q1 is not JSON, q2 breaks the enum
    assert m["required:closing"]["value"] == pytest.approx(4 / 6)  # q1 (no JSON) and q3
    assert m["forbidden:placeholder"]["value"] == pytest.approx(5 / 6)
    assert m["max_chars"]["value"] == pytest.approx(5 / 6)
    ex = {e["example_id"]: e for e in out.examples}
    assert ex["f0"]["passed"] and ex["f0"]["detail"]["reasons"] == []
    assert not ex["f1"]["passed"] and ex["f1"]["detail"]["reasons"][0].startswith("json: not valid JSON")
    assert any("schema at /category" in r and "refund" in r for r in ex["f2"]["detail"]["reasons"])
    assert ex["f3"]["detail"]["reasons"] == ["required:closing: /Thanks\\.$/ not found in field 'reply'"]
    assert any("matched '[NAME]'" in r for r in ex["f4"]["detail"]["reasons"])
    assert any(r.startswith("max_chars: ") for r in ex["f5"]["detail"]["reasons"])
    assert ex["f5"]["output"] == OUTPUTS["q5"]
    assert model.generate_calls == [6]  # one batched generation
    assert record["kind"] == "format" and record["args"]["max_chars"] == 120


def test_schema_counts_as_failed_for_schema_violations_only(suite_dir: Path) -> None:
    out, _ = run(suite_dir, ScriptedModel(OUTPUTS))
    rules = {e["example_id"]: e["detail"]["rules"] for e in out.examples}
    assert [rules[f"f{i}"]["schema_valid"] for i in range(6)] == [True, False, False, True, True, True]


def test_the_acme_suite_accepts_a_house_style_answer() -> None:
    out, _ = run(REPO / "suites" / "acme-format", ScriptedModel(lambda prompt: GOOD))
    m = by_metric(out)
    assert m["compliance"]["value"] == 1.0 and m["compliance"]["n"] == 40
    out, _ = run(REPO / "suites" / "acme-format", ScriptedModel(lambda prompt: GOOD.replace(" Thank", " Thank you. [TODO]")))
    m = by_metric(out)
    assert m["compliance"]["value"] == 0.0 and m["forbidden:no_placeholder"]["value"] == 0.0


def test_heldout_source_reuses_the_heldout_generations(tmp_path: Path, suite_dir: Path) -> None:
    from harness.scorers.heldout import heldout_outputs

    write_jsonl(tmp_path / "test.jsonl", [chat(f"q{i}", "ref") for i in range(6)])
    test = [Example(chat(f"q{i}", "ref")["messages"], str(tmp_path / "test.jsonl"), i + 1) for i in range(6)]
    model = ScriptedModel(OUTPUTS)
    cache: dict = {}
    ctx = ScoreContext(model=model, suite=None, variant=Variant("v", "v", "base"), test=test, train_log=[], cache=cache)
    heldout_outputs(ctx, 64)  # what the heldout suite does first
    out, record = run(suite_dir, model, test=test, cache=cache, source="heldout")
    assert model.generate_calls == [6]  # no second generation pass
    assert [e["example_id"] for e in out.examples] == [e.example_id for e in test]
    assert by_metric(out)["compliance"]["value"] == pytest.approx(1 / 6)
    assert record["args"]["source"] == "heldout"


@pytest.mark.parametrize("options,message", [
    ({"source": "train"}, "'source': 'train' is not one of items, heldout"),
    ({"required_patterns": [{"name": "x", "regex": "(unclosed"}]}, "invalid regex '(unclosed'"),
    ({"required_patterns": [{"regex": "x"}]}, "each pattern is {name: ..., regex: ..."),
    ({"max_chars": 0}, "'max_chars': a positive integer"),
])
def test_bad_options_name_the_option(suite_dir: Path, options: dict, message: str) -> None:
    with pytest.raises(HarnessInputError, match=None) as exc:
        run(suite_dir, ScriptedModel(OUTPUTS), **options)
    assert message in str(exc.value)


def test_missing_schema_file_is_named(suite_dir: Path) -> None:
    (suite_dir / "schema.json").unlink()
    with pytest.raises(HarnessInputError, match="option 'schema': no file .*schema.json"):
        run(suite_dir, ScriptedModel(OUTPUTS))


def test_a_spec_with_a_bad_suite_option_names_the_spec_key(tiny_experiment: Path) -> None:
    from harness.sweep.runner import Sweep

    text = tiny_experiment.read_text() + "  - name: acme-format\n    options: {source: tests}\n"
    tiny_experiment.write_text(text)
    with pytest.raises(HarnessInputError, match=r"spec.yaml: key 'suites\[1\]': format option 'source': 'tests' is not"):
        Sweep(tiny_experiment)


def test_clustered_items_get_wider_intervals_resampled_by_cluster_and_say_so(tmp_path: Path) -> None:
    """40 prompts in 8 clusters of 5; the model complies on whole clusters (correlated), 4 of 8."""
    from harness.progress import Quiet
    from harness.scorers.run import score_suites

    def suite(name: str, clustered: bool) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "suite.yaml").write_text(yaml.safe_dump({"name": name, "version": 1, "kind": "format",
                                                      "items": "items.jsonl", "options": {"json": True}}))
        write_jsonl(d / "items.jsonl", [{"id": f"p{i}", "messages": [{"role": "user", "content": f"c{i // 5} q{i}"}],
                                         **({"cluster": f"passage-{i // 5}"} if clustered else {})}
                                        for i in range(40)])
        return d

    model = ScriptedModel(lambda prompt: GOOD if int(prompt.split()[0][1:]) % 2 == 0 else "not json")
    rows = {}
    for name, clustered in (("flat", False), ("clustered", True)):
        scores, examples, _ = flat_all(score_suites(model, Variant("v", "v", "lora"), [load_suite(suite(name, clustered))],
                                           [], [], Quiet()))
        rows[name] = next(r for r in scores if r["metric"] == "compliance")
        assert all(("cluster" in e["detail"]) == clustered for e in examples)
    flat, clus = rows["flat"], rows["clustered"]
    assert flat["value"] == clus["value"] == 0.5
    assert clus["ci_high"] - clus["ci_low"] > 1.5 * (flat["ci_high"] - flat["ci_low"])
    assert clus["scorer"]["args"]["intervals"] == "cluster bootstrap over 8 clusters of 40 items"
    assert "intervals" not in flat["scorer"]["args"]
