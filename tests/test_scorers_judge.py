"""The rubric judge: structured output against the fake OpenAI server, malformed judgments as errors, pairwise in both
orders, the cache, the key in no file, local judges, self-judging refused, the safety judge, calibration."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, flat_fn, make_rows, write_jsonl
from fake_openai import FakeOpenAI
from fakes import ScriptedModel
from openai_helpers import CANARY, log_progress, table

from harness import stats
from harness.data.chat import Example
from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.models import judge_model as judge_models
from harness.models.resolve import cache_dir
from harness.scorers import ScoreContext, make_scorer, metric_info, primary_metric
from harness.scorers.judgments import DEFAULT_RUBRIC, Criterion, parse_rubric, rubric_schema
from harness.scorers.rubric_judge import outcome
from harness.spec.plan import Variant
from harness.store.db import Store
from harness.sweep.runner import run_sweep
from harness.verdicts import calibration

JUDGE = "gpt-judge-2025"
BASE = "gpt-4o-mini-2024-07-18"
GOOD, BAD = "Your order ships Monday.", "Your order was eaten by a dragon."


def examples(n: int = 4) -> list[Example]:
    return [Example([{"role": "user", "content": f"When does order {i} ship?"},
                     {"role": "assistant", "content": "Monday."}], "test.jsonl", i + 1) for i in range(n)]


def graded(score: int, hallucination: str, why: str = "because") -> dict[str, Any]:
    doc: dict[str, Any] = {c: {"score": score, "rationale": f"{c}: {why}"} for c in ("accuracy", "format", "tone",
                                                                                   "completeness")}
    doc["hallucination"] = {"score": hallucination, "rationale": "invented details" if hallucination == "yes" else "ok"}
    return doc


def response(messages: list[dict[str, str]], tag: str = "response") -> str:
    text = messages[-1]["content"]
    return text.split(f"<{tag}>\n", 1)[1].split(f"\n</{tag}>", 1)[0]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HARNESS_CACHE_DIR in tmp_path (the judge cache lands there), with the real cache's tokenizer linked in."""
    real, folder = cache_dir(), tmp_path / "cache"
    folder.mkdir()
    for name in ("smollm2-135m-instruct-tokenizer",):
        if (real / name / "tokenizer_config.json").is_file():
            (folder / name).symlink_to(real / name, target_is_directory=True)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def server(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(base_models=(BASE, JUDGE)) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", CANARY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
        fake.api_key = CANARY  # the key really is sent (and checked) ...
        yield fake


def judge_suite(**options: Any) -> Suite:
    return Suite("judge", "1", "judge", "", Path("."), {"judge": f"openai:{JUDGE}", **options})


def score(suite: Suite, outputs: dict[str, str] | Any, *, variant: Variant | None = None, test: list[Example] | None = None,
          base_outputs: dict[str, str] | None = None, open_judge: Any = judge_models.open_judge) -> Any:
    fn, _ = make_scorer(suite.kind, suite.options)
    return flat_fn(fn, ScoreContext(model=ScriptedModel(outputs), suite=suite, variant=variant or Variant("v1", "lora-r4", "lora"),
                           test=test or examples(), train_log=[], open_judge=open_judge, base_outputs=base_outputs))


def chats(fake: FakeOpenAI) -> list[Any]:
    return fake.requests("POST", "/v1/chat/completions")


def by_metric(out: Any) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in out.scores}


# -- pointwise ---------------------------------------------------------------------------------------------------------

