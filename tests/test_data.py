"""Data validation: one test per rule, each naming file:line; split, fingerprint, leakage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_rows, write_jsonl

from harness.data.chat import fingerprint, load_examples, split, validate_lines
from harness.data.quality import check_files
from harness.errors import HarnessInputError


def problems_for(tmp_path: Path, lines: list[str | bytes], pad: int = 10) -> list[str]:
    good = [json.dumps(r) for r in make_rows(pad)]
    path = tmp_path / "d.jsonl"
    body = b"\n".join(line if isinstance(line, bytes) else line.encode() for line in [*lines, *good])
    path.write_bytes(body + b"\n")
    return validate_lines(path)[1]


def test_invalid_json(tmp_path: Path) -> None:
    p = problems_for(tmp_path, ['{"messages": ['])
    assert len(p) == 1 and "d.jsonl:1: invalid JSON" in p[0]


def test_invalid_utf8(tmp_path: Path) -> None:
    p = problems_for(tmp_path, [b'{"messages": "\xff\xfe"}'])
    assert len(p) == 1 and "d.jsonl:1: not UTF-8 text (byte 0x" in p[0]


def test_missing_messages(tmp_path: Path) -> None:
    p = problems_for(tmp_path, ['{"prompt": "hi"}'])
    assert len(p) == 1 and 'd.jsonl:1: missing "messages"' in p[0]


def test_unknown_role(tmp_path: Path) -> None:
    row = {"messages": [{"role": "human", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    p = problems_for(tmp_path, [json.dumps(row)])
    assert len(p) == 1 and "d.jsonl:1: messages[0] has unknown role 'human'" in p[0]


def test_empty_content(tmp_path: Path) -> None:
    row = {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "yo"}]}
    p = problems_for(tmp_path, [json.dumps(row)])
    assert len(p) == 1 and "d.jsonl:1: messages[0] (user) has empty content" in p[0]


def test_no_final_assistant(tmp_path: Path) -> None:
    row = {"messages": [{"role": "user", "content": "hi"}]}
    p = problems_for(tmp_path, [json.dumps(row)])
    assert len(p) == 1 and "d.jsonl:1: no final assistant message" in p[0]


def test_too_few_examples(tmp_path: Path) -> None:
    p = problems_for(tmp_path, [], pad=9)
    assert p == [f"{tmp_path / 'd.jsonl'}: 9 valid examples; at least 10 are needed"]


def test_every_problem_reported_with_its_line(tmp_path: Path) -> None:
    p = problems_for(tmp_path, ["{", '{"x": 1}', json.dumps({"messages": [{"role": "user", "content": "a"}]})])
    assert [x.split(": ")[0].rsplit(":", 1)[1] for x in p] == ["1", "2", "3"]
    with pytest.raises(HarnessInputError) as err:
        load_examples(tmp_path / "d.jsonl")
    assert len(err.value.problems) == 3


def test_split_is_seeded_and_disjoint() -> None:
    from harness.data.chat import Example

    ex = [Example(r["messages"], "f", i) for i, r in enumerate(make_rows(20), 1)]
    tr, va = split(ex, 0.25, seed=0)
    assert len(va) == 5 and len(tr) == 15 and not {e.line for e in tr} & {e.line for e in va}
    assert [e.line for e in va] == [e.line for e in split(ex, 0.25, seed=0)[1]]
    assert [e.line for e in va] != [e.line for e in split(ex, 0.25, seed=1)[1]]


def test_fingerprint_ignores_whitespace_but_not_content(tmp_path: Path) -> None:
    rows = make_rows(10)
    a = load_examples(write_jsonl(tmp_path / "a.jsonl", rows))
    rows2 = json.loads(json.dumps(rows))
    rows2[0]["messages"][1]["content"] += "  "
    b = load_examples(write_jsonl(tmp_path / "b.jsonl", rows2))
    rows2[0]["messages"][1]["content"] = "changed"
    c = load_examples(write_jsonl(tmp_path / "c.jsonl", rows2))
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_check_finds_duplicates_and_leakage(tmp_path: Path) -> None:
    rows = make_rows(10)
    train = write_jsonl(tmp_path / "train.jsonl", rows + [rows[3]])
    test = write_jsonl(tmp_path / "test.jsonl", [rows[5], *make_rows(3, offset=50)])
    report = check_files(train, [test], tokenizer=None)
    assert report.duplicates == [[4, 11]]
    assert report.against[0].exact == [(6, 1)]
