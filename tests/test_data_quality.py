"""Data-quality checks (harness.data.quality), each on small hand-written JSONL with expected lines and values;
`harness data check --strict` exit codes; the checks a sweep prints, refuses under --strict and stores on its run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import chat, make_rows, write_jsonl

from harness.cli import main
from harness.data.chat import Example, load_bundle, load_examples
from harness.data.personal import find, luhn, mask
from harness.data.quality import (
    check_files,
    dataset_checks,
    few_examples,
    format_consistency,
    length_outliers,
    near_duplicates,
    personal_data,
    truncation,
)
from harness.data.similarity import jaccard, near_duplicate_pairs, shared_run_pairs, shingles, words
from harness.progress import Quiet
from harness.spec.schema import load_spec
from harness.store.db import Store

# 11 distinct words: 9 three-word shingles. Changing the last word keeps 8 of 9 (Jaccard 8/10 = 0.8); changing the
# last two keeps 7 (7/11 = 0.636...).
BASE = "alpha bravo charlie delta echo foxtrot golf hotel".split(), "india juliet kilo".split()


def qa(user: list[str], answer: list[str]) -> dict:
    return chat(" ".join(user), " ".join(answer), system="The system prompt is left out of similarity.")


def examples(tmp_path: Path, name: str, rows: list[dict]) -> list[Example]:
    return load_examples(write_jsonl(tmp_path / name, rows), min_examples=1)


def unrelated(n: int, tag: str) -> list[dict]:
    return [qa([f"{tag}{i}w{j}" for j in range(8)], [f"{tag}{i}a{j}" for j in range(3)]) for i in range(n)]


# -- near-duplicates ------------------------------------------------------------------------------------------
def test_jaccard_of_word_shingles_by_hand() -> None:
    user, answer = BASE
    e = Example(qa(user, answer)["messages"], "f", 1)
    assert words(e) == [*user, *answer]  # the system prompt is not part of the text
    one = Example(qa(user, [*answer[:2], "lima"])["messages"], "f", 2)
    two = Example(qa(user, [answer[0], "mike", "lima"])["messages"], "f", 3)
    assert len(shingles(words(e))) == 9
    assert jaccard(shingles(words(e)), shingles(words(one))) == pytest.approx(0.8)
    assert jaccard(shingles(words(e)), shingles(words(two))) == pytest.approx(7 / 11)
    assert shingles(["a", "b"]) == {"a b"} and shingles([]) == set()


def test_near_duplicates_found_at_the_threshold_and_not_below(tmp_path: Path) -> None:
    user, answer = BASE
    train = examples(tmp_path, "train.jsonl", [*unrelated(30, "t"), qa(user, answer)])  # the original at line 31
    test = examples(tmp_path, "test.jsonl", [
        *unrelated(5, "x"),
        qa(user, [*answer[:2], "lima"]),         # line 6: similarity 0.8
        qa(user, [answer[0], "mike", "lima"]),   # line 7: similarity 7/11
        qa([w.upper() for w in user], answer),   # line 8: the same words in capitals: 1.0 after normalising
    ])
    pairs = [(a.line, b.line, round(s, 4)) for a, b, s in near_duplicate_pairs(train, test, 0.8)]
    assert pairs == [(31, 6, 0.8), (31, 8, 1.0)]
    lower = [(a.line, b.line, round(s, 4)) for a, b, s in near_duplicate_pairs(train, test, 0.6)]
    assert lower == [(31, 6, 0.8), (31, 7, 0.6364), (31, 8, 1.0)]
    (check,) = dataset_checks(train, {"test": test})[-1:]
    assert check.check == "near_duplicates" and check.file == str(tmp_path / "test.jsonl") and check.lines == [6, 8]
    assert check.detail["pairs"] == [
        {"train_line": 31, "line": 6, "similarity": 0.8, "identical": False},
        {"train_line": 31, "line": 8, "similarity": 1.0, "identical": False}]
    assert "test line 6 ~ train line 31 (0.80)" in check.message and "2 pairs" in check.message


def test_identical_examples_are_near_duplicates_marked_identical(tmp_path: Path) -> None:
    rows = unrelated(12, "t")
    train = examples(tmp_path, "train.jsonl", rows)
    val = examples(tmp_path, "val.jsonl", [rows[4], *unrelated(3, "v")])
    (check,) = [c for c in dataset_checks(train, {"validation": val}) if c.check == "near_duplicates"]
    assert check.detail["pairs"] == [{"train_line": 5, "line": 1, "similarity": 1.0, "identical": True}]
    assert "1 identical" in check.message and check.message.startswith("validation: near-duplicates of training examples in ")


def test_near_duplicates_take_seconds_for_thousands(tmp_path: Path) -> None:
    import random
    import time

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(3000)]
    big = [Example(qa(rng.sample(vocab, 30), rng.sample(vocab, 20))["messages"], "train", i) for i in range(2000)]
    other = [Example(qa(rng.sample(vocab, 30), rng.sample(vocab, 20))["messages"], "test", i) for i in range(500)]
    other[7] = Example(big[42].messages, "test", 7)
    start = time.perf_counter()
    pairs = near_duplicate_pairs(big, other)
    assert [(a.line, b.line, s) for a, b, s in pairs] == [(42, 7, 1.0)]
    assert time.perf_counter() - start < 15  # about 1.5 s on a 2-core machine; minutes would be a regression


def test_item21_near_duplicates_catch_planted_rewordings() -> None:
    """On the labelled set of tests/data/near_duplicates (40 planted near-copies of 8 kinds, 40 look-alike negatives),
    measured by the documented command: the Jaccard threshold alone caught 1 of 40; with the shared-run signal at
    least 80% are caught, every copy that keeps a run of 13 words (a sentence added, removed or reworded, clauses
    reordered, numbers or names changed), with no false pair, and the default experiment's templated data stays
    clean."""
    import subprocess
    import sys

    from conftest import REPO

    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "near_duplicates.py"), "--json"], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    both, jaccard_only = json.loads(out)
    assert both["copies"] == 40 and both["negatives"] == 40 and both["non_copy_pairs"] == 40 * 80 - 40
    assert both["recall"] >= 0.8, both["by_kind"]
    for kind in ("added_sentence", "removed_sentence", "reworded_sentence", "reordered_clauses",
                 "changed_numbers_names"):
        assert both["by_kind"][kind] == [5, 5], (kind, both["by_kind"])
    assert both["false_pairs"] == 0 and both["default_experiment_pairs"] == 0, both["false"]
    assert jaccard_only["caught"] <= 2 and both["caught"] >= jaccard_only["caught"] + 30


def test_shared_run_needs_a_distinctive_run_and_alike_prompts(tmp_path: Path) -> None:
    """A reworded sentence below the Jaccard threshold is caught by its 13-word run; the same run in two training
    examples is house style, and the same answer to another request is a canned reply: neither is a copy."""
    answer = ("Go to Settings then Subscription and choose Cancel renewal and your premium features stay active until the "
              "last day of the current billing period")
    rows = [chat("How do I cancel my premium plan before it renews next month?", answer),
            *[chat(f"Unrelated question number {i} about cooking pasta", f"Boil it for {i} minutes") for i in range(5)]]
    train = examples(tmp_path, "train.jsonl", rows)
    test = examples(tmp_path, "test.jsonl", [
        chat("How do I cancel my premium plan before it renews next month? I am moving abroad.",
             answer.replace("Go to Settings then Subscription and choose", "Open the Subscription page in Settings, pick")),
        chat("Why was I charged twice this month for my order?", answer)])  # another request, the canned reply
    (pair,) = shared_run_pairs(train, test)
    # the run: "cancel renewal and your premium features stay active until the last day of the current billing period"
    assert (pair[0].line, pair[1].line) == (1, 1) and pair[3] == 17
    assert pair[2] < 0.8 and near_duplicate_pairs(train, test) == []  # below the Jaccard threshold
    check = near_duplicates(train, test, "test")
    assert check is not None and check.detail["pairs"] == [
        {"train_line": 1, "line": 1, "similarity": round(pair[2], 4), "identical": False, "shared_run": pair[3]}]
    assert "words in a row" in check.message and "sharing a run of 13+ words" in check.message
    twice = examples(tmp_path, "train2.jsonl", [*rows, chat("Something else entirely, about my invoice", answer)])
    assert shared_run_pairs(twice, test) == []  # the run is in two training examples: house style


# -- truncation -----------------------------------------------------------------------------------------------
class WordTokenizer:
    """One token per whitespace-separated word; the chat template puts a role marker before each message."""

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        text = "".join(f"<{m['role']}> {m['content']} " for m in messages)
        return text + ("<assistant> " if add_generation_prompt else "")

    def __call__(self, text: str | list[str], add_special_tokens: bool = False) -> dict:
        return {"input_ids": [t.split() for t in text] if isinstance(text, list) else text.split()}


def test_truncation_share_whole_and_partial_cuts(tmp_path: Path) -> None:
    def row(n_user: int, n_answer: int) -> dict:
        return {"messages": [{"role": "user", "content": " ".join(["u"] * n_user)},
                             {"role": "assistant", "content": " ".join(["a"] * n_answer)}]}

    # prompt tokens = user words + 2 markers; full = prompt + answer words; max_len 10
    rows = [row(3, 3), row(3, 6), row(8, 2), row(2, 2), row(5, 4), row(1, 1), row(2, 3), row(3, 2)]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    cut = truncation(WordTokenizer(), load_examples(path, min_examples=1), 10)
    assert cut.whole == [(str(path), 3, 10)] and cut.partial == [(str(path), 2), (str(path), 5)]
    assert cut.share == pytest.approx(3 / 8)
    check = cut.check("train")
    assert check is not None and check.lines == [2, 5] and check.detail["share"] == 0.25
    assert "2 of 8 examples (25.0%)" in check.message
    report = check_files(path, [], WordTokenizer(), 10)
    assert "train.jsonl:3 (prompt 10 tokens): the prompt alone fills max_seq_length" in report.problems[0]
    assert [c.check for c in report.checks] == ["truncation", "few_examples"]


# -- the guides' rules ----------------------------------------------------------------------------------------
def test_few_examples_quotes_the_guides(tmp_path: Path) -> None:
    check = few_examples(examples(tmp_path, "a.jsonl", make_rows(99)))
    assert check is not None and check.detail["examples"] == 99
    assert '"minimum 100 examples, 500+ recommended"' in check.message
    assert few_examples(examples(tmp_path, "b.jsonl", make_rows(100))) is None


def test_format_consistency_lists_the_answers_that_are_not_json(tmp_path: Path) -> None:
    rows = make_rows(10)
    rows[3] = chat("Ticket 3", "Your ticket is about billing.")
    rows[8] = chat("Ticket 8", 'Sure: {"category": "login", "id": 8}')  # JSON inside prose is not a JSON answer
    check = format_consistency(examples(tmp_path, "a.jsonl", rows))
    assert check is not None and check.lines == [4, 9] and check.detail["json_share"] == 0.8
    assert "8 of 10 final assistant answers (80%) are JSON, 2 not" in check.message
    rows[5] = chat("Ticket 5", "42")  # a bare number is valid JSON but not a JSON answer: now 70%, no majority
    assert format_consistency(examples(tmp_path, "b.jsonl", rows)) is None
    assert format_consistency(examples(tmp_path, "c.jsonl", make_rows(10))) is None  # all JSON


def test_length_outliers_beyond_three_iqr(tmp_path: Path) -> None:
    counts = [4, 5, 5, 5, 6, 6, 6, 7, 7, 30]  # Q1 5, Q3 6.75 (linear), IQR 1.75: fences [-0.25, 12]
    rows = [chat(f"q{i}", " ".join(["w"] * n)) for i, n in enumerate(counts)]
    check = length_outliers(examples(tmp_path, "a.jsonl", rows))
    assert check is not None and check.lines == [10] and check.detail["words"] == [30]
    assert (check.detail["q1"], check.detail["q3"], check.detail["low"], check.detail["high"]) == (5, 6.75, -0.25, 12)
    assert "line 10 (30 words)" in check.message
    same = [chat(f"q{i}", "one two three four") for i in range(10)] + [chat("q", "one two three four five")]
    assert length_outliers(examples(tmp_path, "b.jsonl", same)) is None  # IQR 0 counts as 1 word: fence 7
    assert length_outliers(examples(tmp_path, "c.jsonl", rows[:9])) is None  # fewer than 10 answers


def test_luhn_and_masking() -> None:
    assert luhn("4111111111111111") and luhn("79927398713") and not luhn("4111111111111112")
    assert mask("email", "jane.doe@example.com") == "j***@e***.com"
    assert mask("card", "4111 1111 1111 1111") == "**** **** **** 1111"
    assert mask("phone", "+44 20 7946 0958") == "+** ** **** **58"


def test_personal_data_counts_kinds_lines_and_masks_values(tmp_path: Path) -> None:
    rows = make_rows(8)
    rows[1] = chat("Reach me at jane.doe@example.com or +44 20 7946 0958.", '{"category": "login"}')
    rows[3] = chat("My card 4111 1111 1111 1111 was charged twice; call (555) 123-4567", '{"category": "billing"}')
    rows[5] = chat("Order 4111 1111 1111 1112 of 2024-01-15, id 12345678, at 10:30", '{"category": "defect"}')
    rows[6] = chat("hi", "Write to support@acme.example.org")
    check = personal_data(examples(tmp_path, "a.jsonl", rows))
    assert check is not None and check.lines == [2, 4, 7]
    assert check.detail["counts"] == {"email": 2, "phone": 2, "card": 1}
    assert check.detail["by_kind"] == {"email": [2, 7], "phone": [2, 4], "card": [4]}
    for value in ("jane.doe@example.com", "support@acme", "4111 1111 1111 1111", "7946 0958", "123-4567"):
        assert value not in check.message
    assert "j***@e***.com" in check.message and "**** **** **** 1111" in check.message
    assert "(***) ***-**67" in check.message
    assert find("Order 4111 1111 1111 1112 of 2024-01-15, id 12345678") == []  # no Luhn, a date, an id


# -- harness data check ---------------------------------------------------------------------------------------
def test_data_check_strict_and_near_duplicate_leakage_exit_codes(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    clean = write_jsonl(tmp_path / "clean.jsonl", make_rows(120))
    small = write_jsonl(tmp_path / "small.jsonl", make_rows(20))
    test = write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=500))
    base = ["data", "check", "--model", "none"]
    assert main([*base, str(clean), "--against", str(test), "--strict"]) == 0
    assert main([*base, str(small)]) == 0
    assert "fewer than 100" in capsys.readouterr().out
    assert main([*base, str(small), "--strict"]) == 1
    assert "check failed: --strict: train: 20 training examples" in capsys.readouterr().err
    near = dict(make_rows(1, offset=3)[0])  # ticket 3 with another id in the answer: similarity 8/10 of clean:4
    near["messages"] = [*near["messages"][:2], {"role": "assistant", "content": '{"category": "login", "id": 9}'}]
    leaky = write_jsonl(tmp_path / "leaky.jsonl", [*make_rows(5, offset=500), near])
    assert main([*base, str(clean), "--against", str(leaky)]) == 1
    out, err = capsys.readouterr()
    assert "near-duplicate leakage: leaky: near-duplicates of training examples in" in err and "leaky line 6 ~ train line 4 (0.80)" in err
    assert main([*base, str(clean), "--against", str(leaky), "--near-dup-threshold", "0.9"]) == 0
    assert main([*base, str(clean), "--near-dup-threshold", "1.5"]) == 2


# -- the sweep ------------------------------------------------------------------------------------------------
OPENAI = "openai:gpt-4o-mini-2024-07-18"


def _with_pii_leak_and_a_long_answer(spec: Path) -> None:
    rows = make_rows(16)
    rows[2] = chat("Ticket 2: write to jane.doe@example.com", rows[2]["messages"][-1]["content"])
    rows[4] = chat("Ticket 4", json.dumps({"category": "defect", "reply": " ".join(["sorry"] * 120)}))
    write_jsonl(spec.parent / "train.jsonl", rows)
    write_jsonl(spec.parent / "test.jsonl", rows[:10])  # every training example among lines 1-10 leaks into test


def test_sweep_stores_its_data_checks_on_the_run(tiny_experiment: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """On an OpenAI spec (no tokenizer, no torch): the run row is written, nothing is submitted."""
    from harness.sweep import runner

    _with_pii_leak_and_a_long_answer(tiny_experiment)
    tiny_experiment.write_text(tiny_experiment.read_text().replace("tiny-random-llama", OPENAI)
                               .replace("method: [lora, full]", "method: [openai]"))
    monkeypatch.setattr(runner, "schedule", lambda *a, **k: iter(()))
    db = tiny_experiment.parent / "r.duckdb"
    rid = runner.run_sweep(tiny_experiment, db, progress=Quiet(), out=open(tiny_experiment.parent / "o.txt", "w"))
    err = capsys.readouterr().err
    assert "warning: train: 12 training examples" in err and "warning: train: personal data" in err
    with Store(db, read_only=True) as s:
        stored = s.run_row(rid)["data_checks"]
    formats = {c["split"]: c["format"] for c in stored if c["check"] == "data_format"}
    assert formats == {"train": "chat", "test": "chat"}  # how each split was read, kept with the run (severity info)
    stored = [c for c in stored if c["check"] != "data_format"]
    train_lines = {e.line for e in load_bundle(load_spec(tiny_experiment)).train}
    assert {3, 5} <= train_lines  # the seeded split keeps the lines this test planted in train
    by_check = {(c["check"], c["split"]): c for c in stored}
    assert set(by_check) == {("few_examples", "train"), ("length_outliers", "train"), ("personal_data", "train"),
                             ("personal_data", "test"), ("near_duplicates", "test")}
    assert by_check[("few_examples", "train")]["examples"] == 12
    assert by_check[("length_outliers", "train")]["lines"] == [5]
    assert by_check[("personal_data", "train")]["counts"] == {"email": 1}
    assert by_check[("personal_data", "train")]["lines"] == [3]
    pairs = by_check[("near_duplicates", "test")]["pairs"]
    assert [(p["train_line"], p["line"]) for p in pairs] == [(i, i) for i in range(1, 11) if i in train_lines]
    assert all(p["similarity"] == 1.0 and p["identical"] for p in pairs)
    assert all(c["severity"] == "warning" and c["message"] for c in stored)
    assert "jane.doe@example.com" not in json.dumps(stored)


def test_sweep_strict_refuses_warnings_with_the_tokenizer_checks(tiny_experiment: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _with_pii_leak_and_a_long_answer(tiny_experiment)
    """On tiny-random-llama, so the tokenizer's truncation check runs too (one sweep: importing transformers is
    the cost)."""
    db = tiny_experiment.parent / "r.duckdb"
    assert main(["sweep", str(tiny_experiment), "--db", str(db), "--strict"]) == 2
    err = capsys.readouterr().err
    for what in ("1 of 12 examples (8.3%) are longer than max_seq_length 96", "12 training examples",
                 "personal data", "near-duplicates of training examples", "1 answer far longer"):
        assert what in err
    assert err.count("an error under --strict") == 6 and not db.exists()


def test_spec_near_duplicate_threshold_is_validated(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_experiment.write_text(tiny_experiment.read_text().replace(
        "  test: test.jsonl\n", "  test: test.jsonl\n  near_duplicate_threshold: 0\n"))
    assert main(["sweep", str(tiny_experiment), "--dry-run"]) == 2
    assert "near_duplicate_threshold" in capsys.readouterr().err


def test_item16_leakage_row_counts_near_duplicates_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The leakage row of `harness data check` says exact copies and near-duplicates, so it never reads "none"
    above a near-duplicate warning about the same file (issue 23, item 16)."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", make_rows(120))
    near = dict(make_rows(1, offset=3)[0])  # ticket 3 with another id in the answer: similarity 0.8 to train line 4
    near["messages"] = [*near["messages"][:2], {"role": "assistant", "content": '{"category": "login", "id": 9}'}]
    write_jsonl(tmp_path / "test.jsonl", [*make_rows(5, offset=500), near])
    write_jsonl(tmp_path / "copied.jsonl", [*make_rows(5, offset=500), make_rows(120)[7]])
    write_jsonl(tmp_path / "clean.jsonl", make_rows(5, offset=500))
    base = ["data", "check", "--model", "none", "train.jsonl", "--against"]
    assert main([*base, "test.jsonl", "copied.jsonl", "clean.jsonl"]) == 1
    out = capsys.readouterr().out
    assert "near-duplicates of training examples in train.jsonl: 1 example in test.jsonl" in out
    rows = {m.group(1): m.group(2).strip() for m in re.finditer(r"│ leakage vs (\S+)\s+│ (.+?)│", out)}
    assert rows == {"test.jsonl": "exact copies: none; near-duplicates: 1 example (below)",
                    "copied.jsonl": "exact copies: 1 (line 8 = line 6); near-duplicates: 1 example (below, the "
                                    "exact copies among them)",
                    "clean.jsonl": "exact copies: none; near-duplicates: none at Jaccard similarity >= 0.8 or "
                                   "sharing a run of 13 words"}, out
    assert "near-duplicates vs" not in out  # one row per file
