"""What scorers need from a model. Local (torch), OpenAI and scripted test models all provide it."""

from __future__ import annotations

from typing import Protocol


class ScoringModel(Protocol):
    """A model as scorers see it: batched generation and batched log-likelihoods."""

    name: str
    supports_loglikelihood: bool

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
