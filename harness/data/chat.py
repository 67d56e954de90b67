"""Chat JSONL: load and validate (every problem with file:line), split, fingerprint. Data-quality checks
(`harness data check`, a sweep's preflight) live in harness.data.quality."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessInputError
from harness.textfiles import decode

ROLES = ("system", "user", "assistant", "tool")
MIN_EXAMPLES = 10


@dataclass
class Example:
    """One chat example; `line` is its 1-based line in `source`."""

    messages: list[dict[str, str]]
    source: str
    line: int

    @property
    def prompt_messages(self) -> list[dict[str, str]]:
        """Everything before the final assistant message."""
        return self.messages[:-1]

    @property
    def reference(self) -> str:
        return self.messages[-1]["content"]

    @property
    def example_id(self) -> str:
        return f"{Path(self.source).stem}:{self.line}"

    def key(self) -> str:
        """The normalized text that fingerprints and duplicate checks compare."""
        return json.dumps([[m["role"], m["content"].strip()] for m in self.messages], ensure_ascii=False)


def validate_lines(path: Path, *, min_examples: int = MIN_EXAMPLES, need_assistant: bool = True
                   ) -> tuple[list[Example], list[str]]:
    """Parse a chat JSONL file; return the examples and a list of 'file:line: problem' strings."""
    problems: list[str] = []
    examples: list[Example] = []
    raw = path.read_bytes()
    for i, bline in enumerate(raw.split(b"\n"), start=1):
        if not bline.strip():
            continue
        where = f"{path}:{i}"
        try:
            text = decode(bline, where)
        except HarnessInputError as exc:
            problems += exc.problems
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict) or "messages" not in obj:
            problems.append(f'{where}: missing "messages"; each line is {{"messages": [{{"role": ..., "content": ...}}]}}')
            continue
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not msgs:
            problems.append(f'{where}: "messages" must be a non-empty list')
            continue
        bad = False
        for j, m in enumerate(msgs):
            if not isinstance(m, dict):
                problems.append(f"{where}: messages[{j}] is not an object")
                bad = True
                continue
            role = m.get("role")
            if role not in ROLES:
                problems.append(f"{where}: messages[{j}] has unknown role {role!r}; allowed: {', '.join(ROLES)}")
                bad = True
            content = m.get("content")
            if not isinstance(content, str) or not content.strip():
                problems.append(f"{where}: messages[{j}] ({role}) has empty content")
                bad = True
        if bad:
            continue
        if need_assistant and msgs[-1].get("role") != "assistant":
            problems.append(f"{where}: no final assistant message (the last message is {msgs[-1].get('role')!r})")
            continue
        examples.append(Example([{"role": m["role"], "content": m["content"]} for m in msgs], str(path), i))
    if len(examples) < min_examples and not problems:
        problems.append(f"{path}: {len(examples)} valid examples; at least {min_examples} are needed")
    return examples, problems


def load_examples(path: Path, *, min_examples: int = MIN_EXAMPLES) -> list[Example]:
    if not path.is_file():
        raise HarnessInputError(f"{path}: no such data file")
    examples, problems = validate_lines(path, min_examples=min_examples)
    if problems:
        raise HarnessInputError(problems, title=f"data file {path} is invalid")
    return examples


def fingerprint(examples: list[Example]) -> str:
    """sha256 of the normalized examples, in order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(e.key().encode())
        h.update(b"\n")
    return h.hexdigest()


def split(examples: list[Example], fraction: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """A seeded split into (train, validation); validation gets round(fraction * n), at least 1."""
    idx = list(range(len(examples)))
    random.Random(seed).shuffle(idx)
    n_val = max(1, round(fraction * len(examples)))
    val = sorted(idx[:n_val])
    tr = sorted(idx[n_val:])
    return [examples[i] for i in tr], [examples[i] for i in val]


@dataclass
class DataBundle:
    """The three splits of an experiment and their fingerprints."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
    fingerprints: dict[str, str]
    paths: dict[str, str]


def load_bundle(spec: Any, *, need_train: bool = True) -> DataBundle:
    """Load train/validation/test for a spec, reporting every problem of every file at once."""
    problems: list[str] = []
    loaded: dict[str, list[Example]] = {}
    paths: dict[str, str] = {}
    wanted = {"test": spec.data.test}
    if need_train and spec.data.train:
        wanted["train"] = spec.data.train
    if isinstance(spec.data.validation, str) and "train" in wanted:
        wanted["validation"] = spec.data.validation
    for name, rel in wanted.items():
        try:
            path = spec.resolve_path(rel, f"data.{name}")
        except HarnessInputError as exc:
            problems += exc.problems
            continue
        paths[name] = str(path)
        if not path.is_file():
            problems.append(f"{spec.source_path}: key 'data.{name}': no such file {path}")
            continue
        examples, errs = validate_lines(path)
        problems += errs
        loaded[name] = examples
    if problems:
        raise HarnessInputError(problems, title="the experiment's data is invalid")
    train = loaded.get("train", [])
    if "validation" in loaded:
        validation = loaded["validation"]
    elif train:
        train, validation = split(train, float(spec.data.validation), seed=0)
    else:
        validation = []
    fps = {"train": fingerprint(train), "validation": fingerprint(validation), "test": fingerprint(loaded["test"])}
    if not train:
        fps.pop("train")
        fps.pop("validation")
    return DataBundle(train, validation, loaded["test"], fps, paths)

