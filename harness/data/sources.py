"""Where data comes from: JSON Lines or a JSON array, Parquet, CSV/TSV, a `datasets` folder written by
`save_to_disk`, or a Hub dataset (`hf:owner/name[:split]`), read as records that each keep their location."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.errors import HarnessInputError
from harness.textfiles import not_utf8

HUB_PREFIX = "hf:"
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"), "test": ("test",)}
_SPLIT = re.compile(r"^[A-Za-z0-9_.-]+$")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
Unit = Literal["line", "row"]


def location(source: str, n: int, unit: str = "line") -> str:
    """'FILE:LINE' for a text file, 'SOURCE:row N' for a table or dataset (row N as `dataset[N]`, from 0)."""
    return f"{source}:{n}" if unit == "line" else f"{source}:row {n}"


@dataclass
class Record:
    """One raw row or line: its value (None where it could not be read) and its line (from 1) or row (from 0)."""

    value: object  # a JSON value, or a table's row (column -> cell); the format's conversion checks its shape
    at: int


@dataclass
class RecordSet:
    """The records of one data source, how to name their locations, and what could not be read at all."""

    label: str  # the file, FOLDER:split or hf:owner/name:split, as locations print it
    kind: str  # jsonl, json, parquet, csv, datasets, hub
    unit: Unit
    records: list[Record] = field(default_factory=list)
    fields: list[str] | None = None  # the columns of a table (None for JSON, whose records each have their own keys)
    problems: list[str] = field(default_factory=list)
    text_cells: bool = False  # CSV: a field that holds a list arrives as JSON text

    def where(self, r: Record) -> str:
        return location(self.label, r.at, self.unit)


@dataclass(frozen=True)
class DataLocation:
    """A data path as written: a file, a `datasets` folder with an optional split, or a Hub dataset."""

    path: Path | None  # None for the Hub
    hub: str | None = None  # owner/name
    split: str | None = None  # FOLDER:split or hf:owner/name:split

    @property
    def kind(self) -> str:
        if self.hub is not None:
            return "hub"
        assert self.path is not None
        if self.path.is_dir():
            return "datasets"
        suffix = self.path.suffix.lower()
        return {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv", ".json": "json"}.get(suffix,
                                                                                                           "jsonl")


def hub_location(value: str) -> DataLocation:
    """`hf:owner/name` or `hf:owner/name:split`."""
    rest = value[len(HUB_PREFIX):]
    name, _, split = rest.partition(":")
    if not _HUB_NAME.match(name) or (split and not _SPLIT.match(split)):
        raise HarnessInputError(f"{value!r} is not a Hub dataset; write hf:owner/name or hf:owner/name:split "
                                "(e.g. hf:tatsu-lab/alpaca:train)")
    return DataLocation(None, name, split or None)


def split_suffix(value: str, resolve: Callable[[str], Path]) -> tuple[str, str | None]:
    """(path, split) of 'FOLDER:split' when FOLDER (through `resolve`) is a folder and the whole value is not a
    path; else (value, None)."""
    if ":" not in value or Path(resolve(value)).exists():
        return value, None
    base, split = value.rsplit(":", 1)
    if base and _SPLIT.match(split) and Path(resolve(base)).is_dir():
        return base, split
    return value, None


def parse_location(value: str, base: Path | None = None) -> DataLocation:
    """A data path from the command line (relative to `base`, default the working directory)."""
    if value.startswith(HUB_PREFIX):
        return hub_location(value)
    root = base or Path.cwd()
    path, split = split_suffix(value, lambda v: root / v)
    return DataLocation(Path(path) if base is None else root / path, None, split)  # as given, in messages


def read_records(loc: DataLocation, role: str) -> RecordSet:
    """Every record of `loc`; `role` (train, validation or test) picks the split of a `datasets` folder or Hub
    dataset when the path names none."""
    kind = loc.kind
    if kind == "hub":
        return _hub(loc, role)
    assert loc.path is not None
    path = loc.path
    if kind == "datasets":
        return _disk(path, loc.split, role)
    if loc.split is not None:
        return RecordSet(f"{path}:{loc.split}", kind, "row", problems=[
            f"{path}:{loc.split}: ':{loc.split}' names a split, and {path} is not a datasets folder"])
    if not path.is_file():
        return RecordSet(str(path), kind, "line", problems=[f"{path}: no such data file"])
    if kind == "parquet":
        return _parquet(path)
    if kind == "csv":
        return _csv(path)
    return _json(path)


def _json(path: Path) -> RecordSet:
    """JSON Lines (one object a line), or a .json file holding one array of objects (each located by its line)."""
    raw = path.read_bytes()
    if path.suffix.lower() == ".json" and raw.lstrip()[:1] == b"[":
        return _json_array(path, raw)
    out = RecordSet(str(path), "jsonl", "line")
    for i, bline in enumerate(raw.split(b"\n"), start=1):
        if not bline.strip():
            continue
        where = f"{path}:{i}"
        try:
            text = bline.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.problems.append(not_utf8(bline, where, exc))
            continue
        try:
            out.records.append(Record(json.loads(text), i))
        except json.JSONDecodeError as exc:
            out.problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
    return out


def _json_array(path: Path, raw: bytes) -> RecordSet:
    out = RecordSet(str(path), "json", "line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.problems.append(not_utf8(raw, str(path), exc))
        return out
    decoder, ws = json.JSONDecoder(), re.compile(r"\s*")
    pos = ws.match(text, text.index("[") + 1).end()  # type: ignore[union-attr]
    while pos < len(text) and text[pos] != "]":
        line = text.count("\n", 0, pos) + 1
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            out.problems.append(f"{path}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); the rest of "
                                "the array is not read")
            return out
        out.records.append(Record(value, line))
        pos = ws.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == ",":
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        elif pos < len(text) and text[pos] != "]":
            out.problems.append(f"{path}:{text.count(chr(10), 0, pos) + 1}: invalid JSON (expected ',' or ']' "
                                "between array items); the rest of the array is not read")
            return out
    return out


def _parquet(path: Path) -> RecordSet:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        return RecordSet(str(path), "parquet", "row", problems=[f"{path}: not a readable Parquet file ({exc})"])
    return _rows(str(path), "parquet", table.column_names, table.to_pylist())


def _csv(path: Path) -> RecordSet:
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        return RecordSet(str(path), "csv", "row", problems=[
            f"{path}: not a readable {'TSV' if sep == chr(9) else 'CSV'} file with a header row ({exc})"])
    out = _rows(str(path), "csv", [str(c) for c in frame.columns], frame.to_dict("records"))
    out.text_cells = True
    return out


def _rows(label: str, kind: str, columns: list[str], rows: list[dict[str, object]]) -> RecordSet:
    return RecordSet(label, kind, "row", [Record(r, i) for i, r in enumerate(rows)], columns)


def _pick_split(splits: list[str], role: str, where: str, hint: str) -> str:
    """The split named after the path's role in the spec (train, validation or test); raise when there is none."""
    for name in SPLIT_NAMES.get(role, (role,)):
        if name in splits:
            return name
    raise HarnessInputError(f"{where}: no split for {role} (it has {', '.join(splits) or 'none'}); name one as {hint}")


