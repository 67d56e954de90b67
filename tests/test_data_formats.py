"""The data users have: chat, prompt/completion, Alpaca and ShareGPT records in JSONL, JSON, Parquet, CSV, a `datasets`
folder or the Hub, converted to the same chat examples, detected where unambiguous, each kept at its own location."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, make_rows, write_jsonl

from harness.cli import main
from harness.data.chat import fingerprint, load_bundle, read_examples
from harness.data.sources import DataLocation
from harness.errors import HarnessInputError
from harness.spec.plan import make_plan
from harness.spec.schema import load_spec

CHAT = make_rows(12)  # system, user, assistant (JSON answers)
# the fingerprint today's code gives this chat JSONL (computed on main before data formats existed): variant ids of
# existing experiments must not change
CHAT_FINGERPRINT = "9493e40ce69cd6a20abfd3efdeffb438a14ab828679177fbb43024b8b7dee0b7"


def _parts(row: dict[str, Any]) -> tuple[str, str, str]:
    system, user, answer = (m["content"] for m in row["messages"])
    return system, user, answer


def as_format(fmt: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same examples as records of another format."""
    out = []
    for row in rows:
        system, user, answer = _parts(row)
        if fmt == "chat":
            out.append(row)
        elif fmt == "alpaca":
            out.append({"system": system, "instruction": user, "input": "", "output": answer})
        elif fmt == "sharegpt":
            out.append({"conversations": [{"from": "system", "value": system}, {"from": "human", "value": user},
                                          {"from": "gpt", "value": answer}]})
        else:  # conversational prompt/completion, as trl defines it
            out.append({"prompt": row["messages"][:2], "completion": row["messages"][2:]})
    return out


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    """Records as the file kind that `path`'s suffix names (a folder: a DatasetDict with train and test)."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, records)
    if path.suffix == ".json":
        path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".csv":  # a list-valued field as JSON text in its cell
        pd.DataFrame([{k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()} for r in records]
                     ).to_csv(path, index=False)
    else:
        import datasets

        datasets.DatasetDict({"train": datasets.Dataset.from_list(records),
                              "test": datasets.Dataset.from_list(records[:10])}).save_to_disk(str(path))
    return path


FORMATS = ["chat", "prompt-completion", "alpaca", "sharegpt"]
KINDS = ["jsonl", "json", "parquet", "csv", "folder"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_in_every_container_becomes_the_same_examples(tmp_path: Path, fmt: str, kind: str) -> None:
    path = write(tmp_path / ("ds" if kind == "folder" else f"d.{kind}"), as_format(fmt, CHAT))
    got = read_examples(DataLocation(path))
    assert got.problems == []
    assert [e.messages for e in got.examples] == [r["messages"] for r in CHAT]
    assert fingerprint(got.examples) == CHAT_FINGERPRINT  # the same data gives the same fingerprint in any format
    assert got.info is not None and got.info.format == fmt and got.info.detected and got.info.examples == 12
    e = got.examples[3]
    if kind == "jsonl":
        assert e.where == f"{path}:4"
    elif kind == "json":  # each array item at the line where it starts
        starts = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if line.startswith("  {")]
        assert e.where == f"{path}:{starts[3]}"
    elif kind == "folder":  # the DatasetDict's train split, as `ds["train"][3]`
        assert e.where == f"{path}:train:row 3"
    else:
        assert e.where == f"{path}:row 3" and e.example_id == "d:3"


def test_plain_prompt_completion_is_a_user_and_an_assistant_message(tmp_path: Path) -> None:
    rows = [{"prompt": _parts(r)[1], "completion": _parts(r)[2]} for r in CHAT]
    got = read_examples(DataLocation(write(tmp_path / "pc.jsonl", rows)))
    assert got.problems == [] and got.info is not None and got.info.format == "prompt-completion"
    assert got.examples[0].messages == CHAT[0]["messages"][1:]


def test_alpaca_input_joins_the_instruction_after_a_blank_line(tmp_path: Path) -> None:
    rows = [{"instruction": f"Classify ticket {i}.", "input": f"my login fails {i}", "output": "login"}
            for i in range(12)]
    got = read_examples(DataLocation(write(tmp_path / "a.parquet", rows)))
    assert got.examples[1].messages == [{"role": "user", "content": "Classify ticket 1.\n\nmy login fails 1"},
                                        {"role": "assistant", "content": "login"}]


def _break(fmt: str, record: dict[str, Any]) -> dict[str, Any]:
    """One record made wrong in the way typical of its format."""
    if fmt == "chat":
        return {"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    if fmt == "alpaca":
        return {**record, "output": "  "}
    if fmt == "sharegpt":
        return {"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "yo"}]}
    return {"prompt": "hi", "completion": [{"role": "assistant", "content": "yo"}]}


BAD = {"chat": "messages[0] has unknown role 'human'", "alpaca": "output (assistant) has empty content",
       "sharegpt": "conversations[1] has unknown 'from' 'bot'",
       "prompt-completion": "prompt and completion are both text (standard) or both lists of messages"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bad_record_is_named_by_its_file_and_line_or_row(tmp_path: Path, fmt: str, kind: str) -> None:
    records = as_format(fmt, CHAT)
    records[4] = _break(fmt, records[4])
    if fmt == "prompt-completion" and kind in ("parquet", "folder"):  # a column holds one type: text vs text
        records = [{"prompt": _parts(r)[1], "completion": _parts(r)[2]} for r in CHAT]
        records[4]["completion"] = ""
    path = write(tmp_path / ("ds" if kind == "folder" else f"d.{kind}"), records)
    got = read_examples(DataLocation(path))
    assert len(got.problems) == 1 and len(got.examples) == 11
    where = {"jsonl": f"{path}:5", "folder": f"{path}:train:row 4", "parquet": f"{path}:row 4",
             "csv": f"{path}:row 4"}.get(kind)
    if kind == "json":
        lines = path.read_text().splitlines()
        starts = [i + 1 for i, line in enumerate(lines) if line.startswith("  {")]
        where = f"{path}:{starts[4]}"
    expected = "completion (assistant) has empty content" if (
        fmt == "prompt-completion" and kind in ("parquet", "folder")) else BAD[fmt]
    assert got.problems[0].startswith(f"{where}: ") and expected in got.problems[0], got.problems


def test_a_missing_field_names_the_format_shape(tmp_path: Path) -> None:
    rows = as_format("alpaca", CHAT)
    rows[2] = {"instruction": "x"}
    got = read_examples(DataLocation(write(tmp_path / "a.jsonl", rows)))
    assert got.problems == [f'{tmp_path / "a.jsonl"}:3: missing "output"; each line is '
                            '{"instruction": ..., "input": ..., "output": ...}']


def test_auto_detection_refuses_ambiguous_and_unknown_shapes(tmp_path: Path) -> None:
    both = [{**r, "prompt": "p", "completion": "c"} for r in CHAT]  # columns of chat and of prompt/completion
    got = read_examples(DataLocation(write(tmp_path / "both.parquet", both)))
    assert got.examples == [] and len(got.problems) == 1
    assert "ambiguous data format" in got.problems[0] and "chat and prompt-completion" in got.problems[0]
    assert "data.format" in got.problems[0]
    chosen = read_examples(DataLocation(tmp_path / "both.parquet"), fmt="prompt-completion")
    assert chosen.problems == [] and chosen.info is not None and not chosen.info.detected
    assert chosen.examples[0].messages == [{"role": "user", "content": "p"}, {"role": "assistant", "content": "c"}]

    mixed = [*CHAT[:6], *as_format("alpaca", CHAT[6:])]  # a file whose lines change format half way
    got = read_examples(DataLocation(write(tmp_path / "mixed.jsonl", mixed)))
    assert len(got.problems) == 1 and "mixes chat (lines 1, 2, 3, 4, 5, ...), alpaca (lines 7" in got.problems[0]

    qa = [{"question": _parts(r)[1], "answer": _parts(r)[2]} for r in CHAT]
    got = read_examples(DataLocation(write(tmp_path / "qa.csv", qa)))
    assert len(got.problems) == 1 and "cannot tell the data format from its columns (question, answer)" in \
        got.problems[0] and "alpaca needs instruction and output" in got.problems[0]
    mapped = read_examples(DataLocation(tmp_path / "qa.csv"), columns={"prompt": "question", "completion": "answer"})
    assert mapped.problems == [] and mapped.info is not None and mapped.info.format == "prompt-completion"
    assert "prompt <- 'question'" in mapped.info.describe()
    wrong = read_examples(DataLocation(tmp_path / "qa.csv"), fmt="alpaca", columns={"instruction": "question"})
    assert len(wrong.problems) == 1 and "no column 'output' for format alpaca (its columns: question, answer)" in \
        wrong.problems[0]


def _spec(folder: Path, data: str, sweep: str = "method: [lora]\n  rank: [2, 4]") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(f"name: formats\nmodel: tiny-random-llama\ndata:\n{data}\nsweep:\n  {sweep}\n", encoding="utf-8")
    return spec


def _plan_ids(spec: Path) -> list[str]:
    s = load_spec(spec)
    return [v.variant_id for v in make_plan(s, "tiny-random-llama", load_bundle(s).fingerprints, [])]


def _two_experiments(tmp_path: Path) -> tuple[Path, Path]:
    """The same train and test examples as chat JSONL, and as an Alpaca Parquet file (other column names) with a
    ShareGPT `datasets` folder for test."""
    chat, other = tmp_path / "chat", tmp_path / "other"
    chat.mkdir()
    other.mkdir()
    write_jsonl(chat / "train.jsonl", CHAT)
    write_jsonl(chat / "test.jsonl", make_rows(10, offset=100))
    qa = [{"q": _parts(r)[1], "a": _parts(r)[2], "sys": _parts(r)[0]} for r in CHAT]
    write(other / "train.parquet", qa)
    write(other / "tests", as_format("sharegpt", make_rows(10, offset=100)))  # its test split
    chat_spec = _spec(chat, "  train: train.jsonl\n  validation: 0.25\n  test: test.jsonl")
    other_spec = _spec(other, "  train: train.parquet\n  validation: 0.25\n  test: tests\n  format: auto\n"
                       "  columns: {instruction: q, output: a, system: sys}")
    return chat_spec, other_spec


def test_the_same_data_in_two_formats_gives_the_same_variant_ids(tmp_path: Path) -> None:
    chat_spec, other_spec = _two_experiments(tmp_path)
    other = other_spec.parent
    chat_bundle, other_bundle = load_bundle(load_spec(chat_spec)), load_bundle(load_spec(other_spec))
    assert chat_bundle.fingerprints == other_bundle.fingerprints
    assert chat_bundle.fingerprints["train"] != fingerprint([])
    ids = _plan_ids(chat_spec)
    assert len(ids) == 3 and ids == _plan_ids(other_spec)
    assert {k: i.format for k, i in other_bundle.formats.items()} == {"train": "alpaca", "test": "sharegpt"}
    assert other_bundle.test[0].where == f"{other / 'tests'}:test:row 0"  # the folder's split picked by the role
    records = other_bundle.format_records()
    assert [(r["split"], r["format"], r["detected"], r["severity"]) for r in records] == [
        ("test", "sharegpt", True, "info"), ("train", "alpaca", True, "info")]


def test_chat_jsonl_fingerprint_is_unchanged(tmp_path: Path) -> None:
    got = read_examples(DataLocation(write_jsonl(tmp_path / "t.jsonl", CHAT)))
    assert fingerprint(got.examples) == CHAT_FINGERPRINT


def test_datasets_folder_split_is_picked_by_role_or_named(tmp_path: Path) -> None:
    write(tmp_path / "ds", as_format("alpaca", CHAT))
    spec = _spec(tmp_path, "  train: ds\n  validation: ds:test\n  test: ds:test")
    bundle = load_bundle(load_spec(spec))
    assert len(bundle.train) == 12 and len(bundle.validation) == 10 and bundle.validation[0].where.endswith(
        "ds:test:row 0")
    spec = _spec(tmp_path, "  train: ds\n  validation: ds\n  test: ds:tset")
    with pytest.raises(HarnessInputError) as err:
        load_bundle(load_spec(spec))
    problems = err.value.problems
    assert any("no split for validation (it has train, test); name one as" in p and "ds:SPLIT" in p for p in problems)
    assert any("no split 'tset'; it has train, test" in p for p in problems)


def test_spec_paths_stay_inside_the_spec_folder(tmp_path: Path) -> None:
    inside = tmp_path / "exp"
    inside.mkdir()
    write(tmp_path / "ds", as_format("alpaca", CHAT))
    write(tmp_path / "t.parquet", as_format("alpaca", CHAT))
    spec = _spec(inside, "  train: ../ds:train\n  test: ../t.parquet")
    with pytest.raises(HarnessInputError) as err:
        load_bundle(load_spec(spec))
    assert len(err.value.problems) == 2 and all("points outside the spec's folder" in p for p in err.value.problems)


def test_spec_columns_are_checked_against_the_format(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "  train: t.jsonl\n  test: t.jsonl\n  format: alpaca\n  columns: {instrution: q}")
    with pytest.raises(HarnessInputError) as err:
        load_spec(spec)
    assert "spec.yaml:7: key 'data.columns'" in err.value.problems[0]
    assert "'instrution' is no field of alpaca. Did you mean 'instruction'?" in err.value.problems[0]
    spec = _spec(tmp_path, "  train: t.jsonl\n  test: t.jsonl\n  format: alpacca")
    with pytest.raises(HarnessInputError) as err:
        load_spec(spec)
    assert "Did you mean 'alpaca'?" in err.value.problems[0]


def test_hub_dataset_offline_says_the_hub_cannot_be_reached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # read once, when datasets was imported
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    write_jsonl(tmp_path / "test.jsonl", CHAT)
    spec = _spec(tmp_path, "  train: hf:someone/support-tickets\n  test: test.jsonl")
    with pytest.raises(HarnessInputError) as err:
        load_bundle(load_spec(spec))
    (problem,) = err.value.problems
    assert problem.startswith("hf:someone/support-tickets: the Hugging Face Hub cannot be reached")
    assert "save_to_disk" in problem and "data.train: data/NAME:train" in problem
    bad = _spec(tmp_path, "  train: hf:not a name\n  test: test.jsonl")
    with pytest.raises(HarnessInputError) as err:
        load_bundle(load_spec(bad))
    assert "key 'data.train': 'hf:not a name' is not a Hub dataset" in err.value.problems[0]


def test_data_check_cli_offline_hub_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO),
           "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "harness", "data", "check", "hf:someone/tickets:test", "--model",
                          "none"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "hf:someone/tickets: the Hugging Face Hub cannot be reached" in out.stderr


def test_data_check_prints_the_format_and_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qa = [{"question": _parts(r)[1], "answer": _parts(r)[2]} for r in CHAT]
    path = write(tmp_path / "qa.parquet", qa)
    test = write(tmp_path / "test.jsonl", [{"prompt": _parts(r)[1], "completion": _parts(r)[2]} for r in CHAT[:3]])
    code = main(["data", "check", str(path), "--model", "none", "--column", "instruction=question",
                 "--column", "output=answer", "--against", str(test)])
    out = capsys.readouterr().out
    assert code == 1  # three test examples are identical to training rows: leakage
    flat = " ".join(out.split())
    assert "alpaca (detected from its fields; parquet)" in flat and "instruction <- 'question'" in flat
    assert "row 0 = line 1" in flat  # leakage named by the row of the table and the line of the JSONL
    assert main(["data", "check", str(path), "--model", "none", "--column", "instrution=question"]) == 2
    assert "Did you mean 'instruction'?" in capsys.readouterr().err


def test_a_run_records_how_its_data_was_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On an OpenAI spec (no tokenizer, no torch): the run row names each split's format, nothing is submitted."""
    from harness.progress import Quiet
    from harness.store.db import Store
    from harness.sweep import runner

    write(tmp_path / "train.parquet", as_format("alpaca", make_rows(16)))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    spec = _spec(tmp_path, "  train: train.parquet\n  validation: 0.25\n  test: test.jsonl",
                 "method: [openai]").read_text().replace("tiny-random-llama", "openai:gpt-4o-mini-2024-07-18")
    (tmp_path / "spec.yaml").write_text(spec)
    monkeypatch.setattr(runner, "schedule", lambda *a, **k: iter(()))
    db = tmp_path / "r.duckdb"
    rid = runner.run_sweep(tmp_path / "spec.yaml", db, progress=Quiet(), out=open(tmp_path / "o.txt", "w"))
    with Store(db, read_only=True) as s:
        stored = s.run_row(rid)["data_checks"]
    read = {c["split"]: c for c in stored if c["check"] == "data_format"}
    assert read["train"]["format"] == "alpaca" and read["train"]["file"] == str(tmp_path / "train.parquet")
    assert read["test"]["format"] == "chat" and "16 examples read from" in read["train"]["message"]


