"""Training data for OpenAI fine-tuning: the API's rules, token counts, the cost estimate and the upload file.

Token counts use tiktoken when it is installed and its encoding loads; otherwise a documented heuristic:
ceil(characters / 4) per message content, plus 3 tokens per message and 3 per example (the chat format's
overhead, as in OpenAI's cookbook `num_tokens_from_messages`). OpenAI bills tokens in the training file x
n_epochs; the validation file is not billed.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.chat import Example
from harness.managed import prices as openai_prices
from harness.managed.lifecycle import LABELS
from harness.scores import JSONDict
from harness.spec.plan import Variant

if TYPE_CHECKING:
    from tiktoken import Encoding

MIN_TRAIN_EXAMPLES = 10  # the API refuses a training file with fewer
OPENAI_ROLES = ("system", "user", "assistant")
TOKENS_PER_MESSAGE = 3
TOKENS_PER_EXAMPLE = 3


@functools.lru_cache(maxsize=8)
def _encoder(model_id: str) -> Encoding | None:
    """A tiktoken encoding for the model, or None (not installed, or its file cannot be fetched offline)."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        try:
            return tiktoken.encoding_for_model(model_id)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - offline: the encoding file is downloaded on first use
        return None


def token_counter(model_id: str) -> str:
    """Which counter `count_tokens` uses for this model: 'tiktoken:<encoding>' or 'chars/4'."""
    enc = _encoder(model_id)
    return f"tiktoken:{enc.name}" if enc is not None else "chars/4"


def count_tokens(messages: list[dict[str, str]], model_id: str = "gpt-4o-mini") -> int:
    """Tokens of one chat example as the fine-tuning API counts them (tiktoken, else chars/4)."""
    enc = _encoder(model_id)
    total = TOKENS_PER_EXAMPLE
    for m in messages:
        content = m.get("content") or ""
        total += TOKENS_PER_MESSAGE + (len(enc.encode(content)) if enc is not None else math.ceil(len(content) / 4))
    return total


def check_examples(train: list[Example], validation: list[Example], model_id: str) -> list[str]:
    """Every way the train/validation data breaks the fine-tuning API's rules, as 'file:line: problem'."""
    problems: list[str] = []
    if len(train) < MIN_TRAIN_EXAMPLES:
        problems.append(
            f"{train[0].source if train else 'data.train'}: {len(train)} training examples after the validation "
            f"split; OpenAI fine-tuning needs at least {MIN_TRAIN_EXAMPLES}. Add examples or lower data.validation."
        )
    limit = openai_prices.max_example_tokens(model_id)
    for e in [*train, *validation]:
        where = e.where
        roles = [m["role"] for m in e.messages]
        bad = sorted({r for r in roles if r not in OPENAI_ROLES})
        if bad:
            problems.append(f"{where}: role(s) {', '.join(bad)} not accepted in OpenAI chat fine-tuning data "
                            f"without tool calls; use {', '.join(OPENAI_ROLES)}")
        if "assistant" not in roles or roles[-1] != "assistant":
            problems.append(f"{where}: the last message must be the assistant's answer (it is {roles[-1]!r})")
        n = count_tokens(e.messages, model_id)
        if n > limit:
            problems.append(f"{where}: about {n:,} tokens; {model_id} accepts at most {limit:,} per example "
                            "(longer ones are truncated by the API). Shorten or split it.")
    return problems


@dataclass(frozen=True)
class VariantCost:
    """One variant's estimated training: billed tokens (training file x epochs) and their price, if known."""

    variant_id: str
    name: str
    epochs: int
    tokens: int
    usd: float | None

    def to_json(self) -> JSONDict:
        """As stored with the job (`estimate`)."""
        return asdict(self)


@dataclass
class CostEstimate:
    """Training tokens and cost of each OpenAI variant, before any job is created."""

    model_id: str
    examples: int
    tokens_per_epoch: int
    counter: str
    price_per_million: float | None
    price_source: str
    variants: list[VariantCost] = field(default_factory=list)
    provider: str = "OpenAI"

    @property
    def total_tokens(self) -> int:
        return sum(v.tokens for v in self.variants)

    @property
    def total_usd(self) -> float | None:
        return None if self.price_per_million is None else self.total_tokens * self.price_per_million / 1e6

    def lines(self) -> list[str]:
        """Human-readable lines for the terminal (dry run and the start of a sweep)."""
        price = (f"unknown price ({self.price_source})" if self.price_per_million is None
                 else f"${self.price_per_million:,.2f} per 1M training tokens ({self.price_source})")
        out = [(f"{self.provider} fine-tuning estimate for {self.model_id}: {self.examples} training examples, "
                f"~{self.tokens_per_epoch:,} tokens per epoch (counted with {self.counter}); {price}")]
        for v in self.variants:
            cost = "" if v.usd is None else f" = {_usd(v.usd)}"
            out.append(f"  {v.name} ({v.variant_id}): {v.epochs} epoch(s) x {self.tokens_per_epoch:,} "
                       f"= {v.tokens:,} billed tokens{cost}")
        if self.total_usd is not None:
            out.append(f"  total for {len(self.variants)} job(s): {self.total_tokens:,} tokens, ~{_usd(self.total_usd)} "
                       f"(an estimate; {self.provider} bills the tokens it counts)")
        return out


def _usd(x: float) -> str:
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def estimate_cost(model_id: str, train: list[Example], variants: list[Variant],
                  override: float | None = None, provider: str = "openai") -> CostEstimate:
    """Estimate billed tokens (training file x epochs) and USD for each variant; the
    price table holds for OpenAI only, so another provider's estimate has a price only when the spec gives one."""
    per_epoch = sum(count_tokens(e.messages, model_id) for e in train)
    priced = provider in openai_prices.PRICED_PROVIDERS
    price = openai_prices.price_per_million(model_id, override) if priced or override is not None else None
    if override is not None:
        source = "spec override"
    elif price is None:
        source = (openai_prices.table_scope(provider) if not priced else
                  f"{model_id} is not in the {openai_prices.table_scope(provider)}; set train.openai.price_per_million_tokens")
    else:
        source = openai_prices.table_scope(provider)
    est = CostEstimate(model_id, len(train), per_epoch, token_counter(model_id), price, source,
                       provider=LABELS.get(provider, provider))
    for v in variants:
        epochs = int(v.epochs or 1)
        tokens = per_epoch * epochs
        est.variants.append(VariantCost(v.variant_id, v.name, epochs, tokens,
                                        None if price is None else tokens * price / 1e6))
    return est


def upload_lines(examples: list[Example]) -> bytes:
    """The JSONL the API trains on; earlier assistant turns get weight 0, so only the final answer is
    learned, as in the local backend."""
    out = []
    for e in examples:
        msgs: list[dict[str, str | int]] = []
        for i, m in enumerate(e.messages):
            msg: dict[str, str | int] = {"role": m["role"], "content": m["content"]}
            if m["role"] == "assistant" and i < len(e.messages) - 1:
                msg["weight"] = 0
            msgs.append(msg)
        out.append(json.dumps({"messages": msgs}, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode("utf-8")


def write_upload(examples: list[Example], path: Path) -> Path:
    """Write the upload JSONL to `path` (kept in the run folder, so what was sent can be read back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(upload_lines(examples))
    return path
