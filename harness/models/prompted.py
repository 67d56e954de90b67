"""A prompt variant as a model: the base model with the experiment's system prompt and few-shot turns put before
every conversation it is asked about. Plain-text requests (multiple choice, perplexity) pass through unchanged:
a chat prompt does not apply to them, so a prompt variant's general-capability scores equal base's."""

from __future__ import annotations

from typing import Any

from harness.data.prompting import few_shot_examples, shot_turns, with_prompt
from harness.models.protocol import ScoringModel, Usage


class PromptedModel:
    """Wraps any ScoringModel (local or API); what it costs is counted by the wrapped model, longer prompts included."""

    def __init__(self, inner: ScoringModel, *, system: str | None, turns: list[dict[str, str]]):
        self.inner = inner
        self.name = inner.name
        self.system = system
        self.turns = turns
        self.supports_loglikelihood = inner.supports_loglikelihood
        self.usage: Usage = inner.usage  # the wrapped model counts, longer prompts included

    def _wrap(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        return with_prompt(conversation, self.system, self.turns)

    def generate(self, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        return self.inner.generate([self._wrap(c) for c in conversations], max_new_tokens)

    def reference_nll(self, conversations: list[list[dict[str, str]]]) -> list[tuple[float, int]]:
        return self.inner.reference_nll([self._wrap(c[:-1]) + c[-1:] for c in conversations])

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self.inner.loglikelihood(requests)

    def loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        return self.inner.loglikelihood_rolling(texts)


def for_variant(model: ScoringModel, variant: Any, train: list[Any], row: dict[str, Any]) -> ScoringModel:
    """The model a variant is scored as: for `method: prompt`, `model` with the variant's system prompt and `shots`
    training examples (drawn with the variant's seed), its row recording the prompt (config.prompt) and that it
    trained nothing (0 trainable parameters, 0 s); for every other method, `model` itself."""
    if variant.method != "prompt":
        return model
    examples = few_shot_examples(train, variant.shots or 0, variant.seed)
    row["config"]["prompt"] = {"system": variant.system_prompt, "shots": variant.shots, "seed": variant.seed,
                               "shot_examples": [e.example_id for e in examples]}
    row.update(trainable_params=0, train_seconds=0.0)
    return PromptedModel(model, system=variant.system_prompt, turns=shot_turns(examples))
