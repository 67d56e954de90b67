"""Opening a store safely: diagnose before DuckDB changes anything, wait briefly on a lock, and turn DuckDB and
OS errors into bad-input errors (exit 2) that name the file and the cause."""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from pathlib import Path

import duckdb

from harness.errors import HarnessInputError
from harness.store.wal import read_layout, wal_path

log = logging.getLogger("harness")

# How long to wait on another process's lock: a reader waits out a sweep's commit (seconds); a sweep waits out a
# reader (a report, a notebook) before giving up on storing a variant.
READ_WAIT_S = float(os.environ.get("HARNESS_STORE_READ_WAIT", "5"))
WRITE_WAIT_S = float(os.environ.get("HARNESS_STORE_WRITE_WAIT", "600"))
_OS_CAUSES = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}


def recover_hint(db: Path) -> str:
    return (f"`harness store recover --db {db}` keeps every complete transaction and leaves a copy of the WAL "
            "beside it; the next sweep redoes whatever is missing")


def check_wal_before_write(db: Path) -> None:
    """Refuse a read-write open that would make DuckDB drop part of the WAL; reading is left to DuckDB."""
    layout = read_layout(wal_path(db))
    if layout is not None and layout.torn:
        raise HarnessInputError(
            f"{layout.describe()}. Opening {db} for writing would drop that tail for good, so nothing was changed. "
            f"If a sweep was killed while storing a variant, that variant never committed: {recover_hint(db)}. "
            "If the WAL was cut by a copy or a full disk, put the whole file back first.",
            title="store needs recovery")


def connect(db: Path, *, read_only: bool, wait_s: float | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `db`, retrying while another process holds the lock; errors come back as exit 2."""
    if not read_only:
        check_wal_before_write(db)
    else:
        layout = read_layout(wal_path(db))
        if layout is not None and layout.torn:
            log.warning("%s; reading what is committed. %s.", layout.describe(), recover_hint(db).capitalize())
    wait = (READ_WAIT_S if read_only else WRITE_WAIT_S) if wait_s is None else wait_s
    deadline = time.monotonic() + wait
    said = False
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock(exc) or time.monotonic() >= deadline:
                raise as_input_error(exc, db, waited=wait) or exc from None
            if not said and wait >= 30:
                log.warning("%s is open in another process (%s); waiting up to %.0f s to store results",
                            db, _holder(exc), wait)
                said = True
            time.sleep(0.2)


def _is_lock(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _holder(exc: BaseException) -> str:
    m = re.search(r"PID (\d+)", str(exc))
    return f"PID {m.group(1)}" if m else "another process"


def _file_in(text: str, default: Path | None) -> str:
    m = re.search(r'file "([^"]+)"', text)
    return m.group(1) if m else str(default or "the store")


def as_input_error(exc: BaseException, db: Path | None = None, *, waited: float | None = None
                   ) -> HarnessInputError | None:
    """The bad-input error for a DuckDB or OS error about a store or a file, or None when it is something else."""
    if isinstance(exc, HarnessInputError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _OS_CAUSES:
        where = exc.filename or db or "a file"
        return HarnessInputError(f"cannot write {where}: {_OS_CAUSES[exc.errno]}. {_os_advice(exc.errno)}",
                                 title="write failed")
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc)
    detail = text.split("\n")[0][:300]
    if "Corrupt WAL" in text or "replaying WAL" in text:
        wal = wal_path(db) if db else Path(_file_in(text, None))
        return HarnessInputError(
            f"{wal}: the write-ahead log is corrupt ({detail}). Nothing was changed. Rows committed since the last "
            f"checkpoint live only in this file, so do not delete it: {recover_hint(db or wal)}.",
            title="corrupt store")
    if _is_lock(exc):
        wait = f" and stayed locked for {waited:.0f} s" if waited else ""
        return HarnessInputError(
            f"{db} is open in {_holder(exc)}{wait}. A running sweep holds it only while it stores a variant, so "
            "try again in a moment; a program that keeps it open (a notebook, a second sweep) must close it first.",
            title="store in use")
    if "not a valid DuckDB database file" in text:
        return HarnessInputError(f"{db}: not a DuckDB database file (empty, overwritten or another format). "
                                 "Point --db at a results store, or at a new file to start one.", title="corrupt store")
    if "Could not read enough bytes" in text:
        return HarnessInputError(
            f"{db}: the file is truncated ({detail}); it is shorter than its own header says (cut by a copy, a "
            "download or a full disk). Restore it from a backup, or point --db at a new file and rerun the sweep.",
            title="corrupt store")
    for needle, cause in (("No space left", errno.ENOSPC), ("Disk quota", errno.EDQUOT),
                          ("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES)):
        if needle in text:
            return HarnessInputError(f"cannot write {_file_in(text, db)}: {_OS_CAUSES[cause]} ({detail}). "
                                     f"{_os_advice(cause)}", title="write failed")
    if "invalidated" in text:
        return HarnessInputError(f"{db}: the store was closed after a failed write ({detail}). What was committed "
                                 "before is kept; fix the cause (often a full disk) and rerun.", title="write failed")
    return None


def _os_advice(code: int) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ("Free some space and rerun: what was committed before is kept, and the sweep resumes where it "
                "stopped.")
    return "Choose a folder you can write (--db PATH, -o PATH), or fix its permissions."
