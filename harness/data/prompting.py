"""Prompt-engineering baselines as data: few-shot turns drawn from the training split, and a conversation with the
experiment's system prompt and those turns put before it."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError

if TYPE_CHECKING:
    from harness.data.chat import Example

Message = dict[str, str]


def few_shot_examples(train: list[Example], k: int, seed: int | None) -> list[Example]:
    """k training examples drawn without replacement with `seed` (the same k and seed give the same examples).

    Only ever the training split: validation and test examples are not passed here, so a prompt variant never sees
    an example it is scored on (tests/test_prompt_variants.py checks it).
    """
    if k <= 0:
        return []
    if k > len(train):
        raise HarnessInputError(f"sweep.shots: {k} few-shot examples asked for, but the training split holds only "
                                f"{len(train)}; lower sweep.shots or add training data")
    return random.Random(seed).sample(list(train), k)


def shot_turns(examples: list[Example]) -> list[Message]:
    """The examples as alternating user/assistant turns (their own system messages left out)."""
    return [{"role": m["role"], "content": m["content"]} for e in examples for m in e.messages if m["role"] != "system"]


def with_prompt(conversation: list[Message], system: str | None, turns: list[Message]) -> list[Message]:
    """`conversation` with the system prompt first (joined with the conversation's own system message, if any) and
    the few-shot turns before its first user turn."""
    own = [m["content"] for m in conversation[:1] if m["role"] == "system"]
    rest = conversation[len(own):]
    text = "\n\n".join(t for t in [system, *own] if t)
    return ([{"role": "system", "content": text}] if text else []) + list(turns) + list(rest)
