"""A prompt variant as a model: the base model with the experiment's system prompt and few-shot turns put before
every conversation it is asked about. Plain-text requests (multiple choice, perplexity) pass through unchanged:
a chat prompt does not apply to them, so a prompt variant's general-capability scores equal base's."""

from __future__ import annotations

from harness.data.chat import Example
from harness.data.prompting import few_shot_examples, shot_turns, with_prompt
from harness.models.protocol import ScoringModel, Usage
from harness.results import PromptRecord
from harness.spec.plan import Variant


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


def for_variant(model: ScoringModel, variant: Variant, train: list[Example]
                ) -> tuple[ScoringModel, PromptRecord | None]:
    """The model a variant is scored as, and the prompt it records (config.prompt): for `method: prompt`, `model`
    with the variant's system prompt and `shots` training examples (drawn with the variant's seed); for every other
    method, `model` itself and no prompt."""
    if variant.method != "prompt":
        return model, None
    examples = few_shot_examples(train, variant.shots or 0, variant.seed)
    record = PromptRecord(variant.system_prompt, variant.shots, variant.seed, [e.example_id for e in examples])
    return PromptedModel(model, system=variant.system_prompt, turns=shot_turns(examples)), record
