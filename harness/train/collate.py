"""Training examples -> batches: chat tokenization with loss on the final assistant message, padded or
padding-free (packed) collation, and a count of real versus processed tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase
    from transformers.data.data_collator import DataCollator


def tokenize_chat(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], max_len: int
                  ) -> dict[str, list[int]]:
    """input_ids with labels masked (-100) everywhere but the final assistant message."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not isinstance(prompt, str) or not isinstance(full, str):
        raise TypeError(f"{type(tokenizer).__name__}.apply_chat_template(tokenize=False) returned no text")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:  # templates that re-tokenize the boundary: fall back to the prompt length
        f_ids = p_ids + tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    labels = [-100] * len(p_ids) + f_ids[len(p_ids):]
    return {"input_ids": f_ids[:max_len], "labels": labels[:max_len]}


class PadCollator:
    """Right-padded batches: input_ids, labels (-100 on padding) and attention_mask, built in one pass."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [self.pad_id] * (width - len(b["input_ids"])) for b in batch]
        labels = [b["labels"] + [-100] * (width - len(b["labels"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def make_collator(pad_id: int, *, packing: bool, attn_implementation: str | None) -> DataCollator:
    """The padded collator, or transformers' padding-free one (one row per batch, positions restart per example,
    so attention stays within each example; the first label of each example is masked, as the next-token loss
    must not cross examples)."""
    if not packing:
        return PadCollator(pad_id)
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(return_flash_attn_kwargs=attn_implementation == "flash_attention_2")


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
