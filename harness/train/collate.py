"""Training examples -> trl's data: conversational prompt-completion rows (trl's SFTTrainer tokenizes them with the
chat template and puts the loss on the completion alone), and a count of real versus processed tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

Messages = list[dict[str, str]]


def prompt_completion(examples: list[Messages]) -> Dataset:
    """Chat examples as trl's conversational prompt-completion dataset: the prompt every message but the last, the
    completion the final assistant message (so trl's completion-only loss trains on that message alone)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": [m[:-1] for m in examples], "completion": [m[-1:] for m in examples]})


def tokenize_chat(tokenizer: PreTrainedTokenizerBase, messages: Messages, max_len: int) -> dict[str, list[int]]:
    """What trl's SFTTrainer makes of one chat example: the chat template's tokens of the whole conversation, labels
    -100 up to where they part from the prompt's tokens (with the generation prompt), cut to max_len.

    For work outside a trainer that must see the tokens training sees (the benchmark's bare loop, tests); training
    itself tokenizes through trl (`prompt_completion`)."""
    p_ids = _chat_ids(tokenizer, messages[:-1], add_generation_prompt=True)
    f_ids = _chat_ids(tokenizer, messages, add_generation_prompt=False)
    shared = next((i for i, (a, b) in enumerate(zip(p_ids, f_ids, strict=False)) if a != b), min(len(p_ids), len(f_ids)))
    labels = [-100] * shared + f_ids[shared:]
    return {"input_ids": f_ids[:max_len], "labels": labels[:max_len]}


def _chat_ids(tokenizer: PreTrainedTokenizerBase, messages: Messages, *, add_generation_prompt: bool) -> list[int]:
    """The chat template's token ids of `messages`, as trl tokenizes them (apply_chat_template, tokenize=True)."""
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt,
                                        return_dict=True)
    if not isinstance(out, Mapping):
        raise TypeError(f"{type(tokenizer).__name__}.apply_chat_template(return_dict=True) returned no token ids")
    return list(out["input_ids"])


def with_loss(tokenizer: PreTrainedTokenizerBase, examples: list[Messages], max_len: int) -> list[Messages]:
    """The examples that keep a completion token within max_len. trl drops the others while it prepares the data;
    dropping them first lets the step count, and every setting counted in steps, be known before the trainer is."""
    return [m for m in examples if any(x != -100 for x in tokenize_chat(tokenizer, m, max_len)["labels"])]


class TokenCounter:
    """Counts real and processed tokens of every training forward pass (a forward pre-hook; eval passes and
    generation are not counted). real / processed is the real-token share: 1.0 when nothing is padding."""

    def __init__(self, model: torch.nn.Module):
        self.real: int | torch.Tensor = 0  # a tensor once counted: summed on the device, read once at the end
        self.processed = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module: torch.nn.Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not isinstance(ids, torch.Tensor):
            return
        mask = kwargs.get("attention_mask")
        self.processed += int(ids.numel())
        self.real = self.real + (mask.sum() if isinstance(mask, torch.Tensor) else ids.numel())  # on the device, no sync

    @property
    def share(self) -> float | None:
        return float(self.real) / self.processed if self.processed else None

    def close(self) -> None:
        self._handle.remove()


def real_token_share(lengths: list[int], batches: list[list[int]], *, packing: bool) -> float:
    """Real tokens over processed tokens for given batches (lists of example indices): padded batches process
    batch x longest, packed ones just their tokens."""
    real = sum(lengths[i] for b in batches for i in b)
    processed = real if packing else sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return real / processed if processed else 1.0
