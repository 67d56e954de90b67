"""Reading every block of a store: each table's rows in windows, so a damaged block is found, located to the rows
it holds and attributed to the runs and variants those rows belong to; and copying what still reads elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from harness.errors import HarnessInputError

# DuckDB's file: three 4 KiB headers, then blocks of `block_size` bytes (the file's size when none is missing).
_HEADERS = 3 * 4096
_MIN_WINDOW = 2048  # DuckDB's vector size: rows are located down to windows of this many
# The column that says which run, variant or sheet a row belongs to, per table.
_KEYS = {"runs": "run_id", "run_variants": "run_id", "review_sheets": "sheet_id", "review_items": "sheet_id",
         "ratings": "sheet_id", "meta": "key"}
_VARIANT_KEYED = ("variant_results", "train_log", "scores", "examples", "sample_scores", "findings", "jobs")


def is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error says the file's bytes are damaged or missing (not a lock, a query or a memory error)."""
    text = str(exc)
    return isinstance(exc, duckdb.Error) and any(s in text for s in (
        "Corrupt database file", "Could not read enough bytes", "checksum", "Corrupt WAL"))


@dataclass
class TableCheck:
    """What reading one table found: its rows, the row ranges that do not read, and whose rows they are."""

    table: str
    rows: int
    lost: list[tuple[int, int]] = field(default_factory=list)  # [start, end) rowid ranges that do not read
    lost_by_key: dict[str, int] = field(default_factory=dict)  # key value -> rows lost ('' where the key is unread)
    damaged_columns: list[str] = field(default_factory=list)
    error: str = ""
    unreadable: bool = False  # not even its row count reads
    index_error: str = ""  # its primary-key index does not read (the rows may)

    @property
    def lost_rows(self) -> int:
        return sum(b - a for a, b in self.lost)

    def describe(self) -> str:
        """One line: how many rows do not read, where, and whose they are."""
        index = (f"; its primary-key index does not read ({self.index_error}): a new store built from the rows "
                 "(--salvage) has a sound one" if self.index_error else "")
        if self.unreadable:
            return f"{self.table}: does not read at all - {self.error}"
        if not self.lost:
            return f"{self.table}: all {self.rows:,} rows read{index}"
        where = ", ".join(f"{a}-{b - 1}" for a, b in self.lost[:5]) + (" ..." if len(self.lost) > 5 else "")
        key = _KEYS.get(self.table, "variant_id" if self.table in _VARIANT_KEYED else "")
        whose = "; ".join(f"{n:,} of {key} {k}" if k else f"{n:,} whose {key or 'ids'} do not read either"
                          for k, n in sorted(self.lost_by_key.items())[:8])
        cols = f" in column(s) {', '.join(self.damaged_columns)}" if self.damaged_columns else ""
        return (f"{self.table}: {self.lost_rows:,} of {self.rows:,} rows do not read (rows {where}{cols}"
                f"{': ' + whose if whose else ''}) - {self.error}{index}")


@dataclass
class StoreCheck:
    """A full read of a store: every table, and whether the file is as long as its header says."""

    path: Path
    tables: list[TableCheck]
    missing_bytes: int = 0

    @property
    def damaged(self) -> bool:
        return self.missing_bytes > 0 or any(t.lost or t.unreadable or t.index_error for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def table(self, name: str) -> TableCheck | None:
        return next((t for t in self.tables if t.table == name), None)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200]


def split_windows(start: int, end: int, ok: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    """The [start, end) ranges for which `ok` fails, found by halving failing ranges down to _MIN_WINDOW rows."""
    if end <= start or ok(start, end):
        return []
    if end - start <= _MIN_WINDOW:
        return [(start, end)]
    mid = (start + end) // 2
    lost = split_windows(start, mid, ok) + split_windows(mid, end, ok)
    merged: list[tuple[int, int]] = []
    for a, b in lost:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, table: str, database: str) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? ORDER BY column_index", [database, table]).fetchall()]


def _window(a: int, b: int) -> str:
    return f"rowid >= {int(a)} AND rowid < {int(b)}"


def outside(lost: list[tuple[int, int]]) -> str:
    """A WHERE clause keeping the rows outside the lost rowid ranges."""
    return " AND ".join([f"NOT ({_window(a, b)})" for a, b in lost] or ["TRUE"])


