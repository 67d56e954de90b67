"""instructions scorer: every checker on a passing and a failing output, strict vs loose, hand-computed prompt and
instruction level numbers on a scripted model, the seeded sample, the committed suite, and forgetting against base."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, flat_fn, result_frames, write_jsonl
from fakes import ScriptedModel

from harness import stats
from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.results import VariantResult, VariantRow
from harness.scorers import ScoreContext, check_suites, make_scorer
from harness.scorers import instruction_checks as checks
from harness.scorers.instructions import load_items
from harness.scorers.run import score_suites
from harness.spec.plan import Variant
from harness.store.db import Store, stored_variant
from harness.store.reads import variant_rows
from harness.verdicts import findings

# id, kwargs, an output that follows the instruction, one that does not (and why, in a comment where not obvious)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("keywords:existence", {"keywords": ["harbor", "fog"]}, "Fog rolled over the Harbor.", "Fog rolled in."),
    ("keywords:frequency", {"keyword": "bread", "frequency": 2, "relation": "at least"},
     "Bread, and more bread.", "Just bread."),
    ("keywords:frequency", {"keyword": "very", "frequency": 2, "relation": "less than"},
     "A very good day.", "A very very good day."),
    ("keywords:forbidden_words", {"forbidden_words": ["very", "really"]},
     "It is every bit as good.", "It is Very good."),  # 'every' is not the word 'very'
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
     "A lazy day.", "Zig and zag."),  # 'Z' and 'z': 2, not fewer than 2
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"},
     "One two three four.", "One two three four five."),
    ("length_constraints:number_words", {"num_words": 3, "relation": "at least"}, "a b c", "a b"),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "Dr. Smith paid 3.50 dollars. He left.", "One. Two! Three?"),
    ("length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     "It rained. We stayed in.", "It rained all day"),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "First part.\n***\nSecond part.", "First part.\n***\n\n***\nSecond part."),  # an empty paragraph between
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
     "We walked.\n\nThen, we rested.", "We walked.\n\nAfter that we rested."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], see you at [place].", "Dear [name], see you soon."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "See you.\np.s. Bring snacks.",
     "See you. Bring snacks."),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, "Hi.\nP.P.S. One more thing.",
     "Hi.\nP.S. One more thing."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3}, "* one\n* two\n- three",
     "* one\n* two\n**bold** is no bullet"),
    ("detectable_format:constrained_response", {}, "My answer is maybe.", "Maybe."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "A *calm* and **quiet** sea.",
     "A *calm* sea with ** nothing."),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nTea.\nSection 2\nMilk.", "Section 1\nTea and milk."),
    ("detectable_format:json_format", {}, '```json\n{"tip": "buy in season"}\n```', 'Here: {"tip": 1}'),
    ("detectable_format:title", {}, "<<Morning>>\nThe sun rose.", "<< >> The sun rose."),
    ("combination:two_responses", {}, "Red.\n******\nBlue.", "Red.\n******\nRed."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Name a fruit."}, "name a fruit. Apple.",
     "Sure! Name a fruit. Apple."),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, '"That is it. Any other questions?"',
     "Any other questions? Bye."),
    ("startend:start_checker", {"start_phrase": "In short,"}, "in short, yes.", "Well, in short, yes."),
    ("startend:quotation", {}, '"Hello there."', 'Hello "there".'),
    ("change_case:english_lowercase", {}, "all quiet here.", "All quiet here."),
    ("change_case:english_capital", {}, "ALL QUIET HERE.", "ALL QUIET hERE."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "It was VERY, VERY loud.", "It was VERY loud."),
    ("punctuation:no_comma", {}, "No commas here.", "Yes, one."),
    ("punctuation:forbidden_characters", {"characters": "!;"}, "A calm day.", "A calm day!"),
]


def test_every_checker_is_tested() -> None:
    assert {c[0] for c in CASES} == set(checks.CHECKS)


@pytest.mark.parametrize(("iid", "kwargs", "good", "bad"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker_on_a_passing_and_a_failing_output(iid: str, kwargs: dict, good: str, bad: str) -> None:
    ins = {"id": iid, "kwargs": kwargs}
    assert checks.problems(ins) == []
    ok, found = checks.follows(ins, good)
    assert ok, found
    ok, found = checks.follows(ins, bad)
    assert not ok and found


def test_what_the_checks_found_is_said() -> None:
    words = {"id": "length_constraints:number_words", "kwargs": {"num_words": 5, "relation": "less than"}}
    assert checks.follows(words, "One two three four five.") == (False, "5 words (needs less than 5)")
    assert checks.follows({"id": "punctuation:no_comma", "kwargs": {}}, "") == (False, "empty output")  # as IFEval
    assert checks.follows({"id": "keywords:existence", "kwargs": {"keywords": ["fog", "tide"]}}, "Fog.") == \
        (False, "missing 'tide'")
    assert checks.split_sentences("Mr. Lee paid $3.50 at St. Mary's. Was it e.g. cheap? Yes!\nNo") == \
        ["Mr. Lee paid $3.50 at St. Mary's.", "Was it e.g. cheap?", "Yes!", "No"]
    assert checks.count_words("Don't stop: 3.5 km-long!") == 7  # \w+ runs, as IFEval's RegexpTokenizer


CAPITALS = [("U.S.A.", 1), ("NASA's", 1), ("DON'T", 2), ("STATE-OF-THE-ART", 1), ('"HELLO," she said', 1),
            ("It is 9AM and A1 is OK", 3), ("", 0)]  # the regex before: 3, 0, 1 for the first three


@pytest.mark.parametrize(("text", "n"), CAPITALS, ids=[t or "empty" for t, _ in CAPITALS])
def test_item18_all_capital_words_are_counted_as_ifeval_counts_them(text: str, n: int) -> None:
    """capital_word_frequency counts str.isupper() of nltk's word tokens, as IFEval does (issue 23, item 18):
    the same count as nltk.word_tokenize on one sentence (preserve_line skips punkt, the download)."""
    from nltk import word_tokenize

    assert sum(w.isupper() for w in word_tokenize(text, preserve_line=True)) == n
    ins = {"id": "change_case:capital_word_frequency", "kwargs": {"capital_frequency": n + 1,
                                                                  "capital_relation": "less than"}}
    assert checks.follows(ins, text) == ((True, f"{n} all-capital words (needs less than {n + 1})") if text else
                                         (False, "empty output"))


def test_item18_capital_words_across_sentences() -> None:
    text = "Mr. Lee works at NASA. He said DON'T PANIC! The U.S.A. won. OK?"
    assert [w for w in checks.word_tokens(text) if w.isupper()] == ["NASA", "DO", "N'T", "PANIC", "U.S.A", "OK"]


def test_loose_variants_are_ifevals_eight() -> None:
    assert checks.loose_variants("Sure:\n**a** b\nBye") == [
        "Sure:\n**a** b\nBye", "**a** b\nBye", "Sure:\n**a** b", "**a** b",
        "Sure:\na b\nBye", "a b\nBye", "Sure:\na b", "a b"]


def test_bad_instructions_are_named_with_the_fix() -> None:
    assert "Did you mean 'punctuation:no_comma'?" in checks.problems({"id": "punctuation:no_commas"})[0]
    assert "langdetect" in checks.problems({"id": "language:response_language", "kwargs": {"language": "en"}})[0]
    found = checks.problems({"id": "length_constraints:number_words", "kwargs": {"num_words": "40", "relaton": "x"}})
    assert any("unknown kwarg 'relaton'. Did you mean 'relation'?" in p for p in found)
    assert any("missing kwarg 'relation'; e.g. {\"id\": \"length_constraints:number_words\"" in p for p in found)
    assert any("kwarg 'num_words' must be a whole number >= 1, got '40'" in p for p in found)
    assert "past num_paragraphs 2" in checks.problems({"id": "length_constraints:nth_paragraph_first_word", "kwargs": {
        "num_paragraphs": 2, "nth_paragraph": 3, "first_word": "so"}})[0]
    # IFEval's rows carry every kwarg name with null for the unused ones: those are dropped, as its loader does
    assert checks.problems({"id": "punctuation:no_comma", "kwargs": {"num_words": None, "keywords": None}}) == []


# -- the scorer on a scripted model ------------------------------------------------------------------------------
def make_suite(folder: Path, rows: list[dict], **options: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml.safe_dump({"name": folder.name, "version": 1, "kind": "instructions",
                                                       "items": "items.jsonl", "options": options}))
    write_jsonl(folder / "items.jsonl", rows)
    return folder


def row(i: str, prompt: str, *instrs: tuple[str, dict]) -> dict:
    return {"id": i, "messages": [{"role": "user", "content": prompt}],
            "instructions": [{"id": a, "kwargs": k} for a, k in instrs]}


def run(suite_dir: Path, model: ScriptedModel, **options: Any):
    suite = load_suite(suite_dir, options)
    fn, _ = make_scorer(suite.kind, suite.options)
    return flat_fn(fn, ScoreContext(model=model, suite=suite, variant=Variant("v", "v", "lora"), test=[], train_log=[]))


FIVE = [
    row("a", "A", ("length_constraints:number_words", {"num_words": 10, "relation": "less than"}),
        ("change_case:english_lowercase", {})),
    row("b", "B", ("punctuation:no_comma", {}), ("startend:end_checker", {"end_phrase": "Bye."})),
    row("c", "C", ("change_case:english_lowercase", {}), ("keywords:existence", {"keywords": ["harbor"]})),
    row("d", "D", ("startend:quotation", {}), ("detectable_format:title", {})),
    row("e", "E", ("detectable_format:json_format", {})),
]
OUTPUTS = {
    "A": "a short calm answer.",  # both followed
    "B": "Hi, there. Bye.",  # a comma: strict and loose fail it; the end is right
    "C": "Sure! Here is my answer:\nthe harbor is quiet at dawn.",  # lowercase only once the first line is removed
    "D": '**"<<Dawn>> a quiet harbor"**',  # quoted only once the asterisks are removed; the title is there
    "E": "",  # empty: follows nothing
}


def test_strict_and_loose_numbers_by_hand(tmp_path: Path) -> None:
    model = ScriptedModel(OUTPUTS)
    out = run(make_suite(tmp_path / "ins", FIVE), model)
    assert model.generate_calls == [5]  # one batched call
    m = {r["metric"]: r for r in out.scores}
    # prompt level: strict a; loose a, c, d
    assert m["prompt_strict"]["value"] == pytest.approx(1 / 5) and m["prompt_strict"]["n"] == 5
    assert (m["prompt_strict"]["ci_low"], m["prompt_strict"]["ci_high"]) == pytest.approx(stats.wilson_ci(1, 5)[1:])
    assert m["prompt_loose"]["value"] == pytest.approx(3 / 5)
    # instruction level, the share per prompt: strict 1, 1/2, 1/2, 1/2, 0; loose 1, 1/2, 1, 1, 0
    assert m["instruction_strict"]["value"] == pytest.approx(2.5 / 5)
    assert (m["instruction_strict"]["ci_low"], m["instruction_strict"]["ci_high"]) == \
        pytest.approx(stats.mean_ci([1, 0.5, 0.5, 0.5, 0])[1:])
    assert m["instruction_loose"]["value"] == pytest.approx(3.5 / 5)
    per_type = {k.split(":", 1)[1]: (r["value"], r["n"]) for k, r in m.items() if k.startswith("instruction_strict:")}
    assert per_type == {"length_constraints:number_words": (1.0, 1), "change_case:english_lowercase": (0.5, 2),
                        "punctuation:no_comma": (0.0, 1), "startend:end_checker": (1.0, 1),
                        "keywords:existence": (1.0, 1), "startend:quotation": (0.0, 1),
                        "detectable_format:title": (1.0, 1), "detectable_format:json_format": (0.0, 1)}
    ex = {e["example_id"]: e for e in out.examples}
    assert [ex[k]["passed"] for k in "abcde"] == [True, False, False, False, False]
    c = ex["c"]["detail"]
    assert (c["prompt_strict"], c["prompt_loose"], c["instruction_strict"], c["instruction_loose"]) == (0, 1, 0.5, 1)
    assert c["instruction_strict:change_case:english_lowercase"] == 0.0
    lower = c["instructions"][0]
    assert (lower["strict"], lower["loose"], lower["loose_by"]) == (False, True, "first line removed")
    assert lower["found"].startswith("capitals in 'Sure'")
    assert ex["d"]["detail"]["instructions"][0]["loose_by"] == "as is, asterisks removed"
    assert ex["b"]["detail"]["instructions"][0] == {"id": "punctuation:no_comma", "kwargs": {}, "strict": False,
                                                    "loose": False, "found": "1 commas"}
    assert ex["a"]["reference"] == "length_constraints:number_words; change_case:english_lowercase"


def test_sample_is_seeded_stable_and_in_suite_order(tmp_path: Path) -> None:
    rows = [row(f"i{k:02d}", f"P{k}", ("punctuation:no_comma", {})) for k in range(20)]
    suite = make_suite(tmp_path / "ins", rows)
    model = ScriptedModel(lambda p: "fine")

    def ids(**options: Any) -> list[str]:
        return [e["example_id"] for e in run(suite, model, **options).examples]

    first = ids(sample=5, seed=3)
    assert first == ids(sample=5, seed=3) == sorted(first) and len(set(first)) == 5
    assert first != ids(sample=5, seed=4)
    assert model.generate_calls[:2] == [5, 5]
    assert ids(sample=50) == ids() == [r["id"] for r in rows]  # more than there are: all of them
    with pytest.raises(HarnessInputError, match="option 'sample': a whole number >= 1"):
        run(suite, model, sample=0)


def test_bad_items_stop_the_sweep_with_file_line_and_fix(tmp_path: Path) -> None:
    rows = [row("ok", "Fine.", ("punctuation:no_comma", {})),
            row("typo", "Typo.", ("punctuation:no_commas", {})),
            row("kw", "Kw.", ("length_constraints:number_words", {"num_words": 0, "relation": "less than"})),
            {"id": "none", "messages": [{"role": "user", "content": "No instructions."}]},
            row("twice", "Twice.", ("punctuation:no_comma", {}), ("punctuation:no_comma", {}))]
    folder = make_suite(tmp_path / "bad", rows)
    items = folder / "items.jsonl"
    items.write_text(items.read_text().replace("\n", "\n\n", 1))  # a blank line: the file's lines, not item numbers
    with pytest.raises(HarnessInputError) as exc:
        check_suites([load_suite(folder)])  # what the sweep runs before any training
    text = str(exc.value)
    assert f"{items}:3: item 'typo': instructions[0]: unknown instruction id 'punctuation:no_commas'. Did you mean " \
           "'punctuation:no_comma'?" in text
    assert f"{items}:4: item 'kw': instructions[0]: length_constraints:number_words: kwarg 'num_words' must be a " \
           "whole number >= 1, got 0; e.g. {" in text
    assert f"{items}:5: item 'none': needs \"instructions\"" in text
    assert f"{items}:6: item 'twice': instruction id(s) punctuation:no_comma given twice" in text


# -- the committed suite -------------------------------------------------------------------------------------------
SUITE = REPO / "suites" / "instructions"


def test_the_committed_suite_validates_and_spreads_its_types() -> None:
    suite = load_suite(SUITE)
    assert (suite.kind, suite.version) == ("instructions", "1")
    check_suites([suite])
    items = load_items(suite)
    assert 95 <= len(items) <= 110
    counts: dict[str, int] = {}
    for it in items:
        assert 1 <= len(it.raw["instructions"]) <= 3, it.item_id
        for ins in it.raw["instructions"]:
            assert checks.problems(ins) == [], (it.item_id, ins)
            counts[ins["id"]] = counts.get(ins["id"], 0) + 1
    assert set(counts) == set(checks.CHECKS)
    assert min(counts.values()) >= 5 and max(counts.values()) <= 2.5 * min(counts.values()), counts


def test_the_committed_items_are_what_build_items_writes() -> None:
    spec = importlib.util.spec_from_file_location("build_items", SUITE / "build_items.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rows = [build.item(i, task, instrs) for i, (task, instrs) in enumerate(build.ITEMS, start=1)]
    assert rows == [json.loads(x) for x in (SUITE / "items.jsonl").read_text(encoding="utf-8").splitlines()]


def test_the_committed_suite_scores_on_scripted_answers() -> None:
    out = run(SUITE, ScriptedModel(lambda p: "Sure, here it is."), sample=10)
    m = {r["metric"]: r["value"] for r in out.scores}
    assert len(out.examples) == 10 and 0.0 <= m["prompt_strict"] <= m["prompt_loose"] <= 1.0


# -- forgetting: instruction following paired against base ---------------------------------------------------------
N = 60


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> list[Suite]:
    root = tmp_path_factory.mktemp("suites")
    ins = make_suite(root / "ins", [row(f"i{k:02d}", f"Prompt {k}.", ("punctuation:no_comma", {}),
                                        ("change_case:english_lowercase", {})) for k in range(N)])
    gen = root / "gen"
    gen.mkdir()
    (gen / "suite.yaml").write_text(yaml.safe_dump({"name": "general", "version": 1, "kind": "general",
                                                    "items": "items.jsonl"}))
    write_jsonl(gen / "items.jsonl", [{"id": f"g{k}", "context": f"Q {k} ?", "choices": [" no", " yes"], "gold": 1}
                                      for k in range(20)])
    return [load_suite(ins), load_suite(gen)]


def follower(breaks: set[int]) -> ScriptedModel:
    """Follows both instructions except on prompts in `breaks`, where it uses a comma; knows every general item."""
    return ScriptedModel(lambda p: "yes, it is." if int(p.split()[1].rstrip(".")) in breaks else "yes it is.",
                         logliks=lambda c, x: -1.0 if x == " yes" else -2.0)


def scored(model: ScriptedModel, suites: list[Suite], name: str) -> VariantResult:
    results = score_suites(model, Variant(name, name, "lora"), suites, [], [], Quiet())
    return VariantResult(VariantRow(name, name=name, method="lora", status="finished"), [], results)


def base_frames(result: VariantResult, tmp_path: Path) -> dict:
    with Store(tmp_path / "r.duckdb") as s:
        s.write_variant(result)
        return variant_rows(s, result.variant_id)


def test_forgetting_fires_when_a_variant_follows_fewer_instructions(suites: list[Suite], tmp_path: Path) -> None:
    base = base_frames(scored(follower({0, 1}), suites, "base"), tmp_path)
    worse = scored(follower(set(range(0, N, 2)) | {1}), suites, "lora-r8")  # breaks 31 prompts, base's 2 among them
    out = findings.derive(stored_variant(worse.variant), result_frames(worse), base, {})
    assert [f["check"] for f in out] == ["forgetting"]
    f = out[0]
    assert f["message"].startswith("lora-r8 forgot instruction following on ins: prompt-level strict accuracy "
                                   "0.97 -> 0.48 (paired difference -0.48, 95% CI [")
    assert "most broken: punctuation:no_comma (29 of 29 lost prompts)" in f["message"]
    ev = f["evidence"]
    assert ev["suite"] == "ins" and ev["metric"] == "prompt_strict" and ev["n"] == N and ev["paired"]
    assert ev["lost_examples"] == [f"i{k:02d}" for k in range(2, N, 2)]
    assert ev["family"] == 2  # corrected together with the general suite's comparison
    assert ev["mcnemar_p"] < 1e-6 and ev["p_adjusted"] >= ev["p_value"]
    assert findings.derive(stored_variant(worse.variant), result_frames(worse), base, {"forgetting": {"margin": 0.6}}) == []
    assert findings.derive(stored_variant(worse.variant), result_frames(worse), base, {"forgetting": False}) == []


def test_no_forgetting_when_a_variant_follows_as_many(suites: list[Suite], tmp_path: Path) -> None:
    base = base_frames(scored(follower({0, 1, 2}), suites, "base"), tmp_path)
    same = scored(follower({0, 1, 2}), suites, "lora-r8")
    swapped = scored(follower({3, 4, 5}), suites, "lora-r16")  # as many, on other prompts: paired, not significant
    assert findings.derive(stored_variant(same.variant), result_frames(same), base, {}) == []
    assert findings.derive(stored_variant(swapped.variant), result_frames(swapped), base, {}) == []
