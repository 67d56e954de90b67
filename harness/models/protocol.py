"""What scorers need from a model. Local (torch), OpenAI and scripted test models all provide it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from harness.results import PerRequest
from harness.scores import JSONDict


@dataclass
class Usage:
    """What a model's generation cost: requests, prompt and output tokens, and wall seconds spent generating.

    Seconds are the wall time of the generate calls, so a batched local model or concurrent API requests spread one
    call's time over its requests (the cost per request as a sweep pays it, not a single request's latency).
    """

    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, requests: int = 0, prompt_tokens: int = 0, output_tokens: int = 0, seconds: float = 0.0) -> None:
        with self._lock:  # API requests finish on worker threads
            self.requests += requests
            self.prompt_tokens += prompt_tokens
            self.output_tokens += output_tokens
            self.seconds += seconds

    def per_request(self) -> PerRequest:
        """The `variants` columns: mean prompt and output tokens and generation seconds per request (None if none)."""
        n = self.requests
        if not n:
            return PerRequest()
        return PerRequest(self.prompt_tokens / n, self.output_tokens / n, self.seconds / n)


class ScoringModel(Protocol):
    """A model as scorers see it: batched generation and batched log-likelihoods, and what generation cost."""

    name: str
    supports_loglikelihood: bool
    usage: Usage

    def generate(self, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        """Greedy completions of chat conversations (chat template applied), one string each."""
        ...

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        """For (context, continuation) pairs of plain text: (sum log p(continuation | context), is_greedy)."""
        ...

    def loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        """For whole texts: (sum log p(text), number of tokens), for perplexity."""
        ...

    def reference_nll(self, conversations: list[list[dict[str, str]]]) -> list[tuple[float, int]]:
        """For chats ending in an assistant message: (summed NLL of that message's tokens, token count)."""
        ...


@dataclass(frozen=True)
class Reply:
    """A judge's answer to one request: its text, and `error` when it cannot be used (an API error, a refusal, an
    answer cut off), with whatever text came back kept for the record."""

    text: str | None
    error: str | None = None
    cached: bool = False


class JudgeModel(Protocol):
    """A model that grades outputs: one structured answer per conversation (the JSON Schema it must fill).

    name: as the user gave it (`openai:gpt-4o-mini`, a folder); identity: what it is (a fingerprint of local weights,
    the endpoint of a compatible server), the key of its cached answers.
    """

    name: str
    identity: str

    def complete(self, conversations: list[list[dict[str, str]]], schema: JSONDict, max_tokens: int,
                 version: str) -> list[Reply]:
        """One reply per conversation; `version` names the rubric (a changed rubric is never answered from cache)."""
        ...

    def is_model(self, name: str) -> bool:
        """Whether `name` (a model name, folder or API id) is the judge's own model."""
        ...
