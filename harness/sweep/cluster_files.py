"""Where a Ray task works and how its weights reach the driver: the driver's own folder where the node sees it, a
shared `storage:` path, or a node-local scratch folder whose adapter comes back through Ray's object store."""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import HarnessInputError
from harness.results import VariantResult

ADAPTER_METHODS = ("lora", "qlora")  # their artifact is an adapter (megabytes): it travels through the object store
ATTEMPTS = "attempts.jsonl"  # one line per try of a variant, in its folder: pid, node, time


@dataclass(frozen=True)
class WorkFolder:
    """The runs folder a task trains in, and how it relates to the driver's."""

    path: Path
    shared: bool  # the driver's own runs folder (same machine, or a file system both see)
    on_storage: bool = False  # the spec's `storage:` path, which every node reaches


@dataclass
class NodeResult:
    """What a Ray task sends back: the variant's result, and an adapter's files where the driver cannot read them."""

    result: VariantResult
    shipped: dict[str, bytes] | None = None  # artifact file (relative path) -> content, to write beside the store
    note: str | None = None  # what the driver should tell the user about the artifact


def is_url(location: str | None) -> bool:
    return location is not None and "://" in location


def check_storage(storage: str | None) -> None:
    """An fsspec URL needs fsspec (and its protocol's package) on the driver; refuse before anything runs."""
    if not is_url(storage):
        return
    try:
        import fsspec
    except ImportError:
        raise HarnessInputError(f"storage: {storage!r} is a URL, which needs fsspec: pip install fsspec (and the "
                                "protocol's package, e.g. s3fs for s3://); or use a shared path") from None
    try:
        fsspec.filesystem(str(storage).split("://", 1)[0])
    except (ImportError, ValueError) as exc:
        raise HarnessInputError(f"storage: {storage!r}: {exc}") from None


def work_folder(driver_runs: str, marker: str, storage: str | None) -> WorkFolder:
    """Where this node trains: the driver's runs folder if the driver's marker file is visible here, else the
    shared `storage:` path, else a scratch folder on this node (a retry on this node resumes from it)."""
    if Path(marker).is_file():
        return WorkFolder(Path(driver_runs), shared=True)
    if storage is not None and not is_url(storage) and Path(storage).is_dir():
        return WorkFolder(Path(storage) / "runs", shared=False, on_storage=True)
    return WorkFolder(Path(tempfile.gettempdir()) / "harness-runs", shared=False)


def record_attempt(folder: Path, variant_id: str, node: str) -> int:
    """Append this try to the variant's attempts file; returns which try it is (1, 2, ...)."""
    path = folder / variant_id / ATTEMPTS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps({"pid": os.getpid(), "node": node, "at": time.time()}) + "\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def attempts(folder: Path, variant_id: str) -> list[dict[str, object]]:
    """The tries recorded for a variant (empty where the folder is not visible from here)."""
    path = folder / variant_id / ATTEMPTS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def pack(result: VariantResult, folder: WorkFolder, storage: str | None) -> NodeResult:
    """On the worker: an adapter trained outside the driver's folder is read into the reply; full weights go to a
    `storage:` URL (a storage path already holds them); otherwise they stay on this node and the reply says so."""
    artifact = result.variant.artifact
    if folder.shared or folder.on_storage or not result.finished or not artifact or not Path(artifact).is_dir():
        return NodeResult(result)
    where = Path(artifact)
    files = sorted(f for f in where.rglob("*") if f.is_file())
    if result.variant.method in ADAPTER_METHODS:
        return NodeResult(result, {str(f.relative_to(where)): f.read_bytes() for f in files})
    if is_url(storage):
        import fsspec

        target = f"{str(storage).rstrip('/')}/{result.variant_id}/{where.name}"
        fs, root = fsspec.core.url_to_fs(target)
        for f in files:
            dest = f"{root}/{f.relative_to(where).as_posix()}"
            fs.makedirs(posixpath.dirname(dest), exist_ok=True)
            fs.put_file(str(f), dest)
        result.variant = replace(result.variant, artifact=target)
        return NodeResult(result)
    return NodeResult(result, note=f"its weights stay on node {result.variant.node} at {artifact}: set `storage:` "
                                   "to a shared path or URL to collect full weights from a cluster (docs/ray.md)")


def land(reply: NodeResult, runs: Path) -> VariantResult:
    """On the driver: write shipped adapter files beside the store (runs/<variant>/model) and point the row there."""
    result = reply.result
    if not reply.shipped:
        return result
    where = runs / result.variant_id / "model"
    if where.exists():
        shutil.rmtree(where)
    for name, data in reply.shipped.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    result.variant = replace(result.variant, artifact=str(where), artifact_bytes=sum(map(len, reply.shipped.values())))
    return result
