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