@pytest.mark.api
def test_structured_output_is_requested_parsed_and_scored(server: FakeOpenAI) -> None:
    server.judge = lambda model, msgs, schema: graded(5, "no") if response(msgs) == GOOD else graded(2, "yes")
    outs = {"When does order 0 ship?": GOOD, "When does order 1 ship?": BAD, "When does order 2 ship?": GOOD,
            "When does order 3 ship?": GOOD}
    out = score(judge_suite(), outs)

    sent = chats(server)
    assert len(sent) == 4 and all(s.status == 200 and s.bearer == CANARY for s in sent)
    body = sent[0].body
    assert body["model"] == JUDGE and body["temperature"] == 0 and body["max_completion_tokens"] == 512
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == rubric_schema(parse_rubric(None))
    assert fmt["json_schema"]["schema"]["properties"]["accuracy"]["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert "Monday." in body["messages"][-1]["content"]  # the reference is shown

    rows = by_metric(out)
    acc = rows["judge:accuracy"]
    assert (acc["value"], acc["n"]) == (pytest.approx((5 + 2 + 5 + 5) / 4), 4)
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx(stats.mean_ci([5, 2, 5, 5])[1:])
    hall = rows["judge:hallucination"]
    assert (hall["value"], hall["ci_low"], hall["ci_high"], hall["n"]) == pytest.approx((*stats.wilson_ci(1, 4), 4))
    assert rows["judge_errors"]["value"] == 0 and rows["judge_errors"]["n"] == 4
    assert acc["scorer_args"]["judge_identity"] == f"openai:{JUDGE}" and len(acc["scorer_args"]["rubric_version"]) == 12
    bad = out.examples[1]["detail"]
    assert bad["judge:accuracy"] == 2.0 and bad["judge:hallucination"] == 1.0
    assert bad["judgment"]["hallucination"] == {"score": "yes", "rationale": "invented details"}
    assert [e["passed"] for e in out.examples] == [True, False, True, True]
    assert metric_info("judge", "judge:hallucination").higher_is_better is False
    assert metric_info("judge", "judge:tone").per_example and metric_info("judge", "judge_win_rate").per_example
    assert primary_metric("judge", rows) == "judge:accuracy"


@pytest.mark.api
def test_a_malformed_judgment_is_an_error_never_a_default_score(server: FakeOpenAI) -> None:
    replies = {0: graded(4, "no"), 1: "The response looks fine, I'd say 4/5.", 2: {**graded(4, "no"),
               "accuracy": {"score": 9, "rationale": "x"}}, 3: {k: v for k, v in graded(3, "no").items() if k != "tone"}}
    server.judge = lambda model, msgs, schema: replies[int(msgs[-1]["content"].split("order ")[1].split(" ")[0])]
    out = score(judge_suite(), lambda prompt: GOOD)

    details = [e["detail"] for e in out.examples]
    assert "judge_error" not in details[0] and details[0]["judge:accuracy"] == 4.0
    assert details[1]["judge_error"].startswith("not JSON") and details[1]["judge_reply"].startswith("The response")
    assert "accuracy.score" in details[2]["judge_error"] and "9 is not one of" in details[2]["judge_error"]
    assert "'tone' is a required property" in details[3]["judge_error"]
    for d, e in zip(details[1:], out.examples[1:], strict=True):
        assert e["passed"] is None and not any(k.startswith("judge:") for k in d)
    rows = by_metric(out)
    assert rows["judge_errors"]["value"] == 3
    assert (rows["judge:accuracy"]["value"], rows["judge:accuracy"]["n"]) == (4.0, 1)  # only the valid judgment


@pytest.mark.api
def test_a_server_without_structured_output_fails_the_suite_loudly(server: FakeOpenAI) -> None:
    server.structured_output = False
    with pytest.raises(RuntimeError, match="response_format"):
        score(judge_suite(), lambda prompt: GOOD)


# -- pairwise ----------------------------------------------------------------------------------------------------------

def test_outcome_counts_a_preference_only_when_both_orders_agree() -> None:
    assert outcome("A", "B") == "win" and outcome("B", "A") == "loss" and outcome("tie", "tie") == "tie"
    assert outcome("A", "A") == "inconsistent" and outcome("B", "B") == "inconsistent"
    assert outcome("A", "tie") == "inconsistent" and outcome("tie", "B") == "inconsistent"


@pytest.mark.api
def test_pairwise_asks_both_orders_and_counts_only_agreement(server: FakeOpenAI) -> None:
    test = examples(5)
    variant = {f"When does order {i} ship?": f"variant answer {i}" for i in range(5)}
    variant["When does order 4 ship?"] = "same"
    base = {e.example_id: f"base answer {i}" for i, e in enumerate(test)}
    base[test[4].example_id] = "same"

    def judge(model: str, msgs: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, str]:
        a = response(msgs, "response_A")
        i = int(a.split()[-1])
        if i == 0:  # prefers the variant, whatever its position
            return {"winner": "A" if a.startswith("variant") else "B", "rationale": "more precise"}
        if i == 1:  # prefers whatever comes first: position bias
            return {"winner": "A", "rationale": "first is better"}
        if i == 2:  # prefers base
            return {"winner": "A" if a.startswith("base") else "B", "rationale": "base is right"}
        return {"winner": "tie", "rationale": "equal"}

    server.judge = judge
    out = score(judge_suite(pairwise_against="base"), variant, test=test, base_outputs=base)

    sent = chats(server)
    assert len(sent) == 8  # two orders for four pairs; identical outputs are not sent
    assert sent[0].body["response_format"]["json_schema"]["schema"]["properties"]["winner"]["enum"] == ["A", "B", "tie"]
    firsts = sorted((response(s.body["messages"], "response_A").split()[0], response(s.body["messages"], "response_A")
                     .split()[-1]) for s in sent)
    assert firsts == sorted([(w, str(i)) for i in range(4) for w in ("variant", "base")])  # each pair in both orders
    d = [e["detail"] for e in out.examples]
    assert [x["outcome"] for x in d] == ["win", "inconsistent", "loss", "tie", "tie"]
    assert [x["judge_win_rate"] for x in d] == [1.0, 0.5, 0.0, 0.5, 0.5]
    assert d[1]["variant_first"]["winner"] == "A" and d[1]["base_first"]["winner"] == "A"
    assert d[4]["reason"] == "identical outputs, not judged"
    assert [e["passed"] for e in out.examples] == [True, None, False, None, None]
    rows = by_metric(out)
    win = rows["judge_win_rate"]
    assert (win["value"], win["n"]) == (pytest.approx(0.5), 5)
    assert (win["ci_low"], win["ci_high"]) == pytest.approx(stats.mean_ci([1, 0.5, 0, 0.5, 0.5])[1:])
    assert win["scorer_args"]["outcomes"] == {"win": 1, "loss": 1, "tie": 2, "inconsistent": 1}
    assert rows["judge_inconsistent_rate"]["value"] == pytest.approx(stats.wilson_ci(1, 5)[0])
    assert rows["judge_tie_rate"]["ci_high"] == pytest.approx(stats.wilson_ci(2, 5)[2])
    assert rows["judge_errors"]["value"] == 0


@pytest.mark.api
def test_pairwise_base_keeps_its_outputs_and_a_missing_reference_is_loud(server: FakeOpenAI) -> None:
    out = score(judge_suite(pairwise_against="base"), lambda p: "x", variant=Variant("b0", "base", "base"))
    assert out.scores == [] and [e["output"] for e in out.examples] == ["x"] * 4 and chats(server) == []
    with pytest.raises(RuntimeError, match="base's outputs on this suite are not available"):
        score(judge_suite(pairwise_against="base"), lambda p: "x")


# -- cache and key -----------------------------------------------------------------------------------------------------

@pytest.mark.api
def test_the_cache_answers_a_second_scoring_without_any_call(server: FakeOpenAI, isolated_cache: Path) -> None:
    server.judge = lambda model, msgs, schema: graded(4, "no")
    first = score(judge_suite(), lambda p: GOOD + p)
    assert len(chats(server)) == 4 and not any(e["detail"]["cached"] for e in first.examples)
    second = score(judge_suite(), lambda p: GOOD + p)
    assert len(chats(server)) == 4  # no new request
    assert all(e["detail"]["cached"] for e in second.examples)
    assert [e["detail"] for e in second.examples] == [{**e["detail"], "cached": True} for e in first.examples]
    assert len(list((isolated_cache / "judge").rglob("*.json"))) == 4
    score(judge_suite(), lambda p: BAD + p)  # other outputs: other prompts
    assert len(chats(server)) == 8
    rubric = [c for c in DEFAULT_RUBRIC if c["name"] != "tone"]
    server.judge = lambda model, msgs, schema: {k: v for k, v in graded(4, "no").items() if k != "tone"}
    score(judge_suite(rubric=rubric), lambda p: GOOD + p)  # another rubric version
    assert len(chats(server)) == 12


@pytest.mark.api
def test_a_malformed_reply_is_cached_but_an_api_error_is_not(server: FakeOpenAI, isolated_cache: Path) -> None:
    server.judge = lambda model, msgs, schema: "nonsense"
    score(judge_suite(), lambda p: GOOD + p, test=examples(2))
    score(judge_suite(), lambda p: GOOD + p, test=examples(2))
    assert len(chats(server)) == 2  # the same greedy reply is not bought twice; it stays an error when re-read
    fake_inner = _Failing()
    cached = judge_models.CachedJudge(fake_inner, "x", "x", "x", isolated_cache / "j2")
    schema = {"type": "object"}
    assert cached.complete([[{"role": "user", "content": "q"}]], schema, 8, "v")[0].error == "refused"
    cached.complete([[{"role": "user", "content": "q"}]], schema, 8, "v")
    assert fake_inner.calls == 2 and not (isolated_cache / "j2").exists()


class _Failing:
    calls = 0

    def complete(self, conversations: list[Any], schema: dict[str, Any], max_tokens: int) -> list[Any]:
        from harness.models.protocol import Reply

        self.calls += len(conversations)
        return [Reply(None, "refused") for _ in conversations]


SWEEP = """\
name: judged
model: {model}
data:
  test: test.jsonl
sweep:
  method: [{method}]
  checkpoint: ["openai:{tuned}"]
prompt: {{system: "Answer in one short sentence."}}
suites:
  - name: heldout
    options: {{max_new_tokens: 6, loss: false}}
  - name: judge
    options: {{judge: "openai:{judge}", judge_max_tokens: 64}}
  - path: pairwise
"""
TUNED = f"ft:{BASE}:acme::tuned1"


def write_sweep(folder: Path, *, model: str = f"openai:{BASE}", method: str = "given", judge: str = JUDGE
                ) -> tuple[Path, dict[str, str]]:
    """An experiment judged pointwise (suite judge) and pairwise against base (suite judge-pairwise); returns the
    spec and the test set's references by prompt."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = make_rows(10, offset=100)
    write_jsonl(folder / "test.jsonl", rows)
    (folder / "pairwise").mkdir(exist_ok=True)
    (folder / "pairwise" / "suite.yaml").write_text(yaml.safe_dump({
        "name": "judge-pairwise", "version": 1, "kind": "judge",
        "options": {"judge": f"openai:{judge}", "pairwise_against": "base", "judge_max_tokens": 64}}))
    (folder / "spec.yaml").write_text(SWEEP.format(model=model, method=method, tuned=TUNED, judge=judge),
                                      encoding="utf-8")
    return folder / "spec.yaml", {r["messages"][-2]["content"]: r["messages"][-1]["content"] for r in rows}


def judged(fake: FakeOpenAI) -> list[Any]:
    return [s for s in chats(fake) if (s.body or {}).get("response_format")]


def scores_of(db: Path) -> dict[tuple[str, str, str], tuple[float, int]]:
    s = table(db, """SELECT v.name, s.suite, s.metric, s.value, s.n FROM scores s JOIN variants v USING (variant_id)
                     WHERE s.suite LIKE 'judge%'""")
    return {(r.name, r.suite, r.metric): (r.value, r.n) for r in s.itertuples()}


@pytest.mark.api
def test_an_api_sweep_is_judged_pairwise_against_base_cached_and_keeps_the_key_out_of_every_file(
        server: FakeOpenAI, tmp_path: Path, isolated_cache: Path) -> None:
    spec, refs = write_sweep(tmp_path / "exp")
    server.base_models = (BASE, JUDGE, TUNED)
    server.answer = lambda model, msgs: refs[msgs[-1]["content"]] if model == TUNED else "I don't know."

    def judge(model: str, msgs: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        if "winner" in schema["properties"]:  # prefers the answer over the shrug, in either position
            a = response(msgs, "response_A")
            return {"winner": "B" if a == "I don't know." else "A", "rationale": f"answers; my key is {CANARY}"}
        return graded(1 if response(msgs) == "I don't know." else 5, "no", why=f"key {CANARY}")  # a leaky judge

    server.judge = judge
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])

    assert set(table(db, "SELECT status FROM variants")["status"]) == {"finished"}
    got = scores_of(db)
    tuned = f"given-{TUNED}"
    assert got[("base", "judge", "judge:accuracy")] == (1.0, 10) and got[(tuned, "judge", "judge:accuracy")] == (5.0, 10)
    assert got[(tuned, "judge-pairwise", "judge_win_rate")] == (1.0, 10)  # both orders agree on every item
    assert got[(tuned, "judge-pairwise", "judge_inconsistent_rate")] == (0.0, 10)
    assert not any(k[0] == "base" and k[1] == "judge-pairwise" for k in got)  # base is the reference, not scored
    sent = judged(server)
    assert len(sent) == 10 + 10 + 2 * 10 and {s.bearer for s in sent} == {CANARY}

    # scoring the same outputs again (a new store, so nothing is reused) costs no judge call
    run_sweep(spec, tmp_path / "again.duckdb", progress=log_progress()[0])
    assert len(judged(server)) == 40 and scores_of(tmp_path / "again.duckdb") == got

    # the echoed key reached the harness and was masked before anything was written
    assert table(db, "SELECT count(*) AS n FROM examples WHERE CAST(detail AS VARCHAR) LIKE '%sk-***%'")["n"][0] > 0
    with Store(db, read_only=True) as store:
        cols = store.query("SELECT table_name, column_name FROM information_schema.columns")
        for t, c in cols.itertuples(index=False):
            n = store.query(f'SELECT count(*) AS n FROM "{t}" WHERE CAST("{c}" AS VARCHAR) LIKE ?', [f"%{CANARY}%"])
            assert int(n["n"][0]) == 0, f"{t}.{c}"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len([p for p in written if p.parent.parent.name == "judge"]) == 40  # the cache ...
    assert [str(p) for p in written if CANARY.encode() in p.read_bytes()] == []  # ... the store: no key anywhere


@pytest.mark.api
def test_a_local_sweep_hands_base_outputs_to_the_pairwise_judge(server: FakeOpenAI, tmp_path: Path) -> None:
    server.judge = lambda model, msgs, schema: ({"winner": "A", "rationale": "first"} if "winner" in schema["properties"]
                                                else graded(3, "no"))
    spec, _ = write_sweep(tmp_path / "exp", model="tiny-random-llama", method="prompt")
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])

    assert set(table(db, "SELECT status FROM variants")["status"]) == {"finished"}
    got = scores_of(db)
    assert got[("base", "judge", "judge:accuracy")] == (3.0, 10) and got[("prompt-0shot", "judge", "judge_errors")][0] == 0
    ex = table(db, """SELECT e.output, e.detail FROM examples e JOIN variants v USING (variant_id)
                      WHERE v.name = 'prompt-0shot' AND e.suite = 'judge-pairwise'""")
    details = [json.loads(d) for d in ex["detail"]]
    assert len(details) == 10 and all(d["base_output"] is not None for d in details)  # base's outputs reached it
    for d, out in zip(details, ex["output"], strict=True):  # a judge that always picks A never yields a preference
        assert d["outcome"] == ("tie" if d["base_output"] == out else "inconsistent")
    assert got[("prompt-0shot", "judge-pairwise", "judge_win_rate")] == (0.5, 10)


# -- local judges ------------------------------------------------------------------------------------------------------

def test_a_local_judge_gets_the_schema_in_its_prompt_and_is_validated(isolated_cache: Path) -> None:
    answers = iter([f"```json\n{json.dumps(graded(5, 'no'))}\n```", "{\"accuracy\": 5}", "Sure! Here you go."])
    scripted = ScriptedModel(lambda prompt: next(answers))
    ref = judge_models.resolve_judge("tiny-random-llama")
    judge = judge_models.CachedJudge(judge_models.LocalJudge(ref, load=lambda: scripted), "tiny-random-llama",
                                     ref.identity, ref.identity)
    out = score(judge_suite(judge="tiny-random-llama"), lambda p: GOOD, test=examples(3),
                open_judge=lambda name, base_url: judge)
    prompt = scripted.conversations[0][-1]["content"]
    assert "JSON Schema" in prompt and json.dumps(rubric_schema(parse_rubric(None))) in prompt
    d = [e["detail"] for e in out.examples]
    assert d[0]["judge:accuracy"] == 5.0 and d[0]["judgment"]["tone"]["score"] == 5
    assert "required property" in d[1]["judge_error"] and d[2]["judge_error"].startswith("not JSON")
    assert by_metric(out)["judge_errors"]["value"] == 2


def test_tiny_random_llama_as_judge_writes_garbage_that_is_never_scored(isolated_cache: Path) -> None:
    out = score(judge_suite(judge="tiny-random-llama", judge_max_tokens=12), lambda p: GOOD, test=examples(3))
    assert all(e["passed"] is None and "judge_error" in e["detail"] for e in out.examples)
    rows = by_metric(out)
    assert set(rows) == {"judge_errors"} and rows["judge_errors"]["value"] == 3


# -- the judge is none of the compared models ---------------------------------------------------------------------------

@pytest.mark.api
def test_a_judge_may_not_grade_its_own_outputs(server: FakeOpenAI) -> None:
    given = Variant("g1", f"given-{JUDGE}", "given", checkpoint=f"openai:{JUDGE}")
    with pytest.raises(HarnessInputError, match="option 'judge'.*model being scored"):
        score(judge_suite(), lambda p: GOOD, variant=given)
    assert chats(server) == []


@pytest.mark.api
def test_a_sweep_whose_judge_is_its_model_is_refused_before_anything_runs(server: FakeOpenAI, tmp_path: Path) -> None:
    spec, _ = write_sweep(tmp_path / "exp", judge=BASE)
    with pytest.raises(HarnessInputError) as err:
        run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])
    text = str(err.value)
    assert "suite 'judge' option 'judge'" in text and "suite 'judge-pairwise' option 'judge'" in text
    assert "the experiment's model" in text and server.seen == []
    spec, _ = write_sweep(tmp_path / "exp2", judge=TUNED)  # a given checkpoint is compared too
    with pytest.raises(HarnessInputError, match="is a given checkpoint"):
        run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])


@pytest.mark.parametrize(("options", "message"), [
    ({"judge": None}, "option 'judge': name the judge model"),
    ({"judge": "openai-compatible:llama"}, "needs the server's OpenAI-compatible root"),
    ({"base_url": "http://localhost:8000/v1"}, "applies to openai-compatible:<model> judges only"),
    ({"pairwise_against": "baes"}, "Did you mean 'base'"),
    ({"judge_max_tokens": 0}, "judge_max_tokens"),
    ({"rubric": ["tone", "politeness"]}, "'politeness' is not a default criterion"),
    ({"rubric": [{"name": "Accuracy"}, {"name": "tone", "scale": "5-1"}, {"name": "empathy", "weight": 2}]},
     "3 problems"),
])
def test_judge_options_are_checked_when_the_spec_is_read(options: dict[str, Any], message: str) -> None:
    """The rubric is checked by the review spec's rules (one home), every problem of its criteria at once."""
    with pytest.raises(HarnessInputError, match=message) as err:
        make_scorer("judge", {"judge": f"openai:{JUDGE}", **options})
    if "rubric" in options and len(options["rubric"]) == 3:  # type: ignore[arg-type]
        text = str(err.value)
        for part in ("rubric[0].name'", "rubric[1].scale'", "rubric[2].weight'"):
            assert part in text, text


def test_the_rubric_has_the_review_rubrics_shape() -> None:
    rubric = parse_rubric(["accuracy", {"name": "hallucination", "help": "Invented facts?"},
                           {"name": "empathy", "scale": "1-7"}, {"name": "policy", "scale": "yes/no"}])
    assert rubric == [Criterion("accuracy", (1, 5), True, DEFAULT_RUBRIC[0]["help"]),
                      Criterion("hallucination", None, False, "Invented facts?"),  # the rest inherited
                      Criterion("empathy", (1, 7), True, ""), Criterion("policy", None, True, "")]
    schema = rubric_schema(rubric)
    assert schema["properties"]["empathy"]["properties"]["score"]["enum"] == [1, 2, 3, 4, 5, 6, 7]
    assert schema["properties"]["policy"]["properties"]["score"]["enum"] == ["yes", "no"]
    assert [c.value(x) for c, x in zip(rubric, [4, "yes", 7, "no"], strict=True)] == [4.0, 1.0, 7.0, 0.0]
    # passing: the better quarter of a scale; the good answer of a yes/no (no hallucination, yes to the policy)
    assert [rubric[0].passes(x) for x in (3, 4)] == [False, True] and [rubric[2].passes(x) for x in (5, 6)] == [False, True]
    assert rubric[1].passes("no") and not rubric[1].passes("yes") and rubric[3].passes("yes")


def test_the_shipped_judge_suites_need_only_a_judge() -> None:
    for name, pairwise in (("judge", None), ("judge-pairwise", "base")):
        suite = load_suite(REPO / "suites" / name)
        assert suite.kind == "judge" and suite.options.get("pairwise_against") == pairwise
        with pytest.raises(HarnessInputError, match="option 'judge'"):
            make_scorer(suite.kind, suite.options)
        make_scorer(suite.kind, {**suite.options, "judge": f"openai:{JUDGE}"})


# -- safety: refusal as a judge sees it ---------------------------------------------------------------------------------

@pytest.mark.api
def test_the_safety_suite_detects_refusals_with_a_judge(server: FakeOpenAI, tmp_path: Path) -> None:
    d = tmp_path / "safe"
    d.mkdir()
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": "safe", "version": 1, "kind": "safety", "items": "i.jsonl"}))
    rows = [{"id": f"h{i}", "type": "harmful", "category": "fraud", "messages": [{"role": "user", "content": f"harm {i}"}]}
            for i in range(3)] + [{"id": "b0", "type": "benign", "category": "fraud",
                                   "messages": [{"role": "user", "content": "benign 0"}]}]
    write_jsonl(d / "i.jsonl", rows)
    outputs = {"harm 0": "No.", "harm 1": "Step one: ...", "harm 2": "???", "benign 0": "No."}
    verdicts = {"No.": {"refused": "yes", "rationale": "declines"}, "Step one: ...": {"refused": "no", "rationale": "helps"},
                "???": "maybe"}
    server.judge = lambda model, msgs, schema: verdicts[response(msgs)]
    suite = load_suite(d, {"detector": "judge", "judge": f"openai:{JUDGE}"})
    fn, _ = make_scorer(suite.kind, suite.options)
    out = flat_fn(fn, ScoreContext(model=ScriptedModel(outputs), suite=suite, variant=Variant("v", "v", "lora"), test=[],
                          train_log=[], open_judge=judge_models.open_judge))

    sent = chats(server)
    assert len(sent) == 4 and sent[0].body["response_format"]["json_schema"]["schema"]["properties"]["refused"][
        "enum"] == ["yes", "no"]
    ex = {e["example_id"]: e for e in out.examples}
    assert ex["h0"]["detail"]["verdict"] == "refused" and ex["h0"]["detail"]["reason"].endswith("declines")
    assert ex["h1"]["detail"]["verdict"] == "complied" and ex["b0"]["detail"]["verdict"] == "over-refused"
    assert ex["h2"]["passed"] is None and ex["h2"]["detail"]["verdict"] == "not judged"
    assert "refusal_rate" not in ex["h2"]["detail"] and ex["h2"]["detail"]["refused"] is None
    scores = by_metric(out)
    assert (scores["refusal_rate"]["value"], scores["refusal_rate"]["n"]) == (0.5, 2)  # h2 counts toward no rate
    assert scores["detector_errors"]["value"] == 1 and scores["over_refusal_rate"]["value"] == 1.0
    with pytest.raises(HarnessInputError, match="not read by detector 'patterns'"):
        make_scorer("safety", {"judge": f"openai:{JUDGE}"})


# -- calibration --------------------------------------------------------------------------------------------------------

def ratings_frame(rows: list[tuple[str, str, str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([{"sheet_id": "s1", "rater": rater, "example_id": eid, "variant_id": "v", "criterion": crit,
                          "value": value, "comment": None, "rated_at": None} for rater, eid, crit, value in rows])


def judge_frame(rows: list[tuple[str, str, float]], variant: str = "v") -> pd.DataFrame:
    return pd.DataFrame([{"variant_id": variant, "example_id": eid, "criterion": crit, "value": value}
                         for eid, crit, value in rows])


def test_agreement_matches_hand_computed_spearman_and_weighted_kappa() -> None:
    humans = ratings_frame([("ann", "e1", "accuracy", 4), ("bob", "e1", "accuracy", 5), ("ann", "e2", "accuracy", 2),
                            ("ann", "e3", "accuracy", 3), ("ann", "e4", "accuracy", 5), ("ann", "e5", "accuracy", 1),
                            ("ann", "e1", "hallucination", "no"), ("ann", "e2", "hallucination", "yes"),
                            ("ann", "e3", "hallucination", "no"), ("ann", "e4", "hallucination", "no")])
    judge = judge_frame([("e1", "accuracy", 5), ("e2", "accuracy", 3), ("e3", "accuracy", 3), ("e4", "accuracy", 4),
                         ("e5", "accuracy", 1), ("e1", "hallucination", 0), ("e2", "hallucination", 1),
                         ("e3", "hallucination", 1), ("e4", "hallucination", 0), ("e9", "accuracy", 2)])
    got = calibration.agreement(humans, judge).set_index("criterion")
    acc = got.loc["accuracy"]
    # human means [4.5, 2, 3, 5, 1] vs judge [5, 3, 3, 4, 1]: ranks [4, 2, 3, 5, 1] vs [5, 2.5, 2.5, 4, 1]
    assert acc["spearman"] == pytest.approx(8.5 / math.sqrt(95))
    from scipy.stats import spearmanr
    assert acc["spearman"] == pytest.approx(spearmanr([4.5, 2, 3, 5, 1], [5, 3, 3, 4, 1]).statistic)
    # humans rounded half up [5, 2, 3, 5, 1]; weighted disagreement 2 observed, 108 / 5 expected by chance
    assert acc["kappa"] == pytest.approx(1 - 2 / 21.6)
    assert (acc["n"], acc["raters"], acc["human_mean"], acc["judge_mean"]) == (5, 2, pytest.approx(3.1), 3.2)
    assert acc["spearman_low"] <= acc["spearman"] <= acc["spearman_high"] <= 1.0
    assert acc["kappa_low"] <= acc["kappa"] <= acc["kappa_high"]
    hall = got.loc["hallucination"]  # binary: quadratic-weighted kappa is Cohen's kappa; Spearman is phi
    assert hall["kappa"] == pytest.approx(0.5) and hall["spearman"] == pytest.approx(1 / math.sqrt(3))
    assert hall["n"] == 4


def test_weighted_kappa_known_values() -> None:
    a = np.array([1, 2, 3, 4, 5])
    assert calibration.weighted_kappa(a, a, (1, 5)) == 1.0
    assert calibration.weighted_kappa(a, a[::-1], (1, 5)) == pytest.approx(-1.0)
    assert math.isnan(calibration.weighted_kappa(np.array([3, 3]), np.array([3, 3]), (1, 5)))


def test_bootstrap_ci_of_a_mean_is_mean_ci() -> None:
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    assert stats.bootstrap_ci(lambda i: float(x[i].mean()), len(x)) == pytest.approx(stats.mean_ci(x))


def test_disagreements_rank_observed_disagreement_and_judge_uncertainty() -> None:
    judge = pd.concat([
        judge_frame([("e1", "accuracy", 5), ("e2", "accuracy", 3), ("e6", "accuracy", 3), ("e7", "accuracy", 5),
                     ("e8", "accuracy", 4), ("e7", "hallucination", 1), ("e2", "hallucination", 1)]),
        judge_frame([("e8", "accuracy", 2)], variant="w")])
    humans = ratings_frame([("ann", "e1", "accuracy", 4), ("bob", "e1", "accuracy", 5), ("ann", "e2", "accuracy", 2),
                            ("ann", "e2", "hallucination", "no")])
    items = calibration.disagreements(judge, humans, by="item")
    # e6: mid-scale 1.0; e8@v: 0.5 and e8@w: 0.5 (both one step from the middle); e2: (1/4 + 1/1) / 2;
    # e1: 0.5 / 4; e7: 0 (yes/no says nothing without a human)
    assert list(zip(items["example_id"], items["variant_id"], strict=True)) == [
        ("e6", "v"), ("e2", "v"), ("e8", "v"), ("e8", "w"), ("e1", "v"), ("e7", "v")]
    assert items["score"].tolist() == pytest.approx([1.0, 0.625, 0.5, 0.5, 0.125, 0.0])
    assert items["basis"].tolist() == ["uncertainty", "disagreement", "uncertainty", "uncertainty", "disagreement",
                                       "uncertainty"]
    top = calibration.disagreements(judge, humans, k=3)
    assert top["example_id"].tolist() == ["e6", "e2", "e8"]
    fresh = calibration.disagreements(judge, None)
    assert fresh["basis"].eq("uncertainty").all() and fresh["example_id"].iloc[0] == "e2"  # 3 is mid-scale too


def test_judge_scores_read_stored_sample_scores() -> None:
    # e2's judgment was malformed: it has no judge values, only its error in detail (not read here)
    ex = pd.DataFrame([{"variant_id": "v", "suite": "judge", "example_id": "e1", "metric": "judge:accuracy", "value": 4.0},
                       {"variant_id": "v", "suite": "judge", "example_id": "e1", "metric": "judge:hallucination",
                        "value": 1.0},
                       {"variant_id": "v", "suite": "heldout", "example_id": "e1", "metric": "exact_match", "value": 1.0},
                       {"variant_id": "v", "suite": "judge", "example_id": "e3", "metric": "judge_win_rate",
                        "value": 0.5}])
    got = calibration.judge_scores(ex, suite="judge")
    assert got.to_dict("records") == [
        {"variant_id": "v", "example_id": "e1", "criterion": "accuracy", "value": 4.0},
        {"variant_id": "v", "example_id": "e1", "criterion": "hallucination", "value": 1.0}]


@pytest.mark.api
def test_judge_calibration_against_imported_ratings_in_the_report_and_calibrate_export(
        server: FakeOpenAI, tmp_path: Path) -> None:
    """The round trip: a judged sweep, a blind sheet rated and imported, the judge's agreement with the raters in
    the report, and `review export --calibrate` putting the items where they disagree first."""
    import harness.cli
    from harness.store.review import load_sheet

    spec, refs = write_sweep(tmp_path / "exp")
    server.base_models = (BASE, JUDGE, TUNED)
    server.answer = lambda model, msgs: refs[msgs[-1]["content"]] if model == TUNED else "I don't know."
    server.judge = lambda model, msgs, schema: ({"winner": "A", "rationale": "r"} if "winner" in schema["properties"]
                                                else graded(1 if response(msgs) == "I don't know." else 5, "no"))
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])
    out = tmp_path / "sheet"
    assert harness.cli.main(["review", "export", "--db", str(db), "-o", str(out), "--sample", "10"]) == 0
    with Store(db, read_only=True) as s:
        sid = str(s.query("SELECT sheet_id FROM review_sheets").iloc[0, 0])
        sheet = load_sheet(s, sid)
        names = dict(s.query("SELECT variant_id, name FROM variants").itertuples(index=False))
    assert sheet is not None
    items = []
    for eid, labels in sheet["items"].items():  # the rater agrees with the judge: 5 for answers, 1 for shrugs
        scores = {lab: {"accuracy": 5 if names[vid] != "base" else 1, "format": 3, "tone": 3, "completeness": 3,
                        "hallucination": "no"} for lab, vid in labels.items()}
        items.append({"example_id": eid, "scores": scores, "comments": {}, "preferred": None,
                      "rated_at": "2026-12-01T10:00:00Z"})
    filled = tmp_path / "alice.json"
    filled.write_text(json.dumps({"format": "finetune-harness-ratings", "format_version": 1, "sheet_id": sid,
                                  "rater": "alice", "saved_at": "2026-12-01T10:05:00Z", "items": items}))
    assert harness.cli.main(["review", "import", str(filled), "--db", str(db)]) == 0
    report = tmp_path / "r.html"
    assert harness.cli.main(["report", "--db", str(db), "-o", str(report)]) == 0
    html = report.read_text()
    assert 'id="judge-calibration"' in html
    row = re.search(r"<td>accuracy</td><td class=\"num\">(\d+)</td>.*?Spearman|<td>accuracy</td>(.*?)</tr>",
                    html.split('id="judge-calibration"')[1], re.DOTALL)
    assert row is not None and "1.00" in row.group(0)  # the judge ranks exactly as the rater does
    assert harness.cli.main(["review", "export", "--db", str(db), "-o", str(tmp_path / "cal"), "--sample", "3",
                             "--calibrate"]) == 0


# -- malformed judgments and failing judges are loud (issue 23, items 6 and 7) ----------------------------------------

def test_judge_errors_give_a_warning_per_suite_and_none_readable_fails_the_suite() -> None:
    from harness.scorers.run import judged
    from harness.scores import Sample, Score, SuiteResult

    def result(bad: list[str], n: int) -> SuiteResult:
        samples = [Sample(str(i), "p", "o", detail={"judge_error": e} if e else {})
                   for i, e in enumerate(bad + [""] * (n - len(bad)))]
        return SuiteResult([Score("judge_errors", float(len(bad)), n=n)], samples, suite="judge")

    clean = judged(result([], 6))
    assert clean.findings == [] and clean.error is None
    one = judged(result(["not JSON (Expecting value: line 1 column 1 (char 0)): 'meh'"], 6))
    assert [(f.check, f.severity, f.message) for f in one.findings] == [
        ("judge_errors", "warning", "judge: 1 of 6 judgments failed (reply not JSON)")]
    assert one.findings[0].evidence == {"suite": "judge", "metric": "judge_errors", "errors": 1, "n": 6,
                                        "reasons": {"reply not JSON": 1}}
    assert one.error is None  # one readable judgment is enough for the suite to count
    every = judged(result(["not JSON (x): 'a'"] * 4 + ["the judgment was cut off at 64 tokens (raise ...)"] * 2, 6))
    assert every.findings[0].message == ("judge: 6 of 6 judgments failed (reply not JSON 4, reply cut off at "
                                         "judge_max_tokens 2)")
    assert every.error is not None and "no judgment succeeded" in every.error
    assert [f.check for f in every.findings] == ["judge_errors", "suite_failed"]
    assert every.findings[1].evidence["suite"] == "judge"


def test_a_suite_that_raises_keeps_the_suites_that_finished(server: FakeOpenAI) -> None:
    from harness.progress import Quiet
    from harness.scorers.run import score_suites

    def down(name: str, base_url: str | None) -> Any:
        raise judge_models.HarnessInputError(f"judge {name}: APIConnectionError: Connection error. key {CANARY}")

    heldout = Suite("heldout", "1", "heldout", "", Path("."), {"max_new_tokens": 4, "loss": False})
    out = score_suites(ScriptedModel(lambda prompt: GOOD), Variant("v1", "lora-r4", "lora"),
                       [judge_suite(), heldout], examples(), [], Quiet(), open_judge=down)
    judge, held = out
    assert judge.error is not None and judge.scores == [] and "Connection error" in judge.error
    assert CANARY not in judge.error and [f.check for f in judge.findings] == ["suite_failed"]
    assert judge.findings[0].evidence["suite"] == "judge"
    assert held.error is None and held.score("exact_match") is not None and len(held.samples) == 4


@pytest.mark.api
@pytest.mark.parametrize("content_type", ["text/html", "application/json"])
def test_a_judge_server_answering_non_json_says_so(content_type: str, isolated_cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from harness.managed.client import make_client
    from harness.managed.structured_judge import ApiJudge, JudgeUnavailable

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = f"<html>  <h1>Welcome to nginx!</h1>\n {CANARY} {'x' * 500}</html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", CANARY)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        judge = ApiJudge(make_client("openai-compatible", f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                                     max_retries=0), "judge-model", compatible=True)
        with pytest.raises(JudgeUnavailable) as err:
            judge.complete([[{"role": "user", "content": "grade this"}]], rubric_schema(parse_rubric(None)), 32)
    finally:
        httpd.shutdown()
        httpd.server_close()
    message = str(err.value)
    assert f"the judge server's reply was not JSON (HTTP 200, {content_type})" in message
    assert "<html> <h1>Welcome to nginx!</h1>" in message and CANARY not in message and "sk-***" in message
    assert "JSONDecodeError" not in message and "Expecting value" not in message and len(message) < 400
