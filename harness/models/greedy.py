"""Greedy decoding of a left-padded batch from a shared prefix's KV cache, in a preallocated cache that drops finished
rows: the same tokens `model.generate(do_sample=False)` picks, with less work per step.

Why not `generate` itself: it keeps computing rows that have finished until the longest row stops, and its
`DynamicCache` grows by `torch.cat` each step, copying the whole cache (the shared prefix included, once per row)
every step; with a 3-shot prompt that copy was half of a decode step on the CPU. Here every row's cache lives in one
buffer allocated for the batch's final length (prefix + prompt + new tokens), written in place; a finished row leaves
the batch (`batch_select_indices`), so no step computes a row whose output is already known.

Prefix reuse: the prefix's keys and values, computed once at batch size 1, are *copied* into each batch's buffer
(broadcast over its rows), not deep-copied and `repeat_interleave`d per batch as before: the buffer must be written
in place and hold the rows' own tokens after the prefix, so a shared read-only expand() view cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

# generation_config keys that make generate() change the logits before its argmax (their neutral values): a model
# that sets any of them is decoded by generate() itself, so its outputs stay what they were.
_NEUTRAL = {"repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,),
            "min_length": (None, 0), "min_new_tokens": (None, 0), "suppress_tokens": (None,),
            "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
            "sequence_bias": (None,), "encoder_repetition_penalty": (None, 1.0),
            "exponential_decay_length_penalty": (None,), "renormalize_logits": (None, False),
            "remove_invalid_values": (None, False), "watermarking_config": (None,)}


class PreallocatedLayer(DynamicLayer):
    """A DynamicLayer whose keys and values are views of a buffer sized for the batch's final length: `update`
    writes the new positions in place instead of concatenating (it grows, by doubling, only if a caller overruns)."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def _allocate(self, like: torch.Tensor, rows: int, capacity: int) -> None:
        shape = (rows, like.shape[1], capacity, like.shape[3])
        self.dtype, self.device = like.dtype, like.device
        self.k_buf = torch.empty(shape, dtype=like.dtype, device=like.device)
        self.v_buf = torch.empty(shape, dtype=like.dtype, device=like.device)
        self.capacity = capacity
        self.is_initialized = True

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.k_buf[:, :, :self.length], self.v_buf[:, :, :self.length]
        self.keys, self.values = keys, values
        return keys, values

    def fill(self, keys: torch.Tensor, values: torch.Tensor, rows: int) -> None:
        """Start from a prefix's keys and values (batch 1), copied into every one of `rows` rows."""
        self._allocate(keys, rows, max(self.capacity, keys.shape[2]))
        self.length = keys.shape[2]
        self.k_buf[:, :, :self.length] = keys
        self.v_buf[:, :, :self.length] = values
        self._views()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self._allocate(key_states, key_states.shape[0], max(self.capacity, key_states.shape[2]))
        end = self.length + key_states.shape[2]
        if end > self.capacity:
            old_k, old_v = self.k_buf, self.v_buf
            self._allocate(old_k, old_k.shape[0], max(end, 2 * self.capacity))
            self.k_buf[:, :, :self.length] = old_k[:, :, :self.length]
            self.v_buf[:, :, :self.length] = old_v[:, :, :self.length]
        self.k_buf[:, :, self.length:end] = key_states
        self.v_buf[:, :, self.length:end] = value_states
        self.length = end
        return self._views()

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self.k_buf, self.v_buf = self.k_buf[indices], self.v_buf[indices]
            self._views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self.k_buf = self.k_buf.repeat_interleave(repeats, dim=0)
            self.v_buf = self.v_buf.repeat_interleave(repeats, dim=0)
            self._views()

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0:
            self.length = max(0, self.length + tokens_to_remove)
            self._views()


def decodes_here(model: PreTrainedModel | PeftModel) -> bool:
    """Whether `decode` gives what generate(do_sample=False) gives for this model: a decoder whose cache layers are
    all plain full-attention `DynamicLayer`s (no sliding window, no linear attention), and no logits processor from
    its generation_config (generate would take the argmax of processed logits)."""
    config = getattr(model, "generation_config", None)
    if config is not None and any(getattr(config, key, None) not in neutral for key, neutral in _NEUTRAL.items()):
        return False
    try:
        layers = DynamicCache(config=model.config).layers
    except (AttributeError, TypeError, ValueError):  # a config transformers cannot lay a cache out for
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def batch_cache(prefix: DynamicCache | None, rows: int, capacity: int, n_layers: int) -> DynamicCache:
    """A cache of `n_layers` preallocated layers for `rows` rows, each row holding `prefix` (computed at batch 1)."""
    cache = DynamicCache()
    layers = [PreallocatedLayer(capacity) for _ in range(n_layers)]
    if prefix is not None:
        for layer, source in zip(layers, prefix.layers, strict=True):
            assert isinstance(source, DynamicLayer) and source.keys is not None and source.values is not None
            layer.fill(source.keys, source.values, rows)
    cache.layers = list(layers)
    return cache


@dataclass
class Decoded:
    """One batch's new tokens per row, each up to and including its first stop token."""

    tokens: list[list[int]]


def decode(model: PreTrainedModel | PeftModel, ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache,
           max_new_tokens: int, stop: list[int]) -> Decoded:
    """Greedy continuations of `ids` (left-padded, `mask` 1 on real tokens, the cache already holding the first
    `cache.get_seq_length()` columns): generate()'s positions (the mask's running count) and argmax of fp32 logits,
    a row leaving the batch at its first stop token."""
    rows = ids.shape[0]
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    start = cache.get_seq_length()
    step_ids, step_pos = ids[:, start:], positions[:, start:]
    # as generate(): without padding the mask is dropped (causal attention alone), with padding it is kept
    keep_mask = bool((mask == 0).any())
    alive = torch.arange(rows, device=ids.device)
    out: list[list[int]] = [[] for _ in range(rows)]
    stops = torch.tensor(stop, device=ids.device)
    for _ in range(max_new_tokens):
        logits = model(input_ids=step_ids, attention_mask=mask if keep_mask else None, position_ids=step_pos,
                       past_key_values=cache, use_cache=True, logits_to_keep=1).logits
        nxt = logits[:, -1].to(dtype=torch.float32).argmax(-1)
        done = torch.isin(nxt, stops)
        for row, token in zip(alive.tolist(), nxt.tolist(), strict=True):
            out[row].append(token)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            alive, nxt, mask, step_pos = alive[keep], nxt[keep], mask[keep], step_pos[keep]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        step_ids, step_pos = nxt[:, None], step_pos[:, -1:] + 1
    return Decoded(out)
