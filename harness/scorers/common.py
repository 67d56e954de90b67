"""Helpers shared by the probe suites: chat items read from a suite, compiled regexes, rate rows with Wilson CIs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness import stats
from harness.data.suites import Suite
from harness.errors import HarnessInputError
from harness.scores import JSONDict, Score


@dataclass
class ChatItem:
    """One probe: its id, the conversation to answer, an optional reference (a trailing assistant message)."""

    item_id: str
    messages: list[dict[str, str]]
    reference: str | None
    raw: JSONDict  # the item's JSONL line as written

    @property
    def prompt(self) -> str:
        return self.messages[-1]["content"]


def chat_items(suite: Suite) -> list[ChatItem]:
    """The suite's items as chats; every malformed line is reported with its file and line number."""
    where = suite.path(suite.items_file) if suite.items_file else suite.folder / "suite.yaml"
    rows = suite.items()
    if not rows:
        raise HarnessInputError(f"{where}: suite {suite.name!r} has no items; add JSONL lines "
                                '{"id": ..., "messages": [{"role": "user", "content": ...}]}')
    problems: list[str] = []
    items: list[ChatItem] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, start=1):
        msgs = row.get("messages")
        item_id = str(row.get("id", f"{suite.name}-{i}"))
        if not isinstance(msgs, list) or not msgs or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in msgs):
            problems.append(f"{where}:{i}: 'messages' must be a non-empty list of {{role, content}} objects")
            continue
        if item_id in seen:
            problems.append(f"{where}:{i}: id {item_id!r} is used twice; ids must be unique")
        seen.add(item_id)
        reference = None
        if msgs[-1]["role"] == "assistant":
            reference, msgs = msgs[-1]["content"], msgs[:-1]
        if not msgs or msgs[-1]["role"] != "user":
            problems.append(f"{where}:{i}: the conversation must end with a user message (then an optional answer)")
            continue
        items.append(ChatItem(item_id, msgs, reference, row))
    if problems:
        raise HarnessInputError(problems, title=f"suite {suite.name}")
    return items


def compile_regex(pattern: object, where: str) -> re.Pattern[str]:
    """A compiled regex, or a HarnessInputError that names the option and Python's complaint."""
    if not isinstance(pattern, str):
        raise HarnessInputError(f"{where}: a regex must be a string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise HarnessInputError(f"{where}: invalid regex {pattern!r} ({exc}); "
                                "quote it in single quotes in YAML and escape special characters") from None


def rate_row(metric: str, successes: int, n: int) -> Score:
    """A rate's score, with its Wilson 95% interval."""
    return Score.of(metric, stats.wilson_ci(successes, n), n)