def test_data_checks_name_the_rows_of_a_table(tmp_path: Path) -> None:
    from harness.data.quality import dataset_checks

    rows = as_format("alpaca", CHAT)
    rows[2]["instruction"] = "Ticket 2: write to jane.doe@example.com"
    path = write(tmp_path / "t.parquet", rows)
    train = read_examples(DataLocation(path)).examples
    test = read_examples(DataLocation(write_jsonl(tmp_path / "test.jsonl", CHAT[:3]))).examples
    checks = {c.check: c for c in dataset_checks(train, {"test": test})}
    personal = checks["personal_data"]
    assert f"personal data in {path}" in personal.message and "(row 2; e.g." in personal.message
    assert personal.lines == [2] and personal.to_dict()["unit"] == "row"
    near = checks["near_duplicates"]  # the JSONL's lines against the table's rows
    assert "test line 1 ~ train row 0 (1.00)" in near.message and near.to_dict()["train_unit"] == "row"
    assert "unit" not in near.to_dict()  # the test file is located by line, as before


def test_dry_run_sweeps_of_the_same_data_plan_the_same_variants(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Through the CLI on tiny-random-llama: the plans' ids agree, and the plan says how each split was read."""
    chat_spec, other_spec = _two_experiments(tmp_path)
    plans = []
    for spec in (chat_spec, other_spec):
        assert main(["sweep", str(spec), "--dry-run", "--db", str(spec.parent / "r.duckdb")]) == 0
        out = capsys.readouterr().out
        plans.append((sorted(set(re.findall(r"\b[0-9a-f]{12}\b", out))), " ".join(out.split())))
    assert len(plans[0][0]) == 3 and plans[0][0] == plans[1][0]
    assert "data train: 12 examples from" in plans[1][1] and "train.parquet as alpaca (detected" in plans[1][1]
    assert "tests:test as sharegpt (detected from its fields; datasets)" in plans[1][1]
    assert "data train: 12 examples from" in plans[0][1] and "train.jsonl as chat" in plans[0][1]