def check_indexes(con: duckdb.DuckDBPyConnection, tables: list[TableCheck], database: str = "src") -> None:
    """Look up every readable key of each single-column primary key through its index (DuckDB reads an index only
    when it uses it: for such lookups, and for writes), setting `index_error` where it does not read. DuckDB never
    reads a composite key's index (run_variants) for a query, so only a write would find damage there."""
    keys = con.execute("SELECT table_name, constraint_column_names FROM duckdb_constraints() WHERE database_name = ? "
                       "AND schema_name = 'main' AND constraint_type = 'PRIMARY KEY'", [database]).fetchall()
    con.execute("SET index_scan_max_count = 2000000000")  # every lookup below goes through the index
    con.execute("SET index_scan_percentage = 1.0")
    for t in tables:
        column = next((c[0] for name, c in keys if name == t.table and len(c) == 1), None)
        if column is None or t.unreadable:
            continue
        name, col = f"{database}.{_quoted(t.table)}", _quoted(column)
        values = [r[0] for r in con.execute(f"SELECT {col} FROM {name} WHERE {outside(t.lost)}").fetchall()]
        try:
            for i in range(0, len(values), 2000):
                chunk = values[i:i + 2000]
                con.execute(f"SELECT count(*) FROM {name} WHERE {col} IN ({', '.join('?' * len(chunk))})",
                            chunk).fetchall()
        except duckdb.Error as exc:
            if not is_damage(exc):
                raise
            t.index_error = _first_line(exc)


def check_table(con: duckdb.DuckDBPyConnection, table: str, database: str = "src", *,
                into: str | None = None) -> TableCheck:
    """Read every value of every column of `database.table` (a hash of each, so nothing is skipped); with `into`,
    copy every row window that reads into the same table of that database (one transaction per window)."""
    name = f"{database}.{_quoted(table)}"
    cols = _columns(con, table, database)
    probe = ", ".join(f"bit_xor(hash({_quoted(c)}))" for c in cols)
    errors: list[str] = []

    def reads(a: int, b: int, what: str = probe) -> bool:
        try:
            con.execute(f"SELECT {what} FROM {name} WHERE {_window(a, b)}").fetchall()
            return True
        except duckdb.Error as exc:
            if not is_damage(exc):
                raise
            errors.append(_first_line(exc))
            return False

    target = set(_columns(con, table, into)) if into else set()
    shared = ", ".join(_quoted(c) for c in cols if c in target)

    def copies(a: int, b: int) -> bool:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"INSERT INTO {into}.{_quoted(table)} ({shared}) SELECT {shared} FROM {name} "
                        f"WHERE {_window(a, b)}")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            if not is_damage(exc):
                raise
            errors.append(_first_line(exc))
            return False
        con.execute("COMMIT")
        return True

    try:
        rows, top = con.execute(f"SELECT count(*), coalesce(max(rowid) + 1, 0) FROM {name}").fetchone() or (0, 0)
    except duckdb.Error as exc:
        if not is_damage(exc):
            raise
        return TableCheck(table, 0, error=_first_line(exc), unreadable=True)
    result = TableCheck(table, int(rows), split_windows(0, int(top), copies if into else reads))
    if not result.lost:
        return result
    result.error = errors[0]
    result.damaged_columns = [c for c in cols if any(
        not reads(a, b, f"bit_xor(hash({_quoted(c)}))") for a, b in result.lost)]
    key = _KEYS.get(table, "variant_id" if table in _VARIANT_KEYED else None)
    for a, b in result.lost:
        try:
            counts = con.execute(f"SELECT {_quoted(key)}, count(*) FROM {name} WHERE {_window(a, b)} GROUP BY 1"
                                 ).fetchall() if key and key in cols else [("", None)]
        except duckdb.Error as exc:
            if not is_damage(exc):
                raise
            counts = [("", None)]
        for k, n in counts:
            result.lost_by_key[str(k or "")] = result.lost_by_key.get(str(k or ""), 0) + (n or b - a)
    return result


def base_tables(con: duckdb.DuckDBPyConnection, database: str = "src") -> list[str]:
    """The store's tables (not views), in creation order."""
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' ORDER BY table_oid",
        [database]).fetchall()]


def missing_bytes(con: duckdb.DuckDBPyConnection, path: Path, database: str | None = "src") -> int:
    """How many bytes the file is shorter than its header says, counted only when more blocks are missing than the
    file has free ones (DuckDB cuts free blocks off a file's end, so a shorter file alone proves nothing); 0 when
    none are sure to be missing. `database` None is the connection's own."""
    row = con.execute("SELECT block_size, total_blocks, free_blocks FROM pragma_database_size() "
                      "WHERE database_name = coalesce(?, current_database())", [database]).fetchone()
    if not row or not row[0]:
        return 0
    block, total, free = (int(x) for x in row)
    short = _HEADERS + block * total - path.stat().st_size
    return short if short > block * free else 0


def refuse_truncated(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Exit 2 when the store just opened read-only is shorter than its header says, before any read meets the gap."""
    short = missing_bytes(con, path, None)
    if short:
        from harness.store.guard import salvage_hint

        raise HarnessInputError(f"{path}: the file is truncated: it is {short:,} bytes shorter than its own header "
                                "says (cut by a copy, a download or a full disk). " + salvage_hint(path) + ".",
                                title="corrupt store")


def check_store(con: duckdb.DuckDBPyConnection, path: Path, database: str = "src") -> StoreCheck:
    """Read every table of the store attached as `database` (its WAL replayed, read-only) in full."""
    tables = [check_table(con, t, database) for t in base_tables(con, database)]
    check_indexes(con, tables, database)
    return StoreCheck(path, tables, missing_bytes(con, path, database))
