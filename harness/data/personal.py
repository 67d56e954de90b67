"""Personal data in chat examples: e-mail addresses, phone numbers and payment card numbers (Luhn-checked),
counted per kind with their lines; the values themselves are only ever shown masked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.data.chat import Example

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# 13 to 19 digits, optionally grouped by single spaces or hyphens; a Luhn check keeps only card numbers
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
PHONES = (
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\w])"),  # international: +44 20 7946 0958
    re.compile(r"(?<![\w(])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])"),  # (555) 123-4567, 555-123-4567
    re.compile(r"(?<![\w+])0\d{1,4}[ /-]\d{2,8}(?:[ -]\d{2,4}){0,3}(?![\w])"),  # national, leading 0: 020 7946 0958
)
KINDS = {"email": "e-mail address", "phone": "phone number", "card": "payment card number"}


def luhn(digits: str) -> bool:
    """The Luhn checksum of a card number holds."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def mask(kind: str, value: str) -> str:
    """The value with most of it starred: j***@e***.com, **** **** **** 1111, +** ** **** **58."""
    if kind == "email":
        local, _, domain = value.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***.{tld}"
    keep = 4 if kind == "card" else 2
    n_digits = sum(c.isdigit() for c in value)
    out, seen = [], 0
    for c in value:
        if c.isdigit():
            seen += 1
            out.append(c if seen > n_digits - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def find(text: str) -> list[tuple[str, str]]:
    """(kind, value) for each e-mail address, card number and phone number in `text`, in that order of search;
    what one kind matched is blanked before the next searches."""
    found: list[tuple[str, str]] = []

    def take(kind: str, m: re.Match[str]) -> str:
        found.append((kind, m.group(0)))
        return " " * len(m.group(0))

    text = EMAIL.sub(lambda m: take("email", m), text)
    text = CARD.sub(lambda m: take("card", m) if _is_card(m.group(0)) else m.group(0), text)
    for pattern in PHONES:
        text = pattern.sub(lambda m: take("phone", m) if 7 <= _digits(m.group(0)) <= 15 else m.group(0), text)
    return found


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _is_card(s: str) -> bool:
    digits = re.sub(r"\D", "", s)
    return 13 <= len(digits) <= 19 and luhn(digits)


@dataclass
class Found:
    """Personal data in a set of examples: per kind, how many values, on which lines, a few of them masked."""

    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    lines: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in KINDS})
    masked: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in KINDS})


def scan(examples: list[Example]) -> Found:
    """Every message of every example searched for personal data."""
    out = Found()
    for e in examples:
        for kind, value in find("\n".join(m["content"] for m in e.messages)):
            out.counts[kind] += 1
            if e.line not in out.lines[kind]:
                out.lines[kind].append(e.line)
            if len(out.masked[kind]) < 3:
                out.masked[kind].append(mask(kind, value))
    return out
