"""Batched generation with a shared-prefix KV cache gives what one prompt at a time gives."""

from __future__ import annotations

from typing import Any

import pytest

from harness.models.local import MIN_SHARED, LocalModel

SYSTEM = "You are AcmeCorp's support assistant. Answer with one JSON object with keys category and reply."


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    from harness.models.resolve import TINY, ModelRef, build_tiny, load_tokenizer

    return build_tiny(), load_tokenizer(ModelRef(TINY, "tiny", "", ""))


def test_shared_prefix_generation_matches_one_at_a_time(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    convs = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Ticket {i}: " + "help " * (i % 5)}]
             for i in range(9)]
    lm = LocalModel(model, tok, name="tiny", batch_size=4)
    shared, cache = lm._shared_prefix([lm._encode(lm._chat(c, generation_prompt=True)) for c in convs])
    assert len(shared) >= MIN_SHARED and cache is not None
    batched = lm.generate(convs, max_new_tokens=12)
    alone = [lm.generate([c], max_new_tokens=12)[0] for c in convs]  # one prompt: nothing shared, no cache
    assert batched == alone
    assert lm.generate(convs, max_new_tokens=12) == batched  # the cached prefix is copied, never consumed


def test_no_shared_prefix_when_prompts_differ(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    lm = LocalModel(model, tok, name="tiny")
    assert lm._shared_prefix([[1, 2, 3], [4, 5, 6]]) == ([], None)
    assert lm._shared_prefix([[7] * 20]) == ([], None)
    shared, _ = lm._shared_prefix([[7] * 20, [7] * 12])  # one prompt is the prefix: it keeps a token to feed
    assert shared == [7] * 11


def test_usage_counts_prompt_tokens_and_generated_tokens_up_to_the_stop(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    lm = LocalModel(model, tok, name="tiny", batch_size=2)
    convs = [[{"role": "user", "content": f"Question number {i}: {'why ' * i}?"}] for i in range(5)]
    outs = lm.generate(convs, 6)
    prompts = [len(tok(tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                       add_special_tokens=False)["input_ids"]) for c in convs]
    assert lm.usage.requests == 5 and lm.usage.prompt_tokens == sum(prompts)
    assert 5 <= lm.usage.output_tokens <= 30  # at least one token per request (a stop counts), at most 6 each
    assert lm.usage.output_tokens >= sum(len(tok(o, add_special_tokens=False)["input_ids"]) > 0 for o in outs)
    per = lm.usage.per_request()
    assert per.prompt_tokens_per_request == sum(prompts) / 5 and (per.seconds_per_request or 0) > 0


def test_shared_prefix_scoring_matches_one_at_a_time(tiny: tuple[Any, Any]) -> None:
    """Reference log-likelihoods with the shared prefix's cache (a prompt variant's system prompt, the template's
    header) equal those of each conversation scored alone, without any cache."""
    model, tok = tiny
    convs = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Ticket {i}: " + "help " * (i % 4)},
              {"role": "assistant", "content": '{"category": "billing"}' + " ok" * (i % 3)}] for i in range(7)]
    lm = LocalModel(model, tok, name="tiny", batch_size=3)
    contexts = [lm._encode(lm._chat(c[:-1], generation_prompt=True)) for c in convs]
    shared, cache = lm._shared_prefix(contexts)
    assert len(shared) >= MIN_SHARED and cache is not None
    batched = lm.reference_nll(convs)
    alone = [lm.reference_nll([c])[0] for c in convs]  # one request: nothing shared, no cache
    for (a, n), (b, m) in zip(batched, alone, strict=True):
        assert n == m and a == pytest.approx(b, rel=1e-5, abs=1e-4)
    reqs = [(SYSTEM + f" Question {i}: which team?\nAnswer:", f" team {i % 3}") for i in range(5)]
    ll = lm.loglikelihood(reqs)
    for (a, ga), (b, gb) in zip(ll, [lm.loglikelihood([r])[0] for r in reqs], strict=True):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-4) and ga == gb
