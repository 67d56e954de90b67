"""One writer per store: a sweep holds `<store>.lock` while it runs, and a run's process can be checked for life."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import SupportsInt

from harness.errors import HarnessInputError


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def this_process() -> dict[str, int | str]:
    """What a run stores about the process that runs it: its `pid` and `host` columns."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


@contextmanager
def sweep_lock(db: Path) -> Iterator[None]:
    """Hold the store's sweep lock; a second sweep on the same store is refused (exit 2), readers are not."""
    import fcntl

    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = path.open("a+")
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise HarnessInputError(
                f"{db} is being written by another sweep ({holder}). One sweep writes a store at a time: wait for "
                "it to finish, or give this one its own --db. Reading (`harness runs`, `report`) works meanwhile.",
                title="store in use") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({**this_process(), "since": datetime.now(UTC).isoformat(timespec="seconds")}) + "\n")
        f.flush()
        yield
    finally:
        f.close()  # closing the file releases the lock; the file stays (removing it would race a new sweep)


def liveness(pid: SupportsInt | str | None, host: object, started_at: object) -> str:
    """'alive', 'gone' (this host, no such process since the run started) or 'unknown' (another host, no pid)."""
    if pid is None or host is None or str(pid) in ("nan", "<NA>") or host != socket.gethostname():
        return "unknown"
    import psutil

    try:
        proc = psutil.Process(int(pid))
        created = proc.create_time()
        if proc.status() == psutil.STATUS_ZOMBIE:
            return "gone"
    except (psutil.NoSuchProcess, ValueError):
        return "gone"
    except psutil.AccessDenied:
        return "alive"
    if isinstance(started_at, datetime):
        started = started_at.replace(tzinfo=UTC).timestamp()
        if created > started + 5:  # the pid was reused by a process that started after the run
            return "gone"
    return "alive"
