"""`harness init`: the starter experiment it writes is a valid spec with valid data, and nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.data.chat import load_bundle
from harness.data.suites import builtin_suites_dir, resolve_suites
from harness.spec.schema import load_spec
from harness.spec.starter import FILES

REPO = Path(__file__).resolve().parent.parent


def test_init_writes_a_starter_whose_spec_suites_and_data_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # no suites/ folder here: names resolve to the built-in suites
    assert main(["init", "exp"]) == 0
    assert sorted(str(p.relative_to(tmp_path / "exp")) for p in (tmp_path / "exp").rglob("*") if p.is_file()) == \
        sorted(FILES)
    assert "harness sweep exp/spec.yaml" in capsys.readouterr().out
    spec = load_spec(tmp_path / "exp" / "spec.yaml")
    assert spec.model == "smollm2-135m-instruct"
    text = (tmp_path / "exp" / "spec.yaml").read_text(encoding="utf-8")
    for section in ("data:", "sweep:", "train:", "suites:", "findings:", "gate:", "review:", "prompt:", "tracking:"):
        assert section in text, section
    suites = resolve_suites(spec)
    assert [s.name for s in suites] == ["heldout", "general"]
    assert {s.folder.parent for s in suites} == {builtin_suites_dir()}
    data = load_bundle(spec)
    assert (len(data.train), len(data.validation), len(data.test)) == (100, 25, 40)
    prompts = [{e.messages[1]["content"] for e in split} for split in (data.train, data.validation, data.test)]
    assert not prompts[0] & prompts[2] and not prompts[1] & prompts[2]


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "spec.yaml").write_text("name: mine\n", encoding="utf-8")
    (tmp_path / "data" / "test.jsonl").write_text("{}\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'spec.yaml'}" in err and f"{tmp_path / 'data' / 'test.jsonl'}" in err and "--force" in err
    assert "README.md" not in err
    assert (tmp_path / "spec.yaml").read_text(encoding="utf-8") == "name: mine\n"
    assert not (tmp_path / "README.md").exists()  # nothing written when anything would be overwritten
    assert main(["init", str(tmp_path), "--force"]) == 0
    assert load_spec(tmp_path / "spec.yaml").name == "review-labels"


def test_init_on_a_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").write_text("", encoding="utf-8")
    assert main(["init", str(tmp_path / "x")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_starter_data_is_what_its_generator_writes() -> None:
    """The committed starter data is reproducible from generate_data.py (byte for byte)."""
    import json

    from harness.spec.starter_files.generate_data import HERE, generate

    train, test = generate()
    for name, rows in (("train", train), ("test", test)):
        assert (HERE / "data" / f"{name}.jsonl").read_text(encoding="utf-8") == \
            "".join(json.dumps(r) + "\n" for r in rows)


def test_builtin_suites_in_a_source_tree_are_the_checkouts_suites_folder() -> None:
    assert builtin_suites_dir() == REPO / "suites"
