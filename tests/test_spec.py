"""Spec validation: every problem reported at once, with file:line, key and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessInputError
from harness.spec.schema import load_spec

GOOD = """\
name: x
model: tiny-random-llama
data: {train: train.jsonl, test: test.jsonl}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.sweep.method == ["lora"] and spec.data.validation == 0.2 and spec.train.batch_size == 8


def test_sections_with_every_line_commented_out_get_their_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD + "findings:\n  # forgetting: {margin: 0.02}\ngate:\n  # max_drop: {}\n"
                           "review:\n  # rubric: []\n"))
    assert spec.findings == {} and spec.gate == load_spec(write(tmp_path, GOOD)).gate


def test_unknown_key_suggests_the_right_one_with_line(tmp_path: Path) -> None:
    text = GOOD + "sweep:\n  method: [lora]\n  rnak: [4]\n"
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, text))
    msg = err.value.render()
    assert "spec.yaml:6" in msg and "sweep.rnak" in msg and "Did you mean 'rank'" in msg


def test_all_problems_reported_together(tmp_path: Path) -> None:
    text = GOOD + "sweep:\n  method: [lora, qlroa]\n  epochs: [0]\n  learning_rate: [-1]\n"
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, text))
    problems = err.value.problems
    assert len(problems) == 3
    assert any("sweep.method.1" in p and "qlora" in p for p in problems)
    assert any("sweep.epochs" in p and "positive" in p for p in problems)
    assert any("sweep.learning_rate" in p for p in problems)


def test_bad_validation_fraction(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError, match="strictly between 0 and 1"):
        load_spec(write(tmp_path, GOOD.replace("test: test.jsonl}", "test: test.jsonl, validation: 1.5}")))


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError, match=r"spec.yaml:\d+: not valid YAML"):
        load_spec(write(tmp_path, "name: x\ndata: [unclosed\n"))


def test_given_needs_checkpoint_and_openai_needs_openai_model(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, GOOD + "sweep: {method: [given, openai]}\n"))
    text = err.value.render()
    assert "sweep.checkpoint" in text and "openai:<base model>" in text


def test_paths_cannot_escape_the_spec_folder(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, GOOD))
    with pytest.raises(HarnessInputError, match="outside the spec's folder"):
        spec.resolve_path("../../etc/passwd", "data.train")
    with pytest.raises(HarnessInputError, match="outside the spec's folder"):
        spec.resolve_path("/etc/passwd", "data.train")
    assert spec.resolve_path("sub/x.jsonl", "data.train") == (tmp_path / "sub/x.jsonl").resolve()


def test_gpu_keys_have_defaults_and_checked_values(tmp_path: Path) -> None:
    t = load_spec(write(tmp_path, GOOD)).train
    assert (t.dtype, t.attn_implementation, t.eval_batch_size) == ("auto", "auto", "auto")
    assert not (t.gradient_checkpointing or t.packing or t.group_by_length)
    bad = GOOD + "train: {dtype: bf61, attn_implementation: sdpa2, packing: true}\n"
    with pytest.raises(HarnessInputError) as exc:
        load_spec(write(tmp_path, bad))
    text = str(exc.value)
    assert "train.dtype" in text and "Did you mean 'bf16'?" in text
    assert "train.attn_implementation" in text and "Did you mean 'sdpa'?" in text
    # eval_batch_size: 0 is found by the sweep's up-front checks with every other problem (tests/faults)


CHECKPOINT_KEYS = "train:\n  select: best\n  early_stopping: {patience: 3}\n  epochs_from_one_run: true\n"


@pytest.mark.parametrize("sweep", ["sweep: {method: [prompt]}\nprompt: {system: Be brief.}\n",
                                   "sweep: {method: [given], checkpoint: [./adapter]}\n",
                                   "sweep: {method: [prompt, given], checkpoint: [./adapter], shots: [2]}\n"])
def test_item11_checkpoint_settings_without_local_training_are_spec_errors(tmp_path: Path, sweep: str) -> None:
    """select/early_stopping/epochs_from_one_run act on a local training's checkpoints; else they would do nothing."""
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, GOOD + sweep + CHECKPOINT_KEYS))
    msg = err.value.render()
    line = GOOD.count("\n") + sweep.count("\n") + 2
    for i, key in enumerate(("select", "early_stopping", "epochs_from_one_run")):
        assert f"spec.yaml:{line + i}: key 'train.{key}' (" in msg and "applies only to local training" in msg, msg
    assert "Remove it, or add a local method" in msg
    assert len(err.value.problems) == 3
    # with a local method among them the same settings apply, and the spec is accepted
    spec = load_spec(write(tmp_path, GOOD + sweep.replace("[prompt", "[lora, prompt").replace("[given", "[lora, given")
                           + CHECKPOINT_KEYS))
    assert spec.train.select == "best" and spec.train.early_stopping is not None


def test_item11_unknown_key_inside_early_stopping_lists_allowed_keys_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, GOOD + "train:\n  early_stopping: {patince: 2}\n"))
    msg = err.value.render()
    assert "spec.yaml:5: key 'train.early_stopping.patince': unknown key. Did you mean 'patience'? " in msg, msg
    assert msg.rstrip().endswith("Allowed here: patience, min_delta"), msg


def test_item11_unknown_key_messages_never_offer_internal_fields(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError) as err:
        load_spec(write(tmp_path, GOOD + "sourse: x\nsource_path: /etc\nsource_text: forged\n"))
    msg = err.value.render()
    assert "key 'sourse': unknown key." in msg and "Allowed here: name, model," in msg, msg
    assert "Did you mean 'source" not in msg, msg  # a public key may be offered ('resources'), an internal one never
    assert "key 'source_path': unknown key." in msg and "key 'source_text': unknown key." in msg, msg
    for line in msg.splitlines():
        assert "Allowed here" not in line or "source_" not in line.split("Allowed here")[1], line
