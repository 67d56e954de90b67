"""W&B run folders on disk: the `.wandb` transaction log (LevelDB log format of wandb's protobuf `Record`s), read
back into what a run holds: its config, history rows, summary, files, and whether it finished."""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.scores import JSONDict

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
FILE_HEADER = (b":W&B", 0xBEE1, 0)  # ident, magic, version written by wandb-core
_STARTED = re.compile(r"run-(\d{8}_\d{6})-")


@dataclass
class LocalRun:
    """A W&B run as its transaction log records it."""

    path: Path
    run_id: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: JSONDict = field(default_factory=dict)
    history: list[JSONDict] = field(default_factory=list)
    summary: JSONDict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    exit_code: int | None = None  # None: the run never finished

    @property
    def finished(self) -> bool:
        return self.exit_code is not None


def records(path: Path) -> Iterator[bytes]:
    """The payloads of a `.wandb` file, checksums verified; a torn tail (a killed writer) ends the scan."""
    data = path.read_bytes()
    if len(data) < HEADER or struct.unpack("<4sHB", data[:HEADER]) != FILE_HEADER:
        raise ValueError(f"{path}: not a W&B transaction log (bad header)")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's trailer: zero padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        if kind == 0 and length == 0:
            pos += left
            continue
        if len(chunk) < length or zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            return
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


class _Item(Protocol):
    """A config, history or summary item of wandb's protobuf `Record`: a key, or a nested key's parts."""

    key: str
    nested_key: Sequence[str]


def _key(item: _Item) -> str:
    return str(item.key) if item.key else ".".join(item.nested_key)


def read_run(path: Path) -> LocalRun:
    """A run's `.wandb` file decoded with wandb's own protobuf messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    run = LocalRun(path)
    for raw in records(path):
        rec = pb.Record()  # type: ignore[attr-defined]
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            run.run_id, run.project, run.group, run.job_type = r.run_id, r.project, r.run_group, r.job_type
            run.name, run.tags = r.display_name, list(r.tags)
            run.config.update({_key(u): json.loads(u.value_json) for u in r.config.update})
        elif kind == "config":
            run.config.update({_key(u): json.loads(u.value_json) for u in rec.config.update})
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            run.summary.update({_key(u): json.loads(u.value_json) for u in rec.summary.update})
            for r in rec.summary.remove:
                run.summary.pop(_key(r), None)
        elif kind == "files":
            run.files += [f.path for f in rec.files.files]
        elif kind == "exit":
            run.exit_code = rec.exit.exit_code
    return run


def local_runs(root: Path, run_id: str) -> list[LocalRun]:
    """Every run folder under `root/wandb` that holds run `run_id` (offline and online runs alike), oldest first."""
    base = root / "wandb"
    if not base.is_dir():
        return []
    logs = sorted(base.glob(f"*run-*-{run_id}/run-{run_id}.wandb"),
                  key=lambda p: (m.group(1) if (m := _STARTED.search(p.parent.name)) else "", p.parent.name))
    return [read_run(p) for p in logs]
