"""Batched, prefix-cached generation (LocalModel.generate) gives, token for token, what transformers' own greedy
`generate` gives one prompt at a time, on the prompts of every built-in suite, and with a few-shot prompt variant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.data.chat import Example
from harness.data.prompting import few_shot_examples, shot_turns
from harness.data.suites import builtin_suites_dir, load_suite
from harness.models.greedy import batch_cache, decode, decodes_here
from harness.models.local import LocalModel
from harness.models.prompted import PromptedModel
from harness.scorers.multiple_choice import multiple_choice_messages

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "experiments" / "acme-support" / "data"
Chat = list[dict[str, str]]
# Suites that generate nothing with the scored model: the judge grades heldout's outputs, divergence reads the log.
NO_GENERATION = {"divergence", "judge", "judge-pairwise"}


def _chats(path: Path) -> list[Chat]:
    return [json.loads(line)["messages"] for line in path.read_text().splitlines() if line.strip()]


def suite_prompts(limit: int | None = None) -> dict[str, list[Chat]]:
    """Every built-in suite that generates -> the conversations its scorer sends to the model (heldout and
    memorization: the default experiment's test and training prompts; general: its multiple-choice questions as an
    API model is asked them)."""
    folder = builtin_suites_dir()
    assert folder is not None
    prompts: dict[str, list[Chat]] = {}
    for path in sorted(folder.glob("*/suite.yaml")):
        suite = load_suite(path.parent)
        if suite.name in NO_GENERATION:
            continue
        if suite.name == "heldout":
            convs = [m[:-1] for m in _chats(DATA / "test.jsonl")]
        elif suite.name == "memorization":
            convs = [m[:-1] for m in _chats(DATA / "train.jsonl")]
        elif suite.kind == "general":
            convs = [multiple_choice_messages(it["context"], it["choices"]) for it in suite.items()]
        else:
            convs = [it["messages"] for it in suite.items()]
        assert convs, f"built-in suite {suite.name}: no prompts found; say here how its scorer prompts the model"
        prompts[suite.name] = convs[:limit]
    return prompts


def one_at_a_time(model: Any, tok: Any, convs: list[Chat], new_tokens: int) -> list[str]:
    """Today's reference: transformers' greedy generate, one prompt at a time (no padding, no shared cache)."""
    stop = [t for t in {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")} if isinstance(t, int)]
    outs = []
    with torch.inference_mode():
        for conv in convs:
            text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]], device=model.device)
            gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 do_sample=False, eos_token_id=stop, pad_token_id=tok.pad_token_id or tok.eos_token_id)
            outs.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return outs


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    from harness.models.resolve import TINY, ModelRef, build_tiny, load_tokenizer

    return build_tiny(), load_tokenizer(ModelRef(TINY, "tiny", "", ""))


def test_every_built_in_suite_batched_equals_one_at_a_time(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    assert decodes_here(model)  # the preallocated, row-dropping decoder is the path under test
    prompts = suite_prompts(limit=8)  # the first 8 of each: batches of 3, 3 and 2 (CPU time on a shared machine)
    assert {"heldout", "acme-format", "acme-hallucination", "instructions", "safety", "memorization",
            "general"} <= set(prompts)
    for name, convs in prompts.items():
        lm = LocalModel(model, tok, name="tiny", batch_size=3)
        assert lm.generate(convs, 10) == one_at_a_time(model, tok, convs, 10), name


def test_few_shot_prompt_variant_batched_equals_one_at_a_time(tiny: tuple[Any, Any]) -> None:
    model, tok = tiny
    train = [Example(m, "train.jsonl", i + 1) for i, m in enumerate(_chats(DATA / "train.jsonl"))]
    system = (DATA.parent / "system_prompt.txt").read_text().strip()
    turns = shot_turns(few_shot_examples(train, 3, 0))
    convs = [m[:-1] for m in _chats(DATA / "test.jsonl")][:12]
    lm = LocalModel(model, tok, name="tiny", batch_size=5)
    prompted = PromptedModel(lm, system=system, turns=turns)
    wrapped = [prompted._wrap(c) for c in convs]
    shared, cache = lm._shared_prefix([lm._encode(lm._chat(c, generation_prompt=True)) for c in wrapped])
    assert len(shared) > 300 and cache is not None  # system prompt and the three shots are computed once
    assert prompted.generate(convs, 12) == one_at_a_time(model, tok, wrapped, 12)


def test_finished_rows_leave_the_batch_with_their_tokens_unchanged(tiny: tuple[Any, Any]) -> None:
    """A stop token that rows reach at different steps: each row ends at its own stop, the others go on, and every
    row's tokens are generate()'s for that prompt alone."""
    model, tok = tiny
    rows = [tok(f"Ticket {i}: " + "please help " * i, add_special_tokens=False)["input_ids"] for i in range(6)]
    free = [model.generate(input_ids=torch.tensor([r]), max_new_tokens=12, do_sample=False, eos_token_id=None,
                           pad_token_id=0)[0, len(r):].tolist() for r in rows]
    firsts = {f[0] for f in free}
    stop = next(t for f in free for t in f if t not in firsts)  # some row reaches it after a few steps, others never
    lm = LocalModel(model, tok, name="tiny")
    ids, mask = lm._left_padded(rows, 0)
    got = decode(model, ids, mask, batch_cache(None, len(rows), ids.shape[1] + 12, 2), 12, [stop]).tokens
    want = [f[: f.index(stop) + 1] if stop in f else f for f in free]
    assert got == want
    assert len({len(g) for g in got}) > 1  # rows did finish at different steps


@pytest.mark.slow
def test_embedded_model_batched_equals_one_at_a_time() -> None:
    """The embedded SmolLM2 on 3 prompts of every built-in suite, and a 3-shot variant on 4 held-out prompts."""
    from harness.models.resolve import SMOLLM2, load_model, load_tokenizer, resolve_model

    ref = resolve_model(SMOLLM2)
    model, tok = load_model(ref), load_tokenizer(ref)
    for name, convs in suite_prompts(limit=3).items():
        assert LocalModel(model, tok, name="smol").generate(convs, 16) == one_at_a_time(model, tok, convs, 16), name
    train = [Example(m, "train.jsonl", i + 1) for i, m in enumerate(_chats(DATA / "train.jsonl"))]
    prompted = PromptedModel(LocalModel(model, tok, name="smol"), system=None,
                             turns=shot_turns(few_shot_examples(train, 3, 0)))
    convs = [m[:-1] for m in _chats(DATA / "test.jsonl")][:4]
    assert prompted.generate(convs, 16) == one_at_a_time(model, tok, [prompted._wrap(c) for c in convs], 16)
