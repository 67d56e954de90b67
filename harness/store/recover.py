"""`harness store recover`: read every table of a store, and make one whose WAL is torn or corrupt usable again.

Everything is tried on copies first: the store and its WAL are replaced (the originals kept as `.bak-<time>`)
only once the copy replays, checkpoints and reads in full. A store whose own file is damaged is never called
recovered: what still reads is listed, and copied into a new store on request (`--salvage NEW.duckdb`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from harness.errors import HarnessInputError
from harness.store.check import StoreCheck, check_store
from harness.store.guard import check_orphan_wal
from harness.store.lock import sweep_lock
from harness.store.salvage import attach, runs_summary, salvage
from harness.store.wal import cut, entry_start, read_layout, transaction_ends, wal_path


def _replay_error(db: Path) -> str | None:
    """DuckDB's complaint about replaying the WAL read-only (which changes nothing), or None when it replays."""
    try:
        duckdb.connect(str(db), read_only=True).close()
    except duckdb.Error as exc:
        return str(exc)
    return None


def _last_replaying_prefix(db: Path, wal: Path) -> tuple[int, int] | None:
    """Cut the (copied) WAL back, one complete transaction at a time from its end, until DuckDB replays it;
    (bytes kept, bytes cut), or None when not even the header alone replays."""
    size = wal.stat().st_size
    for end in reversed(transaction_ends(wal)):
        cut(wal, end)
        if _replay_error(db) is None:
            return end, size - end
    return None


def _unchanged(db: Path) -> str:
    wal = wal_path(db)
    return f"Nothing was changed: {db} and {wal} are as they were" if wal.exists() else \
        f"Nothing was changed: {db} is as it was"


def _repair_wal(work: Path, db: Path) -> list[str]:
    """Cut the copy `work`'s WAL back to its last complete transaction before any damage; `db` names the original."""
    wal, done = wal_path(work), []
    for _ in range(8):
        error = _replay_error(work)
        if error is None:
            break
        first = error.splitlines()[0].replace(str(wal.resolve()), str(wal_path(db).resolve()))[:200]
        if "WAL does not match database file" in error:
            raise HarnessInputError(
                f"{wal_path(db)}: this write-ahead log belongs to another database file ({first}), so it cannot be "
                f"replayed into {db}. {_unchanged(db)}. If the store it was written for is elsewhere, put it back "
                f"beside the log; to use {db} without it, move the log away yourself (its rows are not in {db}).",
                title="cannot recover")
        m = re.search(r"entry at byte position (\d+)", error)
        if not m:  # damage inside an entry's contents (DuckDB names no position): the last prefix that replays
            prefix = _last_replaying_prefix(work, wal)
            if prefix is None:
                raise HarnessInputError(f"{wal_path(db)}: cannot be replayed ({first}), not even its first "
                                        f"transaction. {_unchanged(db)}; keep both, and restore from a backup.",
                                        title="cannot recover")
            done.append(f"cut {prefix[1]:,} bytes from the first transaction that does not replay on ({first[:120]})")
            break
        at = entry_start(wal, int(m.group(1)))
        done.append(f"cut {wal.stat().st_size - at:,} bytes from a damaged entry on (byte {at:,})")
        cut(wal, at)
    else:
        raise HarnessInputError(f"{wal_path(db)}: still cannot be replayed after cutting damaged entries. "
                                f"{_unchanged(db)}; restore from a backup.", title="cannot recover")
    layout = read_layout(wal)
    if layout is not None and layout.torn:
        done.append(f"set aside {layout.size - layout.committed_end:,} bytes of an unfinished transaction")
        cut(wal, layout.committed_end)
    done.append(f"kept {layout.transactions if layout else 0} complete transaction(s) of the write-ahead log")
    return done


def _in_use(db: Path) -> bool:
    """Whether another process holds DuckDB's lock on the file (a sweep, a notebook)."""
    import fcntl

    with db.open("r+b") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(f, fcntl.LOCK_UN)
    return False


@contextmanager
def _copies(db: Path, stamp: str) -> Iterator[Path]:
    """Copies of the store and its WAL in a folder beside them (same file system, so they can be renamed into
    place); the folder is removed afterwards, whatever happened."""
    work = db.with_name(f"{db.name}.recover-{stamp}")
    try:
        work.mkdir()
        for src in (db, wal_path(db)):
            shutil.copyfile(src, work / src.name)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise HarnessInputError(f"cannot write {work}: {exc.strerror} (recover works on copies beside the store, so "
                                f"it needs as much free space again). {_unchanged(db)}.", title="cannot recover"
                                ) from None
    try:
        yield work / db.name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_all(path: Path, origin: Path) -> tuple[StoreCheck, list[str]]:
    """A full read of the store at `path` (read-only, its WAL replayed in memory) and its runs summary."""
    con = duckdb.connect(":memory:")
    try:
        attach(con, path, origin)
        check = check_store(con, path)
        check.path = origin
        return check, runs_summary(con, check)
    finally:
        con.close()


