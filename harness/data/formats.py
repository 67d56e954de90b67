"""Data formats users have (chat, prompt/completion, Alpaca, ShareGPT): their fields, a mapping of those fields to a
file's columns (`data.columns`), detection where it is unambiguous, and conversion of one record to chat messages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from harness.data.sources import RecordSet
from harness.errors import did_you_mean
from harness.scores import JSONDict
from harness.spec.formats import FORMATS, REQUIRED, fields_of

SHAPES = {"chat": '{"messages": [{"role": ..., "content": ...}]}',
          "prompt-completion": '{"prompt": ..., "completion": ...} (text, or lists of messages)',
          "alpaca": '{"instruction": ..., "input": ..., "output": ...}',
          "sharegpt": '{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]}'}
HOW = {"chat": "messages as they are",
       "prompt-completion": "prompt -> user message (or its messages), completion -> assistant message (or its "
                            "messages)",
       "alpaca": "system -> system message, instruction (+ a blank line + input when not empty) -> user, "
                 "output -> assistant",
       "sharegpt": "conversations: from human/gpt/system -> role user/assistant/system, value -> content; "
                   "system -> a first system message"}
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
ALPACA_SEPARATOR = "\n\n"  # between instruction and input in the user message


def _matches(keys: set[str], columns: dict[str, str]) -> tuple[str, ...]:
    return tuple(f for f in FORMATS if all(columns.get(x, x) in keys for x in REQUIRED[f]))


def _needs(columns: dict[str, str]) -> str:
    return "; ".join(f"{f} needs {' and '.join(columns.get(x, x) for x in REQUIRED[f])}" for f in FORMATS)


def detect(rs: RecordSet, columns: dict[str, str]) -> tuple[str | None, str | None]:
    """(the format, None) where the fields decide it, else (None, a problem saying why and what to set). A table's
    columns decide; in JSON, every record's keys, and records of two formats make the file ambiguous."""
    fix = ("set data.format (harness data check: --format) to the format meant, and map your columns to its fields "
           "with data.columns (--column FIELD=COLUMN)")
    if rs.fields is not None:
        found = _matches(set(rs.fields), columns)
        if len(found) == 1:
            return found[0], None
        if not found:
            return None, (f"{rs.label}: cannot tell the data format from its columns ({', '.join(rs.fields)}): "
                          f"{_needs(columns)}. {fix[0].upper()}{fix[1:]}")
        return None, (f"{rs.label}: ambiguous data format: its columns ({', '.join(rs.fields)}) fit "
                      f"{' and '.join(found)}; {fix}")
    seen: dict[tuple[str, ...], list[int]] = {}
    keys: set[str] = set()
    for r in rs.records:
        if isinstance(r.value, dict):
            keys |= set(r.value)
            m = _matches(set(r.value), columns)
            if m:
                seen.setdefault(m, []).append(r.at)
    union = {f for m in seen for f in m}
    if len(union) == 1:
        return union.pop(), None
    if not union:
        if not rs.records:
            return "chat", None  # nothing readable: each line's own problem says why
        return None, (f"{rs.label}: cannot tell the data format: no {rs.unit} has the fields of one "
                      f"(fields seen: {', '.join(sorted(keys)) or 'none'}): {_needs(columns)}. "
                      f"{fix[0].upper()}{fix[1:]}")
    both = next(((m, at) for m, at in seen.items() if len(m) > 1), None)
    if both is not None:
        return None, (f"{rs.label}: ambiguous data format: {rs.unit} {both[1][0]} has the fields of "
                      f"{' and '.join(both[0])}; {fix}")
    parts = ", ".join(f"{m[0]} ({rs.unit}s {', '.join(map(str, at[:5]))}{', ...' if len(at) > 5 else ''})"
                      for m, at in seen.items())
    return None, f"{rs.label}: ambiguous data format: the file mixes {parts}; {fix}"


@dataclass
class FormatInfo:
    """How one data source was read: its kind, the format (detected or named) and the column mapping used."""

    source: str
    kind: str
    format: str
    detected: bool
    columns: dict[str, str] = field(default_factory=dict)
    examples: int = 0

    def describe(self) -> str:
        """One line: the format, how it was decided, how its fields became messages, and the column mapping."""
        used = {k: v for k, v in self.columns.items() if k in fields_of(self.format)}
        cols = f"; columns {', '.join(f'{k} <- {v!r}' for k, v in used.items())}" if used else ""
        how = "detected from its fields" if self.detected else "as data.format says"
        return f"{self.format} ({how}; {self.kind}): {HOW[self.format]}{cols}"

    def record(self, split: str) -> JSONDict:
        """The entry kept in runs.data_checks (severity 'info'), so the run names how each split was read."""
        return {"check": "data_format", "severity": "info", "file": self.source, "lines": [],
                "message": f"{split}: {self.examples} examples read from {self.source} as {self.describe()}",
                "split": split, "format": self.format, "detected": self.detected, "kind": self.kind,
                "columns": dict(self.columns)}


