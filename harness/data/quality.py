"""What a tokenizer does to chat data: examples cut by max_seq_length, and content holding the chat template's own
special tokens (which would be tokenized into real turn markers and let an example forge turns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Truncation:
    """Examples longer than max_seq_length: the answer cut entirely (an error) or in part (a warning)."""

    max_len: int
    total: int
    whole: list[str] = field(default_factory=list)  # "file:line (prompt N tokens)"
    partial: list[str] = field(default_factory=list)  # "file:line"

    @property
    def share(self) -> float:
        return (len(self.whole) + len(self.partial)) / self.total if self.total else 0.0

    def errors(self, setting: str) -> list[str]:
        return [f"{w}: the prompt alone fills max_seq_length, so the assistant answer would be cut entirely and "
                f"teach nothing ({setting}); shorten the example or raise train.max_seq_length" for w in self.whole]

    def warnings(self) -> list[str]:
        if not self.partial:
            return []
        lines = ", ".join(self.partial[:20]) + (", ..." if len(self.partial) > 20 else "")
        return [(f"{len(self.partial)} of {self.total} examples are longer than max_seq_length {self.max_len} and "
                 f"their answers are cut: {lines}")]


def lengths(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[int, int]:
    """(prompt tokens, full tokens) the way training tokenizes an example (harness.train.local.tokenize_chat)."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:
        return len(p_ids), len(p_ids) + len(tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"])
    return len(p_ids), len(f_ids)


def truncation(tokenizer: Any, examples: list[Any], max_len: int) -> Truncation:  # examples: data.chat.Example
    out = Truncation(max_len, len(examples))
    for e in examples:
        n_prompt, n_full = lengths(tokenizer, e.messages)
        if n_prompt >= max_len:
            out.whole.append(f"{e.source}:{e.line} (prompt {n_prompt} tokens)")
        elif n_full > max_len:
            out.partial.append(f"{e.source}:{e.line}")
    return out


def special_tokens(tokenizer: Any) -> list[str]:
    """The tokenizer's special and added special tokens (turn markers, end of text, ...), longest first."""
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok))
    return sorted((t for t in found if t), key=len, reverse=True)


def special_token_lines(tokenizer: Any, examples: list[Any]) -> list[str]:
    """'file:line: messages[i] (role) holds special token(s) ...' for each message that holds one."""
    markers = special_tokens(tokenizer)
    out = []
    for e in examples:
        for i, m in enumerate(e.messages):
            hits = [t for t in markers if t in m["content"]]
            if hits:
                out.append(f"{e.source}:{e.line}: messages[{i}] ({m['role']}) holds the tokenizer's special "
                           f"token(s) {', '.join(hits)}, which would become real turn markers")
    return out