def _disk(path: Path, split: str | None, role: str) -> RecordSet:
    """A Dataset or DatasetDict folder written by `save_to_disk`."""
    if not (path / "dataset_dict.json").is_file() and not (path / "state.json").is_file():
        return RecordSet(str(path), "datasets", "row", problems=[
            f"{path}: a folder, but not one written by datasets' save_to_disk (no dataset_dict.json or state.json); "
            "point at a data file (JSONL, JSON, Parquet, CSV) or such a folder"])
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as exc:
        return RecordSet(str(path), "datasets", "row", problems=[
            f"{path}: a save_to_disk folder that cannot be read ({exc}); save it again"])
    if isinstance(loaded, datasets.DatasetDict):
        try:
            name = split or _pick_split(list(loaded), role, str(path), f"{path}:SPLIT")
        except HarnessInputError as exc:
            return RecordSet(str(path), "datasets", "row", problems=exc.problems)
        if name not in loaded:
            return RecordSet(f"{path}:{name}", "datasets", "row", problems=[
                f"{path}: no split {name!r}; it has {', '.join(loaded)}"])
        ds, label = loaded[name], f"{path}:{name}"
    elif split is not None:
        return RecordSet(f"{path}:{split}", "datasets", "row", problems=[
            f"{path}: holds one Dataset, not a DatasetDict, so it has no split {split!r}; drop ':{split}'"])
    else:
        ds, label = loaded, str(path)
    return _rows(label, "datasets", list(ds.column_names), ds.to_list())


def _hub(loc: DataLocation, role: str) -> RecordSet:
    """A Hub dataset through datasets.load_dataset (its cache first; never running a loading script)."""
    import datasets

    name = loc.hub or ""
    split = loc.split or SPLIT_NAMES.get(role, (role,))[0]
    label = f"{HUB_PREFIX}{name}:{split}"
    try:
        ds = datasets.load_dataset(name, split=split)
    except (ConnectionError, TimeoutError) as exc:
        return RecordSet(label, "hub", "row", problems=[
            f"{HUB_PREFIX}{name}: the Hugging Face Hub cannot be reached and the dataset is not in the local cache "
            f"({exc}). Download it where the Hub is reachable and save it with "
            f"datasets.load_dataset({name!r}).save_to_disk('data/NAME'), or export it to JSONL/Parquet, then point "
            "the spec at that folder or file (e.g. data.train: data/NAME:train)"])
    except ValueError as exc:
        if "split" not in str(exc).lower():
            raise
        return RecordSet(label, "hub", "row", problems=[
            f"{HUB_PREFIX}{name}: {exc}; name the split as {HUB_PREFIX}{name}:SPLIT"])
    except FileNotFoundError as exc:  # datasets' DatasetNotFoundError: unknown, private or gated
        return RecordSet(label, "hub", "row", problems=[
            f"{HUB_PREFIX}{name}: not found on the Hub ({exc}); check the name, or log in (hf auth login) for a "
            "private or gated dataset"])
    except RuntimeError as exc:  # a loading script: code from the Hub, which the harness never runs
        if "script" not in str(exc).lower():
            raise
        return RecordSet(label, "hub", "row", problems=[
            f"{HUB_PREFIX}{name}: built by a loading script ({exc}); the harness runs no code from the Hub. Use a "
            "revision of the dataset with data files (Parquet, JSON), or load it yourself and save_to_disk"])
    if not isinstance(ds, datasets.Dataset):
        return RecordSet(label, "hub", "row", problems=[f"{label}: not a map-style dataset; name one split"])
    return _rows(label, "hub", list(ds.column_names), ds.to_list())
