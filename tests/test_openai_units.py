"""OpenAI pieces without a server: prices, token and cost estimates, data rules, scrubbing, train curves, MC."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import chat, make_rows, write_jsonl
from fakes import ScriptedModel

from harness.data.chat import Example, load_examples
from harness.managed import prices as openai_prices
from harness.managed.client import scrub
from harness.managed.data import check_examples, count_tokens, estimate_cost, upload_lines
from harness.managed.jobs import JobCheckpoint, backoff, train_log_rows
from harness.progress import Progress
from harness.scorers.multiple_choice import (
    MC_GENERATION_ARGS,
    choose_by_generation,
    multiple_choice_messages,
    parse_choice,
)
from harness.spec.plan import Variant


def test_price_table_matches_dated_snapshots_and_fine_tuned_ids() -> None:
    assert openai_prices.price_per_million("gpt-4o-mini-2024-07-18") == 3.00
    assert openai_prices.price_per_million("gpt-4o-2024-08-06") == 25.00
    assert openai_prices.price_per_million("gpt-4.1-nano-2025-04-14") == 1.50
    assert openai_prices.price_per_million("ft:gpt-4o-mini-2024-07-18:acme::abc") == 3.00
    assert openai_prices.price_per_million("gpt-4omega") is None  # a prefix of the name, not its family
    assert openai_prices.price_per_million("unknown-model", override=2.5) == 2.5
    assert openai_prices.max_example_tokens("gpt-3.5-turbo-0125") == 16_385


def test_count_tokens_uses_the_documented_heuristic_offline() -> None:
    msgs = [{"role": "user", "content": "x" * 10}, {"role": "assistant", "content": "y" * 4}]
    assert count_tokens(msgs, "gpt-4o-mini") == 3 + (3 + 3) + (3 + 1)  # ceil(10/4)=3, ceil(4/4)=1


def test_cost_estimate_is_tokens_times_epochs_times_price(tmp_path: Path) -> None:
    train = load_examples(write_jsonl(tmp_path / "t.jsonl", make_rows(12)))
    per_epoch = sum(count_tokens(e.messages) for e in train)
    est = estimate_cost("gpt-4o-mini-2024-07-18", train, [
        Variant("a", "openai-e1", "openai", epochs=1), Variant("b", "openai-e3", "openai", epochs=3)])
    assert est.tokens_per_epoch == per_epoch and est.total_tokens == 4 * per_epoch
    assert est.total_usd == pytest.approx(4 * per_epoch * 3.00 / 1e6)
    text = "\n".join(est.lines())
    assert "openai-e3 (b): 3 epoch(s)" in text and "chars/4" in text
    unknown = estimate_cost("my-model", train, [Variant("a", "x", "openai", epochs=1)])
    assert unknown.total_usd is None and "set train.openai.price_per_million_tokens" in unknown.lines()[0]
    overridden = estimate_cost("my-model", train, [Variant("a", "x", "openai", epochs=2)], override=10.0)
    assert overridden.total_usd == pytest.approx(2 * per_epoch * 10.0 / 1e6)


def test_check_examples_lists_every_rule_broken(tmp_path: Path) -> None:
    rows = make_rows(9)
    rows.append({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"},
                              {"role": "assistant", "content": "a"}]})
    rows.append(chat("long " * 70_000, "ok"))
    train = load_examples(write_jsonl(tmp_path / "t.jsonl", rows))[:10]
    long = load_examples(write_jsonl(tmp_path / "v.jsonl", [*make_rows(10), rows[-1]]))[-1:]
    problems = check_examples(train, long, "gpt-4o-mini-2024-07-18")
    assert any("t.jsonl:10: role(s) tool" in p for p in problems)
    assert any("v.jsonl:11: about" in p and "at most 65,536" in p for p in problems)
    assert check_examples(train[:9], [], "gpt-4o-mini")[0].endswith("Add examples or lower data.validation.")
    assert check_examples(load_examples(write_jsonl(tmp_path / "ok.jsonl", make_rows(12))), [], "gpt-4o-mini") == []


def test_upload_trains_on_the_final_answer_only() -> None:
    e = Example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                 {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}], "x.jsonl", 1)
    msgs = json.loads(upload_lines([e]))["messages"]
    assert msgs[1]["weight"] == 0 and "weight" not in msgs[3] and [m["role"] for m in msgs][-1] == "assistant"


def test_scrub_masks_keys_from_the_environment_and_key_shapes(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdefgh12345678")
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "plain-secret-token")
    text = scrub("a sk-live-abcdefgh12345678 b plain-secret-token c sk-proj-********wxyz d")
    assert text == "a sk-*** b *** c sk-*** d"
    assert scrub(None) == ""


def test_backoff_honours_retry_after_and_grows_otherwise() -> None:
    class Resp:
        headers: ClassVar[dict[str, str]] = {"retry-after": "7"}

    class Exc(Exception):
        response = Resp()

    assert backoff(0, 0.5, Exc()) == 7.0
    assert [backoff(a, 0.5) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(20, 0.5) == 300.0


def test_train_log_from_events_and_checkpoints() -> None:
    events = [{"id": f"e{s}", "type": "metrics", "data": {"step": s, "train_loss": 2.0 - s / 10, "total_steps": 8,
                                                           **({"valid_loss": 2.5} if s % 2 else {})}}
              for s in range(1, 9)]
    events.append({"id": "m", "type": "message", "data": {}})
    ckpts = [JobCheckpoint("c4", 4, "ft:m:4", {"full_valid_loss": 1.9}),
             JobCheckpoint("c8", 8, "ft:m:8", {"full_valid_loss": 1.7})]
    rows = train_log_rows(events, ckpts, 2)
    train = [r for r in rows if r.split == "train"]
    val = [r for r in rows if r.split == "validation"]
    assert [r.step for r in train] == list(range(1, 9)) and train[3].epoch == 1.0
    assert [(r.step, r.epoch, r.loss) for r in val] == [(4, 1.0, 1.9), (8, 2.0, 1.7)]
    sampled = [r for r in train_log_rows(events, [], 2) if r.split == "validation"]
    assert [r.step for r in sampled] == [1, 3, 5, 7]  # no full validation loss: the sampled one


def test_multiple_choice_by_generation() -> None:
    msgs = multiple_choice_messages("Question: capital of France?\nAnswer:", [" Paris", " London", " Rome"])
    assert msgs[0]["content"].endswith("A. Paris\nB. London\nC. Rome\nAnswer with the letter of the correct choice only.")
    assert [parse_choice(o, 3) for o in ("B", "(C)", "Answer: A.", "b", "D", "I think London")] == [1, 2, 0, None, None, None]
    model = ScriptedModel(outputs=lambda prompt: "B" if "France" in prompt else "no idea")
    got = choose_by_generation(model, [("capital of France?", ["Rome", "Paris"]), ("2+2?", ["3", "4"])])
    assert got == [(1, "B"), (None, "no idea")] and model.generate_calls == [2]
    assert MC_GENERATION_ARGS["multiple_choice"] == "generation"


@pytest.mark.api
def test_chat_model_scores_multiple_choice_by_generation_and_the_score_says_so(tmp_path: Path) -> None:
    """The helper general.py uses when a model has no log-likelihoods, through the real client and a fake server."""
    from fake_openai import FakeOpenAI

    from harness.data.suites import Suite
    from harness.managed.client import OpenAIChatModel, make_client
    from harness.scorers import ScoreContext, SuiteResult, scorer
    from harness.scorers.run import score_suites
    from harness.scores import Score
    from harness.spec.plan import Variant

    @scorer("test-mc-by-generation")
    def mc_probe(items: list | None = None):
        def score(ctx: ScoreContext) -> SuiteResult:
            assert not ctx.model.supports_loglikelihood
            picks = choose_by_generation(ctx.model, [(i["context"], i["choices"]) for i in items or []])
            acc = sum(p == i["gold"] for (p, _), i in zip(picks, items or [], strict=True)) / len(picks)
            return SuiteResult([Score("accuracy", acc, n=len(picks), how=dict(MC_GENERATION_ARGS))])
        return score

    items = [{"context": "Capital of France?", "choices": ["Rome", "Paris"], "gold": 1},
             {"context": "2 + 2 =", "choices": ["4", "5", "6"], "gold": 0}]
    with FakeOpenAI(base_models=("m",), answer=lambda m, msgs: "B" if "France" in msgs[-1]["content"] else "C") as srv:
        lm = OpenAIChatModel(make_client("openai-compatible", srv.base_url), "m", name="m", compatible=True)
        suite = Suite("mc", "1", "test-mc-by-generation", "", tmp_path, {"items": items})
        (result,) = score_suites(lm, Variant("x", "x", "base"), [suite], [], [],
                                 Progress(live=False, stream=io.StringIO()))
    record = result.records["accuracy"]  # the scorer record stored with the score
    assert result.scores[0].value == 0.5
    assert record["args"]["multiple_choice"] == "generation"
    assert record["args"]["items"] == items and record["kind"] == "test-mc-by-generation"
    assert [r.body["max_tokens"] for r in srv.requests("POST", "/v1/chat/completions")] == [4, 4]


def test_api_messages_keep_every_turn_the_data_allows() -> None:
    from harness.managed.client import api_messages

    turns = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
             {"role": "assistant", "content": "a"}, {"role": "tool", "content": "42"}]
    assert api_messages(turns) == turns  # a tool turn (data/chat.py allows it) is sent as written, never refused
