"""Prompt-engineering baselines as variants (`method: prompt`): spec, plan, few-shot turns drawn from the training
split only, per-request costs, and prompt variants in a sweep, the report and the gate like any variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_rows, write_jsonl
from fakes import ScriptedModel
from openai_helpers import BASE, fake, table, write_experiment  # noqa: F401

from harness.cli import main
from harness.data.chat import Example
from harness.data.prompting import few_shot_examples, shot_turns, with_prompt
from harness.errors import HarnessInputError
from harness.models.prompted import PromptedModel, for_variant
from harness.progress import Quiet
from harness.results import RunParts, finish_row, planned_row
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec, load_spec
from harness.store.db import Store
from harness.sweep.runner import Sweep, run_sweep

PROMPT_SPEC = """\
name: prompts
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep:
  method: [prompt, lora]
  shots: [0, 2]
  rank: [2]
  epochs: [1]
  learning_rate: [1.0e-3]
prompt: {system: "Answer with one JSON object: category and id."}
train: {max_seq_length: 96, batch_size: 8}
suites:
  - name: heldout
    options: {max_new_tokens: 8}
"""


def _experiment(folder: Path, spec: str = PROMPT_SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", make_rows(16))
    write_jsonl(folder / "test.jsonl", make_rows(10, offset=100))
    (folder / "spec.yaml").write_text(spec, encoding="utf-8")
    return folder / "spec.yaml"


def _examples(split: str, n: int, offset: int = 0) -> list[Example]:
    return [Example(r["messages"], f"/x/{split}.jsonl", i + 1) for i, r in enumerate(make_rows(n, offset))]


# -- spec and plan --------------------------------------------------------------------------------------------
def test_plan_has_one_prompt_variant_per_shot_count(tmp_path: Path) -> None:
    sweep = Sweep(_experiment(tmp_path))
    names = [v.name for v in sweep.all_variants]
    assert names == ["base", "prompt-0shot", "prompt-2shot", "lora-r2-e1"]
    p0, p2 = sweep.all_variants[1:3]
    assert (p0.shots, p0.seed, p2.shots, p2.seed) == (0, None, 2, 0)  # a seed draws shots; 0 shots need none
    assert not p0.trains and p0.system_prompt == "Answer with one JSON object: category and id."


def test_prompt_ids_follow_the_system_prompt_and_shots(tmp_path: Path) -> None:
    a = {v.name: v.variant_id for v in Sweep(_experiment(tmp_path / "a")).all_variants}
    other = PROMPT_SPEC.replace("category and id.", "category, id.")
    b = {v.name: v.variant_id for v in Sweep(_experiment(tmp_path / "b", other)).all_variants}
    assert a["prompt-0shot"] != b["prompt-0shot"] and a["prompt-2shot"] != b["prompt-2shot"]
    assert a["lora-r2-e1"] == b["lora-r2-e1"] and a["base"] == b["base"]  # the prompt changes only prompt variants


def test_seeds_multiply_only_drawn_shots(tmp_path: Path) -> None:
    spec = PROMPT_SPEC.replace("  epochs: [1]\n", "  epochs: [1]\n  seed: [0, 1]\n").replace("[prompt, lora]", "[prompt]")
    names = [v.name for v in Sweep(_experiment(tmp_path, spec)).all_variants]
    assert names == ["base", "prompt-0shot", "prompt-2shot-s0", "prompt-2shot-s1"]


def test_system_prompt_from_a_file_next_to_the_spec(tmp_path: Path) -> None:
    spec = _experiment(tmp_path, PROMPT_SPEC.replace('prompt: {system: "Answer with one JSON object: category and id."}',
                                                     "prompt: {system_file: system.txt}"))
    (tmp_path / "system.txt").write_text("You triage tickets.\n")
    assert load_spec(spec).system_prompt() == "You triage tickets."


@pytest.mark.parametrize(("change", "words"), [
    (("prompt: {system:", "prompt: {system_file: x.txt, system:"), "either 'system' or 'system_file'"),
    (('prompt: {system: "Answer with one JSON object: category and id."}', "prompt: {}"), "is the base model itself"),
    (('prompt: {system: "Answer with one JSON object: category and id."}', "prompt: {system_file: nope.txt}"),
     "no file"),
    (('prompt: {system: "Answer with one JSON object: category and id."}', "prompt: {system_file: ../../etc/passwd}"),
     "points outside"),
    (("shots: [0, 2]", "shots: [-1]"), "whole number >= 0"),
])
def test_bad_prompt_settings_name_the_key_and_fix(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    text = PROMPT_SPEC.replace("  shots: [0, 2]\n", "  shots: [0]\n") if "shots" not in change[0] else PROMPT_SPEC
    spec = _experiment(tmp_path, text.replace(*change))
    with pytest.raises(HarnessInputError) as err:
        load_spec(spec)
    assert words in str(err.value) and "spec.yaml:" in str(err.value)


def test_shots_need_a_training_split(tmp_path: Path) -> None:
    text = PROMPT_SPEC.replace("train: train.jsonl, ", "").replace("[prompt, lora]", "[prompt]")
    with pytest.raises(HarnessInputError, match="few-shot examples come from the training split"):
        load_spec(_experiment(tmp_path, text))


# -- few-shot turns -------------------------------------------------------------------------------------------
def test_few_shot_examples_are_seeded_and_from_the_training_split_only() -> None:
    train = _examples("train", 12)
    a, b, c = few_shot_examples(train, 3, 0), few_shot_examples(train, 3, 0), few_shot_examples(train, 3, 1)
    assert [e.line for e in a] == [e.line for e in b] and [e.line for e in a] != [e.line for e in c]
    assert len({e.line for e in a}) == 3 and all(e in train for e in a)
    with pytest.raises(HarnessInputError, match="holds only 12"):
        few_shot_examples(train, 13, 0)


def test_the_prompt_goes_before_the_conversation() -> None:
    shots = _examples("train", 2)
    turns = shot_turns(shots)
    assert [m["role"] for m in turns] == ["user", "assistant", "user", "assistant"]  # their system messages dropped
    conv = [{"role": "system", "content": "Own."}, {"role": "user", "content": "Q?"}]
    out = with_prompt(conv, "Spec.", turns)
    assert out[0] == {"role": "system", "content": "Spec.\n\nOwn."} and out[1:5] == turns and out[-1]["content"] == "Q?"
    assert with_prompt([{"role": "user", "content": "Q?"}], None, []) == [{"role": "user", "content": "Q?"}]


def test_a_prompt_variant_never_sees_validation_or_test_examples() -> None:
    """The scored model gets shots from the training split; no validation or test content appears in any request."""
    train, val, test = _examples("train", 12), _examples("validation", 4, 50), _examples("test", 6, 100)
    model = ScriptedModel(lambda p: "x")
    v = Variant("p", "prompt-3shot", "prompt", seed=0, shots=3, system_prompt="S.")
    lm, prompt = for_variant(model, v, train)
    assert isinstance(lm, PromptedModel)
    lm.generate([e.prompt_messages for e in test], 8)
    sent = {m["content"] for c in model.conversations for m in c}
    assert not sent & {m["content"] for e in val for m in e.messages if m["role"] != "system"}
    assert not sent & {e.reference for e in test}  # no test answer is ever shown
    shown = {m["content"] for c in model.conversations for m in c[1:7]}
    assert shown <= {m["content"] for e in train for m in e.messages}
    assert prompt is not None and prompt.shot_examples == [e.example_id for e in few_shot_examples(train, 3, 0)]
    row = finish_row(planned_row(v, "m", TrainSpec()), RunParts(prompt=prompt), "finished")
    assert row.trainable_params == 0 and row.train_seconds == 0.0 and row.shots == 3
    assert row.config is not None and row.config.to_json()["prompt"] == {
        "system": "S.", "shots": 3, "seed": 0, "shot_examples": prompt.shot_examples}
    assert for_variant(model, Variant("b", "base", "base"), train) == (model, None)


def test_plain_text_requests_pass_through_unprompted() -> None:
    model = ScriptedModel(logliks=lambda c, x: -1.0)
    lm = PromptedModel(model, system="S.", turns=[])
    assert lm.loglikelihood([("ctx", " a")]) == [(-1.0, False)]
    nll = lm.reference_nll([[{"role": "user", "content": "q"}, {"role": "assistant", "content": "abc"}]])
    assert nll == [(3.0, 3)]  # the reference is still the last message


# -- end to end -----------------------------------------------------------------------------------------------
def test_prompt_variants_in_a_sweep_the_report_and_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _experiment(tmp_path)
    db = tmp_path / "r.duckdb"
    rid = run_sweep(spec, db, progress=Quiet(), out=open(tmp_path / "out.txt", "w"))
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants").set_index("name")
        ex = s.run_table(rid, "examples")
    assert set(v["status"]) == {"finished"}, v["error"]
    assert v.loc["prompt-2shot", "shots"] == 2 and v.loc["prompt-2shot", "trainable_params"] == 0
    cfg = v.loc["prompt-2shot", "config"]["prompt"]
    assert len(cfg["shot_examples"]) == 2 and all(x.startswith("train:") for x in cfg["shot_examples"])
    # every variant carries its per-request cost; the prompt makes requests longer, shots longer still
    per = v["prompt_tokens_per_request"]
    assert per["base"] < per["prompt-0shot"] < per["prompt-2shot"] and (v["seconds_per_request"] > 0).all()
    assert ((v["output_tokens_per_request"] > 0) & (v["output_tokens_per_request"] <= 8)).all()
    assert set(ex[ex.variant_id == v.loc["prompt-2shot", "variant_id"]]["suite"]) >= {"heldout"}
    out = tmp_path / "report.html"
    assert main(["report", rid, "--db", str(db), "-o", str(out)]) == 0
    html = out.read_text()
    assert "prompt-2shot" in html and "prompt tok/req" in html
    base = tmp_path / "baseline.json"
    assert main(["baseline", "save", rid, "--variant", "base", "-o", str(base), "--db", str(db)]) == 0
    code = main(["gate", rid, "--baseline", str(base), "--variant", v.loc["prompt-2shot", "variant_id"], "--db", str(db)])
    assert code in (0, 1) and "prompt-2shot" in capsys.readouterr().out


@pytest.mark.api
def test_a_prompt_variant_of_an_api_model_sends_the_prompt_and_counts_usage(tmp_path: Path, fake) -> None:  # noqa: F811
    text = PROMPT_SPEC.replace("tiny-random-llama", f"openai:{BASE}").replace("[prompt, lora]", "[prompt]")
    text = text.replace("shots: [0, 2]", "shots: [2]")
    spec, rows = write_experiment(tmp_path / "exp", text)
    fake.answer = lambda model, messages: "ok"
    db = tmp_path / "r.duckdb"
    rid = run_sweep(spec, db, progress=Quiet(), out=open(tmp_path / "out.txt", "w"))
    v = table(db, "SELECT name, status, prompt_tokens_per_request, output_tokens_per_request, config FROM variants "
                  "WHERE run_id = ? ORDER BY position", [rid])
    assert list(v["name"]) == ["base", "prompt-2shot"] and set(v["status"]) == {"finished"}
    assert list(v["prompt_tokens_per_request"]) == [10.0, 10.0]  # the fake server's usage numbers
    chats = [s.body for s in fake.requests("POST", "/v1/chat/completions")]
    prompted = [c["messages"] for c in chats if c["messages"][0].get("content", "").startswith("Answer with one JSON")]
    assert len(prompted) == 10 and all(len(m) == 1 + 4 + 1 for m in prompted)  # system, 2 shots, the question
    shot_ids = json.loads(v["config"][1])["prompt"]["shot_examples"]
    assert len(shot_ids) == 2
