"""Managed fine-tuning providers, one module each, listed here by the model prefix they serve."""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import HarnessInputError
from harness.managed.backend import ManagedBackend, ManagedSettings
from harness.managed.providers.azure_openai import AzureOpenAIBackend
from harness.managed.providers.openai_platform import OpenAIPlatform

PROVIDERS: dict[str, Callable[[ManagedSettings], ManagedBackend]] = {
    "openai": OpenAIPlatform,
    "azure-openai": AzureOpenAIBackend,
}


def make_backend(kind: str, settings: ManagedSettings) -> ManagedBackend:
    """The provider for a model kind; building it makes no client and needs no key."""
    if kind not in PROVIDERS:
        raise HarnessInputError(f"no managed fine-tuning provider for {kind!r} models; known: {', '.join(PROVIDERS)}")
    return PROVIDERS[kind](settings)
