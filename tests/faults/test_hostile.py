"""Hostile input that must never run code, leak a secret or be misread: baselines (case 9), model folders with
custom code (case 10) or pickled weights, canary secrets through a crashing sweep."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from faultlib import ONE_LORA, child_env, cli, copy_store, harness, write_experiment

pytestmark = pytest.mark.faults


def test_a_baseline_from_another_experiment_is_exit_2_naming_both(finished: dict[str, Any], tmp_path: Path) -> None:
    db = copy_store(finished, tmp_path)
    base = json.loads((tmp_path / "base.json").read_text())
    base["run"]["name"] = "billing-bot"
    base["data_fingerprints"]["test"] = "f" * 64
    (tmp_path / "other.json").write_text(json.dumps(base))
    out = cli("gate", "--db", str(db), "--baseline", str(tmp_path / "other.json"), "--variant", "lora-r2-e1")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "'billing-bot'" in out.stderr and "'tiny'" in out.stderr and "another experiment" in out.stderr


@pytest.mark.parametrize("content", ["{not json", '{"format": "something-else"}', "[]", "",
                                     '{"format": "finetune-harness-baseline", "format_version": 99}',
                                     '{"format": "finetune-harness-baseline", "format_version": 1}'])
def test_hostile_baseline_files_are_exit_2(finished: dict[str, Any], tmp_path: Path, content: str) -> None:
    db = copy_store(finished, tmp_path)
    (tmp_path / "evil.json").write_text(content)
    out = cli("gate", "--db", str(db), "--baseline", str(tmp_path / "evil.json"), "--variant", "lora-r2-e1")
    assert out.returncode == 2 and str(tmp_path / "evil.json") in out.stderr, out.stderr


def _custom_code_folder(folder: Path, marker: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "evilmodel", "auto_map": {
        "AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "EvilTokenizer", "auto_map": {
        "AutoTokenizer": ["evil.EvilTokenizer", None]}}))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    return folder


def test_data_check_with_a_custom_code_model_folder_is_exit_2(tmp_path: Path) -> None:
    spec = write_experiment(tmp_path / "exp")
    marker = tmp_path / "code-ran"
    folder = _custom_code_folder(tmp_path / "custom", marker)
    out = cli("data", "check", str(spec.parent / "train.jsonl"), "--model", str(folder))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "never runs code shipped with a model" in out.stderr and "auto_map" in out.stderr
    assert not marker.exists()


class _Payload:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_pickled_weights_never_load(tmp_path: Path) -> None:
    from harness.models.resolve import build_tiny, ensure_smollm2_tokenizer

    spec = write_experiment(tmp_path / "exp", ONE_LORA.replace("model: tiny-random-llama", "model: ./model").replace(
        "  method: [lora]", "  method: [given]\n  checkpoint: [./adapter, ./pickled-model]"))
    exp, marker = spec.parent, tmp_path / "pickle-ran"
    build_tiny().save_pretrained(exp / "model", safe_serialization=True)  # real safetensors ...
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(ensure_smollm2_tokenizer())).save_pretrained(exp / "model")
    payload = pickle.dumps({"model.embed_tokens.weight": _Payload(marker)})
    (exp / "model" / "pytorch_model.bin").write_bytes(payload)  # ... and a pickle beside them, as `model:`
    (exp / "adapter").mkdir()
    (exp / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2,
                                                                     "target_modules": ["q_proj"]}))
    (exp / "adapter" / "adapter_model.bin").write_bytes(payload)  # a `given` adapter holding only a pickle
    (exp / "pickled-model").mkdir()
    (exp / "pickled-model" / "config.json").write_text((exp / "model" / "config.json").read_text())
    (exp / "pickled-model" / "pytorch_model.bin").write_bytes(payload)  # a `given` model holding only a pickle
    out = cli("sweep", str(spec), "--db", str(exp / "r.duckdb"))
    assert out.returncode == 3, out.stderr  # base scored from safetensors; both pickled checkpoints failed
    assert not marker.exists(), "a pickle was loaded"
    (exp / "model" / "model.safetensors").unlink()  # `model:` with only the pickle is refused up front
    out = cli("sweep", str(spec), "--db", str(exp / "r.duckdb"))
    assert out.returncode == 2 and "holds no .safetensors weights" in out.stderr, out.stderr
    assert not marker.exists()


CANARIES = {"OPENAI_API_KEY": "sk-proj-CANARYc4n4ryC4N4RYc4n4ryC4N4RY0000", "HF_TOKEN": "hf_CANARYc4n4ryC4N4RYc4n4ryC4N4RY",
            "HUGGING_FACE_HUB_TOKEN": "hf_CANARY2c4n4ryC4N4RYc4n4ryC4N4RY"}


def test_canary_secrets_appear_in_no_file_and_no_log_of_a_crashing_sweep(tmp_path: Path) -> None:
    spec = write_experiment(tmp_path, ONE_LORA.replace("method: [lora]", "method: [qlora]"))  # qlora fails here
    out = harness("-v", "sweep", str(spec), "--db", str(tmp_path / "r.duckdb"), cwd=tmp_path,
                  env=child_env(**CANARIES))
    assert out.returncode == 3, out.stderr
    (tmp_path / "stdout.log").write_text(out.stdout)
    (tmp_path / "stderr.log").write_text(out.stderr)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "r.duckdb" for p in files)
    for p in files:
        data = p.read_bytes()
        for secret in CANARIES.values():
            assert secret.encode() not in data, f"{secret[:12]}... leaked into {p}"
            assert b"CANARY" not in data, f"part of a secret leaked into {p}"


def test_train_log_has_one_row_per_step_and_split(finished: dict[str, Any]) -> None:
    """Case 11: the step-0 and end-of-training validation rows were appended twice."""
    from harness.store.db import Store

    with Store(finished["db"], read_only=True) as s:
        log = s.query("SELECT variant_id, step, split, count(*) AS n FROM train_log GROUP BY ALL")
        assert not log.empty and (log["n"] == 1).all(), log[log["n"] > 1]
        val = log[log["split"] == "validation"]
        assert 0 in set(val["step"]) and len(val) >= 2
