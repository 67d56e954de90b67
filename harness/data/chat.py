"""Chat examples: load and validate (every problem with file:line or source:row N) from any supported source and
format (harness.data.sources, harness.data.formats), split, fingerprint. Data-quality checks (`harness data check`,
a sweep's preflight) live in harness.data.quality."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.data.formats import FormatInfo, convert, detect
from harness.data.sources import HUB_PREFIX, DataLocation, hub_location, location, read_records, split_suffix
from harness.errors import HarnessInputError
from harness.scores import JSONDict
from harness.spec.formats import REQUIRED

if TYPE_CHECKING:
    from harness.spec.schema import ExperimentSpec

ROLES = ("system", "user", "assistant", "tool")
MIN_EXAMPLES = 10


@dataclass
class Example:
    """One chat example; `line` is its 1-based line in `source` (`unit` 'line'), or its row from 0 (`unit` 'row',
    as `dataset[N]`) in a table or `datasets` split."""

    messages: list[dict[str, str]]
    source: str
    line: int
    unit: str = "line"

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

    @property
    def where(self) -> str:
        """'FILE:LINE', or 'SOURCE:row N' for a table or dataset."""
        return location(self.source, self.line, self.unit)

    @property
    def at(self) -> str:
        """'line 3' or 'row 3'."""
        return f"{self.unit} {self.line}"

    def key(self) -> str:
        """The normalized text that fingerprints and duplicate checks compare."""
        return json.dumps([[m["role"], m["content"].strip()] for m in self.messages], ensure_ascii=False)


def check_messages(msgs: list[object], labels: list[str], where: str, *, need_assistant: bool = True
                   ) -> tuple[list[dict[str, str]] | None, list[str]]:
    """The messages as {role, content} pairs, or None and every problem as 'where: label ...'."""
    problems: list[str] = []
    checked: list[dict[str, str]] = []
    for m, label in zip(msgs, labels, strict=True):
        if not isinstance(m, dict):
            problems.append(f"{where}: {label} is not an object")
            continue
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            problems.append(f"{where}: {label} has unknown role {role!r}; allowed: {', '.join(ROLES)}")
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            problems.append(f"{where}: {label} ({role}) holds {type(content).__name__}, not text; write it as a string")
        elif not content or not content.strip():
            problems.append(f"{where}: {label} ({role}) has empty content")
        elif isinstance(role, str):
            checked.append({"role": role, "content": content})
    if problems:
        return None, problems
    if need_assistant and checked[-1]["role"] != "assistant":
        return None, [f"{where}: no final assistant message (the last message is {checked[-1]['role']!r})"]
    return checked, []


@dataclass
class Loaded:
    """The examples of one data source, every problem with its location, and how the source was read."""

    examples: list[Example]
    problems: list[str]
    info: FormatInfo | None


def read_examples(loc: DataLocation, *, role: str = "train", fmt: str = "auto", columns: dict[str, str] | None = None,
                  need_assistant: bool = True, min_examples: int = MIN_EXAMPLES) -> Loaded:
    """Read any supported source in any format (detected for 'auto') as chat examples that keep their locations."""
    cols = dict(columns or {})
    try:
        rs = read_records(loc, role)
    except HarnessInputError as exc:
        return Loaded([], exc.problems, None)
    problems = list(rs.problems)
    detected = fmt == "auto"
    if detected:
        found, why = detect(rs, cols)
        if found is None:
            return Loaded([], [*problems, *([why] if why else [])], None)
        fmt = found
    if rs.fields is not None and rs.records:
        absent = [cols.get(f, f) for f in REQUIRED[fmt] if cols.get(f, f) not in rs.fields]
        if absent:
            return Loaded([], [*problems, f"{rs.label}: no column {' or '.join(map(repr, absent))} for format {fmt} "
                               f"(its columns: {', '.join(rs.fields)}); name the columns to read with data.columns "
                               "(--column FIELD=COLUMN), e.g. {" + ", ".join(
                                   f"{f}: COLUMN" for f in REQUIRED[fmt]) + "}"], None)
    examples: list[Example] = []
    for r in rs.records:
        where = rs.where(r)
        out = convert(fmt, r.value, cols, rs)
        if isinstance(out, str):
            problems.append(f"{where}: {out}")
            continue
        msgs, errs = check_messages(*out, where, need_assistant=need_assistant)
        problems += errs
        if msgs is not None:
            examples.append(Example(msgs, rs.label, r.at, rs.unit))
    if len(examples) < min_examples and not problems:
        problems.append(f"{rs.label}: {len(examples)} valid examples; at least {min_examples} are needed")
    info = FormatInfo(rs.label, rs.kind, fmt, detected, {k: v for k, v in cols.items() if k != v}, len(examples))
    return Loaded(examples, problems, info)


def validate_lines(path: Path, *, min_examples: int = MIN_EXAMPLES, need_assistant: bool = True
                   ) -> tuple[list[Example], list[str]]:
    """Parse a data file (chat JSONL, or any format detected); return the examples and 'file:line: problem'
    strings."""
    got = read_examples(DataLocation(path), min_examples=min_examples, need_assistant=need_assistant)
    return got.examples, got.problems


def load_examples(path: Path, *, min_examples: int = MIN_EXAMPLES) -> list[Example]:
    if not path.exists():
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
    """The three splits of an experiment, their fingerprints, and how each source was read."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]
    fingerprints: dict[str, str]
    paths: dict[str, str]
    formats: dict[str, FormatInfo] = field(default_factory=dict)

    def format_records(self) -> list[JSONDict]:
        """One 'data_format' entry per split read from a source, for runs.data_checks."""
        return [info.record(name) for name, info in self.formats.items()]


def spec_location(spec: ExperimentSpec, value: str, key: str) -> DataLocation:
    """A data path of the spec: hf:owner/name[:split], or a path inside the spec's folder (FOLDER:split for a
    `datasets` folder)."""
    if value.startswith(HUB_PREFIX):
        try:
            return hub_location(value)
        except HarnessInputError as exc:
            raise HarnessInputError(f"{spec.source_path}: key '{key}': {exc.problems[0]}") from None
    base, split_name = split_suffix(value, lambda v: spec.resolve_path(v, key))
    return DataLocation(spec.resolve_path(base, key), None, split_name)


def load_bundle(spec: ExperimentSpec, *, need_train: bool = True) -> DataBundle:
    """Load train/validation/test for a spec, reporting every problem of every source at once."""
    problems: list[str] = []
    loaded: dict[str, list[Example]] = {}
    paths: dict[str, str] = {}
    formats: dict[str, FormatInfo] = {}
    wanted = {"test": spec.data.test}
    if need_train and spec.data.train:
        wanted["train"] = spec.data.train
    if isinstance(spec.data.validation, str) and "train" in wanted:
        wanted["validation"] = spec.data.validation
    for name, rel in wanted.items():
        try:
            loc = spec_location(spec, rel, f"data.{name}")
        except HarnessInputError as exc:
            problems += exc.problems
            continue
        paths[name] = str(loc.path) if loc.path is not None else rel
        if loc.path is not None and not loc.path.exists():
            problems.append(f"{spec.source_path}: key 'data.{name}': no such file {loc.path}")
            continue
        got = read_examples(loc, role=name, fmt=spec.data.format, columns=spec.data.columns)
        problems += got.problems
        loaded[name] = got.examples
        if got.info is not None:
            formats[name] = got.info
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
    return DataBundle(train, validation, loaded["test"], fps, paths, formats)
