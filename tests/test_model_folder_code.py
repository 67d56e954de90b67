"""A model folder whose config carries an `auto_map` (issue 23, item 12): refused where transformers cannot serve the
class without the folder's code; accepted with a warning naming what was ignored where transformers ships the class.
Either way no code from the folder runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_SPEC, make_rows, write_jsonl

import harness.cli
from harness.errors import HarnessInputError
from harness.models.resolve import TINY_CONFIG, ensure_smollm2_tokenizer, remote_code, resolve_model


def _folder(folder: Path, marker: Path, *, model_type: str = "llama") -> Path:
    """A tiny Llama folder (config, tokenizer, a weights file no test loads) whose configs map to code in the folder
    that writes `marker`."""
    from transformers import AutoTokenizer, LlamaConfig

    LlamaConfig(**TINY_CONFIG).save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"\0" * 16)  # a dry run reads no weights
    AutoTokenizer.from_pretrained(str(ensure_smollm2_tokenizer())).save_pretrained(folder)
    for file, auto_map in (("config.json", {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.Evil"}),
                           ("tokenizer_config.json", {"AutoTokenizer": ["evil.EvilTokenizer", None]})):
        doc = json.loads((folder / file).read_text())
        doc["auto_map"] = auto_map
        if file == "config.json":
            doc["model_type"] = model_type
        (folder / file).write_text(json.dumps(doc))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    return folder


def test_item12_auto_map_beside_a_shipped_class_is_ignored_with_a_warning(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "code-ran"
    folder = _folder(tmp_path / "model", marker)
    assert remote_code(folder) is None
    ref = resolve_model(str(folder))
    assert ref.kind == "local" and len(ref.notices) == 2, ref.notices
    config, tokenizer = ref.notices
    assert (f"model folder {folder}: config.json maps AutoConfig, AutoModelForCausalLM to code shipped in the folder "
            "(auto_map); ignored: model_type 'llama' is one transformers ships") in config
    assert "tokenizer_config.json maps AutoTokenizer" in tokenizer
    assert all("no code from the folder runs" in n for n in ref.notices)
    # the sweep says so on stderr and goes on; nothing from evil.py ran
    write_jsonl(tmp_path / "train.jsonl", make_rows(16))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC.replace("model: tiny-random-llama", "model: ./model"))
    assert harness.cli.main(["sweep", str(spec), "--db", str(tmp_path / "r.duckdb"), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert f"warning: model folder {folder.resolve()}: config.json maps AutoConfig" in err or \
        f"warning: model folder {folder}: config.json maps AutoConfig" in err, err
    assert "no code from the folder runs" in err
    assert harness.cli.main(["data", "check", str(tmp_path / "train.jsonl"), "--model", str(folder)]) == 0
    assert "warning: model folder" in capsys.readouterr().err
    assert not marker.exists(), "code shipped with the model ran"


def test_item12_auto_map_to_a_class_transformers_lacks_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    folder = _folder(tmp_path / "model", marker, model_type="evilmodel")
    with pytest.raises(HarnessInputError) as err:
        resolve_model(str(folder))
    assert "config.json has an auto_map to custom code (model_type 'evilmodel' is not one transformers ships)" in \
        str(err.value)
    assert "never runs code shipped with a model" in str(err.value)
    assert not marker.exists()
