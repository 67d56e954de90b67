"""`harness store recover`: make a store whose WAL is torn or corrupt usable again, keeping every complete
transaction and a copy of the WAL as it was."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from harness.errors import HarnessInputError
from harness.store.wal import backup, cut, entry_start, read_layout, transaction_ends, wal_path


def _replay_error(db: Path) -> str | None:
    """DuckDB's complaint about replaying the WAL read-only (which changes nothing), or None when it replays."""
    try:
        duckdb.connect(str(db), read_only=True).close()
    except duckdb.Error as exc:
        return str(exc)
    return None


def _last_replaying_prefix(db: Path, wal: Path) -> tuple[int, int] | None:
    """Cut the WAL back, one complete transaction at a time from its end, until DuckDB replays it (the caller has
    made a backup); (bytes kept, bytes cut), or None when not even the header alone replays."""
    size = wal.stat().st_size
    for end in reversed(transaction_ends(wal)):
        cut(wal, end)
        if _replay_error(db) is None:
            return end, size - end
    return None


def recover(db: str | Path) -> list[str]:
    """Cut the WAL back to its last complete transaction before any damage, then checkpoint; returns what it did."""
    db = Path(db)
    if not db.is_file():
        raise HarnessInputError(f"{db}: no such store. Pass the store with --db PATH.")
    wal = wal_path(db)
    layout = read_layout(wal)
    if layout is None:
        error = _replay_error(db)
        if error:
            raise HarnessInputError(f"{db}: cannot be opened ({error.splitlines()[0][:200]}), and there is no WAL "
                                    "to recover from. Restore the file from a backup.", title="cannot recover")
        return [f"{db}: no write-ahead log to recover; the store opens as it is"]
    done = [f"copied the write-ahead log to {backup(wal)} (kept; delete it yourself once you are satisfied)"]
    for _ in range(8):
        error = _replay_error(db)
        if error is None:
            break
        if "lock" in error.lower():
            raise HarnessInputError(f"{db} is open in another process; stop it first ({error.splitlines()[0]})")
        m = re.search(r"entry at byte position (\d+)", error)
        if not m:  # damage inside an entry's contents (DuckDB names no position): the last prefix that replays
            prefix = _last_replaying_prefix(db, wal)
            if prefix is None:
                raise HarnessInputError(f"{wal}: cannot be replayed ({error.splitlines()[0][:200]}), not even its "
                                        "first transaction. Keep both files and restore from a backup.",
                                        title="cannot recover")
            done.append(f"cut {prefix[1]:,} bytes from the first transaction that does not replay on "
                        f"({error.splitlines()[0][:120]})")
            break
        at = entry_start(wal, int(m.group(1)))
        done.append(f"cut {wal.stat().st_size - at:,} bytes from a damaged entry on (byte {at:,})")
        cut(wal, at)
    else:
        raise HarnessInputError(f"{wal}: still cannot be replayed after cutting damaged entries; restore from a "
                                "backup", title="cannot recover")
    layout = read_layout(wal)
    if layout is not None and layout.torn:
        done.append(f"set aside {layout.size - layout.committed_end:,} bytes of an unfinished transaction")
        cut(wal, layout.committed_end)
    kept = layout.transactions if layout is not None else 0
    con = duckdb.connect(str(db))
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    done.append(f"kept {kept} complete transaction(s) and checkpointed them into {db}")
    return done
