"""DuckDB's write-ahead log beside a store: read its layout without replaying it, and recover on the user's say.

A WAL is a header followed by entries `[u64 size][u64 checksum][payload]`; a transaction's entries end with a
WAL_FLUSH entry. Committed rows that are not yet checkpointed live only here, so the harness never lets DuckDB
drop part of a WAL on its own: a torn tail is reported, and `harness store recover` sets it aside with a backup.
"""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_WAL_FLUSH = 100  # DuckDB's WALType::WAL_FLUSH: the end of one committed transaction
_ENTRY_HEAD = 16  # u64 size + u64 checksum


@dataclass
class WalLayout:
    """Where a WAL's complete transactions end, and whether anything follows them."""

    path: Path
    size: int
    committed_end: int  # byte offset just after the last complete WAL_FLUSH entry (0: none, header unread)
    transactions: int  # complete transactions
    torn: bool  # bytes after the last complete transaction (an unfinished commit, or a cut file)

    def describe(self) -> str:
        tail = self.size - self.committed_end
        return (f"{self.path} ends in the middle of a transaction: {tail:,} of its {self.size:,} bytes follow the "
                f"last complete commit ({self.transactions} complete transaction(s) before them)")


def wal_path(db: Path) -> Path:
    return db.with_name(db.name + ".wal")


def _header_end(data: bytes) -> int | None:
    """The offset after the WAL header (a serialized object ending in the 0xFFFF terminator)."""
    end = data.find(b"\xff\xff")
    return None if end < 0 or end > 256 else end + 2


def read_layout(wal: Path) -> WalLayout | None:
    """The layout of a WAL file, or None when there is none (or it is empty)."""
    if not wal.is_file() or wal.stat().st_size == 0:
        return None
    data = wal.read_bytes()
    pos = _header_end(data)
    if pos is None:
        return WalLayout(wal, len(data), 0, 0, True)
    committed, transactions = pos, 0
    while pos + _ENTRY_HEAD <= len(data):
        (size,) = struct.unpack_from("<Q", data, pos)
        end = pos + _ENTRY_HEAD + size
        if size < 3 or end > len(data):
            break
        entry_type = data[pos + _ENTRY_HEAD + 2]  # payload: field id 100 (u16), then the type byte
        pos = end
        if entry_type == _WAL_FLUSH:
            committed, transactions = pos, transactions + 1
    return WalLayout(wal, len(data), committed, transactions, committed < len(data))


def transaction_ends(wal: Path) -> list[int]:
    """The byte offsets just after each complete transaction, in order (the places a WAL can be cut back to)."""
    if not wal.is_file():
        return []
    data = wal.read_bytes()
    pos = _header_end(data)
    if pos is None:
        return []
    ends = [pos]
    while pos + _ENTRY_HEAD <= len(data):
        (size,) = struct.unpack_from("<Q", data, pos)
        end = pos + _ENTRY_HEAD + size
        if size < 3 or end > len(data):
            break
        if data[pos + _ENTRY_HEAD + 2] == _WAL_FLUSH:
            ends.append(end)
        pos = end
    return ends


def entry_start(wal: Path, payload_offset: int) -> int:
    """The offset of the last complete transaction's end at or before a (corrupt) entry's payload offset."""
    layout = read_layout(wal)
    if layout is None:
        return 0
    data = wal.read_bytes()
    pos = _header_end(data) or 0
    committed = pos
    limit = payload_offset - _ENTRY_HEAD
    while pos + _ENTRY_HEAD <= len(data) and pos < limit:
        (size,) = struct.unpack_from("<Q", data, pos)
        end = pos + _ENTRY_HEAD + size
        if size < 3 or end > limit:
            break
        if data[pos + _ENTRY_HEAD + 2] == _WAL_FLUSH:
            committed = end
        pos = end
    return committed


def backup(wal: Path) -> Path:
    """Copy the WAL to `<name>.wal.bak-<UTC time>` beside it; never removes anything."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = wal.with_name(f"{wal.name}.bak-{stamp}")
    shutil.copy2(wal, target)
    return target


def cut(wal: Path, at: int) -> None:
    """Keep the first `at` bytes of the WAL (a copy is made first by the caller)."""
    with wal.open("r+b") as f:
        f.truncate(at)
