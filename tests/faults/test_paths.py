"""Case 7 and the path rules that already held: data, suites, model and checkpoints resolve against the spec's
folder and may not leave it (absolute paths, '..', symlinks); suite names are names; '%2e%2e' is not decoded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faultlib import ONE_LORA, REPO, cli, write_experiment, write_jsonl

pytestmark = pytest.mark.faults

OUTSIDE = "points outside the spec's folder"
NOT_A_NAME = "is not a suite name"
HELDOUT = "  - name: heldout\n    options: {max_new_tokens: 8}\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(spec, outside): an experiment in tmp/exp and, beside it, a folder with data, a suite and a model."""
    spec = write_experiment(tmp_path / "exp")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(spec.parent / "train.jsonl", outside / "train.jsonl")
    shutil.copytree(REPO / "suites" / "heldout", outside / "suite")
    (outside / "model").mkdir()
    (outside / "model" / "config.json").write_text('{"model_type": "llama"}')
    (outside / "model" / "model.safetensors").write_bytes(b"\0" * 16)
    (spec.parent / "link.jsonl").symlink_to(outside / "train.jsonl")
    (spec.parent / "suite-link").symlink_to(outside / "suite")
    return spec, outside


CASES = {
    "data ..": ("train: train.jsonl", "train: ../outside/train.jsonl", OUTSIDE),
    "data absolute": ("train: train.jsonl", "train: {outside}/train.jsonl", OUTSIDE),
    "data symlink": ("train: train.jsonl", "train: link.jsonl", OUTSIDE),
    "data %2e%2e": ("train: train.jsonl", "train: '%2e%2e/outside/train.jsonl'", "%2e%2e/outside/train.jsonl"),
    "suite path ..": ("  - name: heldout\n", "  - path: ../outside/suite\n", OUTSIDE),
    "suite path symlink": ("  - name: heldout\n", "  - path: suite-link\n", OUTSIDE),
    "suite string ..": (HELDOUT, "  - ../outside/suite\n", OUTSIDE),
    "suite name absolute": ("  - name: heldout\n", "  - name: {outside}/suite\n", NOT_A_NAME),
    "suite name ../..": ("  - name: heldout\n", "  - name: ../../outside/suite\n", NOT_A_NAME),
    "suite name with /": ("  - name: heldout\n", "  - name: outside/suite\n", NOT_A_NAME),
    "suite name ..": (HELDOUT, "  - '..'\n", NOT_A_NAME),
    "model ..": ("model: tiny-random-llama", "model: ../outside/model", OUTSIDE),
    "model absolute": ("model: tiny-random-llama", "model: {outside}/model", OUTSIDE),
    "checkpoint ..": ("  method: [lora]", "  method: [given]\n  checkpoint: [../outside/model]", OUTSIDE),
}


@pytest.mark.parametrize("case", list(CASES))
def test_paths_may_not_leave_the_spec_folder(layout: tuple[Path, Path], case: str) -> None:
    spec, outside = layout
    old, new, expected = CASES[case]
    text = ONE_LORA.replace(old, new.format(outside=outside))
    assert text != ONE_LORA
    spec.write_text(text)
    out = cli("sweep", str(spec), "--db", str(spec.parent / "r.duckdb"), "--dry-run")
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_model_folder_beside_the_spec_resolves_against_the_spec_not_the_cwd(layout: tuple[Path, Path],
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec, outside = layout
    shutil.copytree(outside / "model", spec.parent / "model")
    (spec.parent / "model" / "config.json").write_text('{"model_type": "evil", "auto_map": {"AutoConfig": "x.C"}}')
    spec.write_text(ONE_LORA.replace("model: tiny-random-llama", "model: ./model"))
    monkeypatch.chdir(outside)  # ./model here is another folder; the spec's own must be the one resolved
    out = cli("sweep", str(spec), "--db", str(spec.parent / "r.duckdb"), "--dry-run")
    assert out.returncode == 2 and f"{spec.parent / 'model'}: config.json has an auto_map" in out.stderr, out.stderr


def test_jsonl_data_outside_is_not_read(layout: tuple[Path, Path]) -> None:
    spec, outside = layout
    write_jsonl(outside / "train.jsonl", [{"broken": True}])  # would be a data error if it were read
    spec.write_text(ONE_LORA.replace("train: train.jsonl", "train: ../outside/train.jsonl"))
    out = cli("sweep", str(spec), "--db", str(spec.parent / "r.duckdb"), "--dry-run")
    assert out.returncode == 2 and OUTSIDE in out.stderr and "missing \"messages\"" not in out.stderr
