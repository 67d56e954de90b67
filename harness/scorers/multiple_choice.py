"""Multiple choice for models without log-likelihoods (chat APIs): lettered options, the letter parsed back."""

from __future__ import annotations

import re

from harness.models.protocol import ScoringModel
from harness.scores import JSONDict

LETTERS = "ABCDEFGHIJKLMNOPQRST"
MC_INSTRUCTION = "Answer with the letter of the correct choice only."
# What a scorer records in its stored arguments when it scored multiple choice this way.
MC_MAX_NEW_TOKENS = 4
MC_GENERATION_ARGS: JSONDict = {"multiple_choice": "generation", "answer_format": "letter",
                                "instruction": MC_INSTRUCTION, "max_new_tokens": MC_MAX_NEW_TOKENS}


def multiple_choice_messages(context: str, choices: list[str]) -> list[dict[str, str]]:
    """A chat turn listing the choices as lettered options and asking for the letter alone."""
    if not 2 <= len(choices) <= len(LETTERS):
        raise ValueError(f"multiple choice needs 2 to {len(LETTERS)} choices, got {len(choices)}")
    options = "\n".join(f"{LETTERS[i]}. {c.strip()}" for i, c in enumerate(choices))
    return [{"role": "user", "content": f"{context.strip()}\n{options}\n{MC_INSTRUCTION}"}]


def parse_choice(output: str, n_choices: int) -> int | None:
    """The index of the first standalone choice letter in `output` ('B', '(B)', 'B.', 'Answer: B'), or None."""
    letters = LETTERS[:n_choices]
    m = re.search(rf"(?<![A-Za-z])([{letters}])(?![A-Za-z])", output.strip())
    return LETTERS.index(m.group(1)) if m else None


def choose_by_generation(model: ScoringModel, items: list[tuple[str, list[str]]],
                         max_new_tokens: int = MC_MAX_NEW_TOKENS
                         ) -> list[tuple[int | None, str]]:
    """For (context, choices) items: (chosen index or None when unparseable, raw output), in one batched call."""
    outputs = model.generate([multiple_choice_messages(c, ch) for c, ch in items], max_new_tokens)
    return [(parse_choice(o, len(ch)), o) for o, (_, ch) in zip(outputs, items, strict=True)]
