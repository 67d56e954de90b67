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


def check_orphan_wal(db: Path) -> None:
    """Refuse a store path whose file is missing while its write-ahead log is there: DuckDB would start an empty
    store and delete the log, and the committed rows in it with it."""
    wal = wal_path(db)
    if db.exists() or not wal.is_file() or wal.stat().st_size == 0:
        return
    layout = read_layout(wal)
    held = f"{layout.transactions} committed transaction(s) in {layout.size:,} bytes" if layout else "rows"
    raise HarnessInputError(
        f"{wal} is the write-ahead log of a results store, and the store file {db} is not beside it. It holds "
        f"{held} that were never checkpointed into the store, and DuckDB replays it only into the database file "
        f"it was written for: opening {db} now would start an empty store and delete the log, so nothing was "
        f"changed. Put the store file back beside it as {db.name} (then `harness store recover --db {db}` checks "
        "both); to start a new store instead, give another --db. Do not delete the log while its store may exist.",
        title="store file missing")


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
    check_orphan_wal(db)
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
    if "WAL does not match database file" in text:
        wal = wal_path(db) if db else Path(_file_in(text, None))
        return HarnessInputError(
            f"{wal}: this write-ahead log belongs to another database file ({detail}), so DuckDB cannot replay it "
            f"into {db}. Nothing was changed. If the store it was written for is elsewhere, put it back beside the "
            f"log; to use {db} without it, move the log away yourself (its rows are not in {db}).",
            title="corrupt store")
    if "Corrupt database file" in text or "Could not read enough bytes" in text:
        return _damaged(text, db)
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
    for needle, cause in (("No space left", errno.ENOSPC), ("Disk quota", errno.EDQUOT),
                          ("Read-only file system", errno.EROFS), ("Permission denied", errno.EACCES)):
        if needle in text:
            return HarnessInputError(f"cannot write {_file_in(text, db)}: {_OS_CAUSES[cause]} ({detail}). "
                                     f"{_os_advice(cause)}", title="write failed")
    if "invalidated" in text:
        return HarnessInputError(f"{db}: the store was closed after a failed write ({detail}). What was committed "
                                 "before is kept; fix the cause (often a full disk) and rerun.", title="write failed")
    return None


def salvage_hint(db: Path | None) -> str:
    return (f"`harness store recover --db {db}` reads every table and lists what still reads; with --salvage "
            "NEW.duckdb it copies all of that into a new store and changes nothing in this one. Or restore the "
            "file from a backup")


def _damaged(text: str, db: Path | None) -> HarnessInputError:
    """A store file with a block DuckDB cannot read (a checksum that does not match, or bytes cut off the end)."""
    where = db or Path(_file_in(text, None))
    block = re.search(r"in block at location (\d+)", text)
    short = re.search(r"attempted to read (\d+) bytes from location (\d+)", text)
    if block:
        what = (f"a damaged block at byte {int(block.group(1)):,}: its checksum does not match the one DuckDB "
                "stored (the bytes were changed by a disk fault, a partial copy or another program)")
    elif short:
        what = (f"the file is truncated: it ends before byte {int(short.group(1)) + int(short.group(2)):,}, which "
                "its own header says it holds (cut by a copy, a download or a full disk)")
    else:
        what = f"a block that cannot be read ({text.splitlines()[0][:200]})"
    return HarnessInputError(f"{where}: {what}. Found while reading it; other blocks may still read. "
                             f"{salvage_hint(where)}.", title="corrupt store")


def _os_advice(code: int) -> str:
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ("Free some space and rerun: what was committed before is kept, and the sweep resumes where it "
                "stopped.")
    return "Choose a folder you can write (--db PATH, -o PATH), or fix its permissions."
