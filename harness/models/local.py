"""A local transformers model behind the ScoringModel protocol: batched, left-padded generation; batched log-likelihoods.

Generation sorts prompts by token length (batches of similar length, results in the caller's order), computes the
prompts' shared prefix (system prompt, few-shot turns, the chat template's header) once per call, and decodes each
batch greedily from a copy of that prefix's KV cache (harness.models.greedy), with the same tokens as generate().

Every tensor it hands the model is created on the model's device. The batch size starts at the largest asked for
(`auto`: 64 on a GPU, 32 on the CPU) and halves whenever the device runs out of memory, redoing that batch, so a long
test set is scored completely with the largest batch that fits.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache

from harness.models.device import input_device
from harness.models.greedy import batch_cache, decode, decodes_here
from harness.models.lm_eval_types import LmEvalResults, TaskDict
from harness.models.protocol import Usage

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase
    from transformers.cache_utils import Cache

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
AUTO_BATCH = {"cuda": 64, "mps": 32, "cpu": 32}
MIN_SHARED = 8  # shortest shared prompt prefix worth caching (tokens)
PLAIN_KEPT = 8  # plain-text request lists whose results on untouched weights are kept (LocalModel._plain)
_PLAIN: dict[tuple[str, str, tuple[object, ...]], list[object]] = {}


class LocalModel:
    """Wraps a causal LM and its tokenizer for scoring; all work is batched."""

    supports_loglikelihood = True

    def __init__(self, model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase, *, name: str, batch_size: int | str = "auto", max_length: int = 2048,
                 on_batch: Callable[[int], None] | None = None, weights: str | None = None):
        self.model = model.eval()
        self.tok = tokenizer
        self.name = name
        self.batch_size = AUTO_BATCH.get(self.device.type, 16) if batch_size == "auto" else int(batch_size)
        self.max_length = max_length
        self.on_batch = on_batch
        self.prefix_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self._keeps_logits: bool | None = None  # whether the model's forward takes `logits_to_keep`
        self.usage = Usage()
        # what the loaded weights are, where the caller knows them to be a resolved model's untouched weights (base
        # and its prompt variants): plain-text log-likelihoods on them are computed once per process (_PLAIN)
        self.weights = None if weights is None else f"{weights}|{self.device}|{self.batch_size}|{max_length}"

    @property
    def device(self) -> torch.device:
        """Where the input embedding is (layers may sit on several GPUs, device_map="auto"); every input tensor is
        created there."""
        return input_device(self.model)

    def _batches(self, items: Sequence[T], run: Callable[[list[T]], None]) -> None:
        """Run `run` on consecutive batches of `items`; on out-of-memory halve the batch size and redo the batch."""
        start = 0
        while start < len(items):
            batch = list(items[start:start + self.batch_size])
            try:
                run(batch)
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("%s: out of memory at batch %d; retrying with %d", self.name, len(batch), self.batch_size)
                _free_memory(self.device)
                continue
            start += len(batch)

    def _left_padded(self, rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, attention mask) on the model's device, left-padded so every row's last token lines up."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def _chat(self, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
        return str(self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt))

    def _tick(self, n: int) -> None:
        if self.on_batch:
            self.on_batch(n)

    @torch.inference_mode()
    def generate(self, conversations: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
        t0 = time.perf_counter()
        prompts = [self._encode(self._chat(c, generation_prompt=True)) for c in conversations]
        produced = [0] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # batches of similar length: less padding
        out: list[str] = [""] * len(prompts)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        stop = [t for t in {self.tok.eos_token_id, self.tok.convert_tokens_to_ids("<|im_end|>")} if isinstance(t, int)]
        shared, cache = self._shared_prefix(prompts)
        here = decodes_here(self.model)
        n_layers = len(DynamicCache(config=self.model.config).layers) if here else 0

        def run(idx: list[int]) -> None:
            ids, mask = self._left_padded([prompts[i][len(shared):] for i in idx], pad)
            if cache is not None:  # [shared prefix][padding][rest]: positions come from the mask, so this is exact
                ids = torch.cat([torch.tensor([shared], device=self.device).expand(len(idx), -1), ids], dim=1)
                mask = torch.cat([torch.ones((len(idx), len(shared)), dtype=mask.dtype, device=self.device), mask], 1)
            if here:
                rows = decode(self.model, ids, mask, batch_cache(cache, len(idx), ids.shape[1] + max_new_tokens,
                                                                 n_layers), max_new_tokens, stop).tokens
            else:  # transformers' generate: a cache of another layout, or logits processors the model asks for
                extra: dict[str, Cache] = {}
                if cache is not None:
                    extra["past_key_values"] = copy.deepcopy(cache)
                    extra["past_key_values"].batch_repeat_interleave(len(idx))
                gen = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                          do_sample=False, pad_token_id=pad, eos_token_id=stop, use_cache=True, **extra)
                rows = gen[:, ids.shape[1]:].tolist()
            for row, i in enumerate(idx):
                text = self.tok.decode(rows[row], skip_special_tokens=True)
                assert isinstance(text, str)  # one sequence of ids decodes to one string
                out[i] = text.strip()
                # generated tokens up to and including the first stop token (the rest of the row is padding)
                produced[i] = next((j + 1 for j, t in enumerate(rows[row]) if t in stop), len(rows[row]))
            self._tick(len(idx))

        self._batches(order, run)
        self.usage.add(requests=len(prompts), prompt_tokens=sum(map(len, prompts)), output_tokens=sum(produced),
                       seconds=time.perf_counter() - t0)
        return out

    def _shared_prefix(self, prompts: list[list[int]]) -> tuple[list[int], DynamicCache | None]:
        """The tokens every prompt starts with (a system prompt and few-shot turns, a chat template's header) and
        their KV cache at batch size 1, computed once per call (a suite) and copied into each batch; ([], None) when
        under MIN_SHARED tokens are shared."""
        if len(prompts) < 2:
            return [], None
        first, last = min(prompts), max(prompts)  # the lexicographic extremes bound every common prefix
        n = 0
        while n < min(len(first), len(last)) - 1 and first[n] == last[n]:  # leave each prompt a token to feed
            n += 1
        if n < MIN_SHARED:
            return [], None
        ids = torch.tensor([first[:n]], device=self.device)
        try:  # only the cache is wanted: the LM head runs on one position where the model allows it
            out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)
        except TypeError:
            try:
                out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
            except TypeError:  # a model without a KV cache to hand over
                return [], None
        cache = getattr(out, "past_key_values", None)
        return (first[:n], cache) if isinstance(cache, DynamicCache) else ([], None)

    def _score_batches(self, items: Sequence[tuple[list[int], int]]) -> list[tuple[float, bool, int]]:
        """items: (tokens, n_target) -> sum log-prob of the last n_target tokens given the rest, greedy, n.

        Two savings, both exact for a causal LM: a request whose input is a prefix of another request's input reads
        its log-probs from that row (choices of one question share the context's forward pass), and the LM head and
        softmax run only on the last positions that some request of the batch needs (`logits_to_keep`).
        """
        reqs = []
        for tokens, n in items:
            seq = tokens[-(self.max_length + 1):]
            n_target = min(n, len(seq) - 1)
            reqs.append((tuple(seq[:-1]), seq[len(seq) - n_target:], n_target))
        # the tokens every request starts with, before any target (a chat template's header, a prompt variant's
        # system prompt and shots): their keys and values computed once, copied into each batch's cache
        shared, prefix = self._shared_prefix([list(r[0][:len(r[0]) - r[2]]) for r in reqs]) \
            if decodes_here(self.model) else ([], None)
        n_shared = len(shared) if prefix is not None else 0
        n_layers = len(prefix.layers) if prefix is not None else 0
        host = _prefix_hosts([r[0] for r in reqs])
        guests: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(reqs):
            guests.setdefault(host[r[0]], []).append(i)
        rows = sorted(guests, key=lambda h: (-len(h), h))
        results: list[tuple[float, bool, int]] = [(0.0, True, 0)] * len(items)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        def run(batch: list[tuple[int, ...]]) -> None:
            ids, mask = self._left_padded([h[n_shared:] for h in batch], pad)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as unpadded: each row's first token at position 0
            keep = max(1, *(len(h) - len(reqs[i][0]) + reqs[i][2] for h in batch for i in guests[h]))
            cache = None
            if prefix is not None:  # [shared prefix][padding][rest]: positions continue the prefix's
                cache = batch_cache(prefix, len(batch), n_shared + ids.shape[1], n_layers)
                positions = positions + n_shared
                mask = torch.cat([torch.ones((len(batch), n_shared), dtype=mask.dtype, device=mask.device), mask], 1)
            logprobs = F.log_softmax(self._logits(ids, mask, positions, keep, cache), dim=-1)
            at_row, at_pos, tokens, owner = _targets(batch, guests, reqs, keep)
            where = logprobs.device
            r, q = torch.tensor(at_row, device=where, dtype=torch.long), torch.tensor(at_pos, device=where, dtype=torch.long)
            tgt = torch.tensor(tokens, device=where, dtype=torch.long)
            picked = logprobs[r, q, tgt].tolist()
            greedy = (logprobs[r, q].argmax(-1) == tgt).tolist()
            for i in {i for h in batch for i in guests[h]}:
                results[i] = (0.0, True, reqs[i][2])
            for i, lp, g in zip(owner, picked, greedy, strict=True):
                total, ok, n = results[i]
                results[i] = (total + lp, ok and g, n)
            self._tick(sum(len(guests[h]) for h in batch))

        self._batches(rows, run)
        return results

    def _logits(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, keep: int,
                cache: DynamicCache | None = None) -> torch.Tensor:
        """fp32 logits of the last `keep` positions; the LM head runs on those alone where the model allows it.
        `cache`: a shared prefix's keys and values the rows continue (`mask` then covers prefix and rows)."""
        if cache is not None:
            return self.model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                              use_cache=True, logits_to_keep=keep).logits[:, -keep:].float()
        if self._keeps_logits is not False:
            try:
                out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep)
                self._keeps_logits = True
                return out.logits[:, -keep:].float()
            except TypeError:
                if self._keeps_logits:
                    raise
                self._keeps_logits = False
        return self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -keep:].float()

    def _plain(self, kind: str, requests: Sequence[object], compute: Callable[[], list[R]]) -> list[R]:
        """Plain-text requests (no chat prompt applies to them) on untouched weights scored earlier in this process:
        the earlier results, which a second forward pass would only repeat (a prompt variant's general suite is
        base's). Anything else is computed."""
        if self.weights is None:
            return compute()
        key = (self.weights, kind, tuple(requests))
        if key not in _PLAIN:
            while len(_PLAIN) >= PLAIN_KEPT:
                del _PLAIN[next(iter(_PLAIN))]
            _PLAIN[key] = list(compute())
        else:
            self._tick(len(requests))
        return cast("list[R]", list(_PLAIN[key]))  # stored by this method with this kind's results

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self._plain("loglikelihood", requests, lambda: self._loglikelihood(requests))

    def loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        return self._plain("rolling", texts, lambda: self._loglikelihood_rolling(texts))

    @torch.inference_mode()
    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        items = []
        for context, continuation in requests:
            # As lm-evaluation-harness: trailing spaces of the context move to the continuation, the whole
            # string is encoded once and split where the context's encoding ends.
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            whole = self._encode(context + continuation)
            ctx = self._encode(context) if context else []
            cont = whole[len(ctx):]
            if not context:
                whole = [self.prefix_id] + whole
            items.append((whole, len(cont)))
        return [(lp, greedy) for lp, greedy, _ in self._score_batches(items)]

    @torch.inference_mode()
    def _loglikelihood_rolling(self, texts: list[str]) -> list[tuple[float, int]]:
        items = []
        for text in texts:
            toks = self._encode(text)[: self.max_length]
            items.append(([self.prefix_id] + toks, len(toks)))
        return [(lp, n) for lp, _, n in self._score_batches(items)]

    def lm_eval(self, task_dict: TaskDict, samples: dict[str, list[int]] | None, *,
                batch_size: int | str | None, seed: int) -> LmEvalResults:
        """lm-evaluation-harness's evaluator on these weights as they are loaded (the `lm-eval` suite kind)."""
        from harness.models.lm_eval_model import evaluate_loaded

        return evaluate_loaded(self.model, self.tok, task_dict, samples,
                               batch_size=self.batch_size if batch_size is None else batch_size, seed=seed)

    @torch.inference_mode()
    def reference_nll(self, conversations: list[list[dict[str, str]]]) -> list[tuple[float, int]]:
        items = []
        for conv in conversations:
            prompt = self._encode(self._chat(conv[:-1], generation_prompt=True))
            full = self._encode(self._chat(conv, generation_prompt=False))
            items.append((full, max(1, len(full) - len(prompt))))
        return [(-lp, n) for lp, _, n in self._score_batches(items)]