Converted = tuple[list[object], list[str]]  # the messages (still unchecked) and a label per message for errors


def convert(fmt: str, value: object, columns: dict[str, str], rs: RecordSet) -> Converted | str:
    """A record as chat messages and their labels, or a problem (without its location) when its fields are wrong."""
    col = {f: columns.get(f, f) for f in fields_of(fmt)}
    if not isinstance(value, dict) or any(value.get(col[f]) is None for f in REQUIRED[fmt]):
        return _missing(fmt, value, col, rs)
    if fmt == "chat":
        return _messages(_cell(value[col["messages"]], rs), col["messages"])
    if fmt == "prompt-completion":
        return _prompt_completion(_cell(value[col["prompt"]], rs), _cell(value[col["completion"]], rs))
    if fmt == "alpaca":
        return _alpaca(value, col)
    return _sharegpt(_cell(value[col["conversations"]], rs), value.get(col["system"]), col)


def _missing(fmt: str, value: object, col: dict[str, str], rs: RecordSet) -> str:
    absent = [f for f in REQUIRED[fmt] if not isinstance(value, dict) or value.get(col[f]) is None]
    names = " and ".join(f'"{col[f]}"' for f in absent)
    mapped = [f"{f} to {col[f]!r}" for f in absent if col[f] != f]
    note = f" (data.columns maps {', '.join(mapped)})" if mapped else ""
    if rs.unit == "line":
        return f"missing {names}{note}; each line is {SHAPES[fmt]}"
    return f"no value in column {names}{note}; {fmt} needs {' and '.join(col[f] for f in REQUIRED[fmt])} in every row"


def _cell(value: object, rs: RecordSet) -> object:
    """A CSV cell that holds a JSON list (messages, conversations) as that list; any other value as it is."""
    if rs.text_cells and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _messages(msgs: object, name: str) -> Converted | str:
    if not isinstance(msgs, list) or not msgs:
        return f'"{name}" must be a non-empty list'
    return list(msgs), [f"{name}[{j}]" for j in range(len(msgs))]


def _prompt_completion(prompt: object, completion: object) -> Converted | str:
    if isinstance(prompt, str) and isinstance(completion, str):
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], \
            ["prompt", "completion"]
    if isinstance(prompt, list) and isinstance(completion, list):
        p, c = _messages(prompt, "prompt"), _messages(completion, "completion")
        if isinstance(p, str):
            return p
        if isinstance(c, str):
            return c
        return [*p[0], *c[0]], [*p[1], *c[1]]
    kinds = f"{type(prompt).__name__} and {type(completion).__name__}"
    return ("prompt and completion are both text (standard) or both lists of messages (conversational, "
            f"[{{\"role\": ..., \"content\": ...}}]); got {kinds}")


def _text(v: object) -> str:
    """An optional field as text: '' when absent; a number as its digits."""
    return "" if v is None else v if isinstance(v, str) else str(v)


def _alpaca(value: dict[str, object], col: dict[str, str]) -> Converted:
    system, extra = _text(value.get(col["system"])), _text(value.get(col["input"]))
    instruction = value[col["instruction"]]
    user = f"{instruction}{ALPACA_SEPARATOR}{extra}" if isinstance(instruction, str) and extra.strip() else instruction
    msgs: list[object] = [{"role": "system", "content": system}] if system.strip() else []
    labels = ["system"] if msgs else []
    msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": value[col["output"]]}]
    return msgs, [*labels, "instruction" + (" + input" if extra.strip() else ""), "output"]


def _sharegpt(turns: object, system: object, col: dict[str, str]) -> Converted | str:
    if not isinstance(turns, list) or not turns:
        return f'"{col["conversations"]}" must be a non-empty list'
    msgs: list[object] = []
    labels: list[str] = []
    if isinstance(system, str) and system.strip():
        msgs, labels = [{"role": "system", "content": system}], ["system"]
    for j, t in enumerate(turns):
        where = f"{col['conversations']}[{j}]"
        if not isinstance(t, dict):
            return f"{where} is not an object"
        who = t.get(col["from"])
        if who not in SHAREGPT_ROLES:
            return (f"{where} has unknown {col['from']!r} {who!r}; allowed: {', '.join(SHAREGPT_ROLES)}"
                    f"{did_you_mean(str(who), list(SHAREGPT_ROLES))}")
        if SHAREGPT_ROLES[who] == "system" and msgs and j == 0 and labels == ["system"]:
            msgs, labels = [], []  # the conversation's own system turn wins over the system field
        msgs.append({"role": SHAREGPT_ROLES[who], "content": t.get(col["value"])})
        labels.append(where)
    return msgs, labels