def _damage_report(check: StoreCheck, summary: list[str]) -> list[str]:
    lines = [t.describe() for t in check.tables if t.lost or t.unreadable or t.index_error]
    if check.missing_bytes:
        lines.insert(0, f"{check.path}: the file is {check.missing_bytes:,} bytes shorter than its header says "
                        "(cut by a copy, a download or a full disk)")
    return lines + summary


def _salvage(source: Path, target: Path, db: Path, done: list[str]) -> list[str]:
    found, summary = salvage(source, target, db)
    saved = sum(t.rows - t.lost_rows for t in found.tables)
    wal = " (and its write-ahead log)" if wal_path(db).exists() else ""
    state = [f"{db} is damaged; it was left as it is{wal}:", *(f"  {x}" for x in _damage_report(found, []))] \
        if found.damaged else [f"{db} read in full, no damage; it was left as it is{wal}"]
    return [*done, *state, f"wrote {target}: {saved:,} rows in {len(found.tables)} tables, every row that reads"
            + (" (the rows above are left out)" if found.damaged else ""),
            *summary, f"point --db at {target} to use it (`harness runs --db {target}`)"]


def recover(db: str | Path, salvage_to: str | Path | None = None) -> list[str]:
    """Check every block of the store and recover its WAL (on copies), or salvage what reads into `salvage_to`;
    returns what it did, naming every file it wrote. A damaged store file is exit 2 unless salvaged."""
    db = Path(db)
    check_orphan_wal(db)
    if not db.is_file():
        raise HarnessInputError(f"{db}: no such store. Pass the store with --db PATH.")
    target = Path(salvage_to) if salvage_to is not None else None
    if target is not None and (target.exists() or wal_path(target).exists() or target.resolve() == db.resolve()):
        raise HarnessInputError(f"--salvage {target}: already exists; give a new file (nothing is ever written over "
                                "a store)")
    if read_layout(wal_path(db)) is None:  # nothing to replay: read the file where it is (read-only)
        return _check_or_salvage(db, db, target, [])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    with sweep_lock(db):  # no sweep starts meanwhile
        if _in_use(db):
            raise HarnessInputError(f"{db} is open in another process; close it first. {_unchanged(db)}.",
                                    title="store in use")
        with _copies(db, stamp) as work:
            done = _repair_wal(work, db)
            if target is not None:
                return _check_or_salvage(work, db, target, done)
            check, summary = _read_all(work, db)
            _refuse_damaged(check, summary, db)
            con = duckdb.connect(str(work))
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:
                raise HarnessInputError(f"cannot checkpoint the recovered copy {work}: {str(exc).splitlines()[0]}. "
                                        f"{_unchanged(db)}.", title="cannot recover") from None
            finally:
                con.close()
            return done + _swap(work, db, stamp, check)


def _refuse_damaged(check: StoreCheck, summary: list[str], db: Path) -> None:
    """Exit 2 listing what does not read and what does, when the full read found damage."""
    if check.damaged:
        raise HarnessInputError(
            [*_damage_report(check, summary),
             f"{_unchanged(db)}. `harness store recover --db {db} --salvage NEW.duckdb` copies every row that "
             f"reads into a new store (and changes nothing here); or restore {db} from a backup."],
            title=f"corrupt store: {db} is damaged")


def _check_or_salvage(source: Path, db: Path, target: Path | None, done: list[str]) -> list[str]:
    """Read every table of `source` (the store, or its repaired copy); a damaged one is exit 2 unless salvaged."""
    if target is not None:
        return _salvage(source, target, db, done)
    check, summary = _read_all(source, db)
    _refuse_damaged(check, summary, db)
    return [*done, f"read every table of {db} in full: {check.rows:,} rows in {len(check.tables)} tables, no damage"
            + ("; no write-ahead log to recover, nothing was changed" if not done else "")]


def _swap(work: Path, db: Path, stamp: str, check: StoreCheck) -> list[str]:
    """Put the recovered copy in place of the store; the original store and WAL are kept under .bak names."""
    wal = wal_path(db)
    old_db, old_wal = db.with_name(f"{db.name}.bak-{stamp}"), wal.with_name(f"{wal.name}.bak-{stamp}")
    os.replace(wal, old_wal)
    try:
        os.replace(db, old_db)
        try:
            os.replace(work, db)
        except OSError:
            os.replace(old_db, db)
            raise
    except OSError as exc:
        os.replace(old_wal, wal)
        raise HarnessInputError(f"cannot replace {db}: {exc.strerror}. {_unchanged(db)}.", title="cannot recover"
                                ) from None
    return [f"read the recovered copy in full: {check.rows:,} rows in {len(check.tables)} tables, no damage",
            f"wrote {db}: the store with those transactions checkpointed into it (no write-ahead log left)",
            f"kept the store as it was: {old_db}", f"kept the write-ahead log as it was: {old_wal}",
            "delete the two .bak files yourself once you are satisfied"]