def _prefix_hosts(inputs: list[tuple[int, ...]]) -> dict[tuple[int, ...], tuple[int, ...]]:
    """Each distinct input -> the longest input that starts with it (itself if none), found in one sorted pass:
    in lexicographic order, every sequence that extends `a` comes right after `a`."""
    ordered = sorted(set(inputs))
    host: dict[tuple[int, ...], tuple[int, ...]] = {}
    for i in range(len(ordered) - 1, -1, -1):
        a = ordered[i]
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        host[a] = host[nxt] if nxt is not None and nxt[:len(a)] == a else a
    return host


def _targets(batch: list[tuple[int, ...]], guests: dict[tuple[int, ...], list[int]],
             reqs: list[tuple[tuple[int, ...], list[int], int]], keep: int
             ) -> tuple[list[int], list[int], list[int], list[int]]:
    """Every target token of every request of a batch: (row, logits position, token, request index) lists, so the
    log-probs are gathered on the device in one indexing op."""
    at_row: list[int] = []
    at_pos: list[int] = []
    tokens: list[int] = []
    owner: list[int] = []
    for row, h in enumerate(batch):
        for i in guests[h]:
            inp, target, n_target = reqs[i]
            first = len(inp) - n_target - (len(h) - keep)  # the row's index of the first target's logits
            at_row += [row] * n_target
            at_pos += range(first, first + n_target)
            tokens += target
            owner += [i] * n_target
    return at_row, at_pos, tokens, owner


def _free_memory(device: torch.device) -> None:
    """Give the allocator's cached blocks back after an out-of-memory error."""
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()
