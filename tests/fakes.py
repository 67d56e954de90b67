"""A scripted model for scorer and runner tests: returns given strings and log-likelihoods."""

from __future__ import annotations

from collections.abc import Callable

from harness.models.protocol import Usage


class ScriptedModel:
    """Implements harness.lm.ScoringModel from scripts instead of weights.

    outputs: a function from the last user message to the generated text (or a dict of them).
    logliks: a function from (context, continuation) to a log-likelihood.
    """

    supports_loglikelihood = True

    def __init__(self, outputs: dict[str, str] | Callable[[str], str] | None = None,
                 logliks: Callable[[str, str], float] | None = None, name: str = "scripted"):
        self.name = name
        self._outputs = outputs or {}
        self._logliks = logliks or (lambda c, x: -float(len(x)))
        self.generate_calls: list[int] = []
        self.conversations: list[list[dict[str, str]]] = []  # every conversation asked for, as sent
        self.usage = Usage()  # tokens counted as words
        self.loglik_calls: list[int] = []

    def _out(self, prompt: str) -> str:
        if callable(self._outputs):
            return self._outputs(prompt)
        return self._outputs.get(prompt, "")

    def generate(self, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        self.generate_calls.append(len(conversations))
        self.conversations += conversations
        outs = [self._out(c[-1]["content"]) for c in conversations]
        self.usage.add(requests=len(conversations), output_tokens=sum(len(o.split()) for o in outs),
                       prompt_tokens=sum(len(m["content"].split()) for c in conversations for m in c))
        return outs

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        self.loglik_calls.append(len(requests))
        return [(self._logliks(c, x), False) for c, x in requests]

    def loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        return [(-2.0 * len(t.split()), len(t.split())) for t in texts]

    def reference_nll(self, conversations: list[list[dict[str, str]]]) -> list[tuple[float, int]]:
        return [(1.0 * len(c[-1]["content"]), len(c[-1]["content"])) for c in conversations]
