"""What a damaged store can still give: which runs read complete, and a new store holding every row that reads."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import duckdb

from harness.errors import HarnessInputError
from harness.store.check import (
    StoreCheck,
    base_tables,
    check_indexes,
    check_table,
    is_damage,
    missing_bytes,
    outside,
)
from harness.store.wal import wal_path

_RUN_TABLES = ("runs", "run_variants")
_VARIANT_TABLES = ("variant_results", "train_log", "scores", "examples", "sample_scores", "findings", "jobs")


def attach(con: duckdb.DuckDBPyConnection, path: Path, origin: Path) -> None:
    """Attach the store at `path` read-only as `src` (its WAL replayed in memory); `origin` names it in errors."""
    try:
        con.execute(f"ATTACH '{_sql_text(str(path))}' AS src (READ_ONLY)")
    except duckdb.Error as exc:
        if not is_damage(exc) and "not a valid DuckDB database file" not in str(exc):
            raise
        raise HarnessInputError(
            f"{origin}: cannot be opened at all ({str(exc).splitlines()[0][:200]}): the part of the file that "
            "lists its tables is damaged or missing, so no table in it can be read and nothing can be salvaged. "
            "Nothing was changed. Restore the file from a backup.", title="cannot recover") from None


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def runs_summary(con: duckdb.DuckDBPyConnection, check: StoreCheck) -> list[str]:
    """Which runs read complete (their row, their variant list, every row of each of their variants) and which lost
    rows, from a check of the store attached as `src`."""
    runs, links = check.table("runs"), check.table("run_variants")
    if runs is None or links is None:
        return ["no runs table: this is not a finetune-harness store, or its tables do not read"]
    if runs.unreadable:
        return ["the runs table does not read at all: no run can be listed"]
    ids = [str(r[0]) for r in con.execute(f"SELECT run_id FROM src.runs WHERE {outside(runs.lost)} "
                                          "ORDER BY started_at").fetchall()]
    variants: dict[str, list[str]] = {}
    if not links.unreadable:
        for run_id, vid in con.execute(f"SELECT run_id, variant_id FROM src.run_variants WHERE {outside(links.lost)}"
                                       ).fetchall():
            variants.setdefault(str(run_id), []).append(str(vid))
    lost_variants: dict[str, list[str]] = {}
    ours = [t for t in check.tables if t.table in (*_VARIANT_TABLES, *_RUN_TABLES)]
    unknown = [t.table for t in ours if t.lost_by_key.get("")]
    unreadable = [t.table for t in ours if t.unreadable]
    for t in check.tables:
        if t.table in _VARIANT_TABLES:
            for vid, n in t.lost_by_key.items():
                if vid:
                    lost_variants.setdefault(vid, []).append(f"{n:,} {t.table} row(s)")
    complete: list[str] = []
    partial: list[str] = []
    for run_id in ids:
        why = [f"variant {v}: {', '.join(lost_variants[v])}" for v in variants.get(run_id, []) if v in lost_variants]
        if links.lost_by_key.get(run_id):
            why.insert(0, f"{links.lost_by_key[run_id]} of its run_variants rows")
        if unreadable:
            why.insert(0, f"table(s) {', '.join(unreadable)} do not read at all")
        (partial if why else complete).append(f"{run_id} ({'; '.join(why)})" if why else run_id)
    if unknown and complete:  # rows whose ids do not read may be any run's: none can be called complete
        lines = ["runs that read complete: none can be told",
                 f"runs with no rows known to be lost: {', '.join(complete)} (but rows of {', '.join(unknown)} whose "
                 "ids do not read either may be theirs)"]
    else:
        lines = [f"runs that read complete: {', '.join(complete) if complete else 'none'}"]
    if partial:
        lines.append(f"runs that read in part: {'; '.join(partial)}")
    gone = [k for k in runs.lost_by_key if k]
    if gone:
        lines.append(f"runs whose own row does not read (their variants' rows may still): {', '.join(gone)}")
    elif runs.lost_by_key.get(""):
        lines.append(f"{runs.lost_by_key['']} run row(s) do not read, ids included")
    return lines


def _version(con: duckdb.DuckDBPyConnection) -> tuple[str] | None:
    """The source's schema version (read without its index, which may be what is damaged), or None."""
    if "meta" not in base_tables(con):
        return None
    try:
        rows = dict(con.execute("SELECT key, value FROM src.meta").fetchall())
    except duckdb.Error as exc:
        if not is_damage(exc):
            raise
        return None
    return (str(rows["schema_version"]),) if "schema_version" in rows else None


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device"
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return "no space left on device" if "No space left" in text else text


def _remove(path: Path) -> None:
    for p in (path, wal_path(path)):
        p.unlink(missing_ok=True)


def salvage(source: Path, target: Path, origin: Path) -> tuple[StoreCheck, list[str]]:
    """Copy every row of the store at `source` that reads into a new store at `target` (built beside it under a
    temporary name, renamed when complete); returns what the copy found (per table, what did not read) and its
    runs summary."""
    from harness.store.db import SCHEMA_VERSION, TABLES, Store

    tmp = target.with_name(f".{target.name}.salvage-{os.getpid()}")
    _remove(tmp)
    done = False
    try:
        Store(tmp).close()
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"ATTACH '{_sql_text(str(tmp))}' AS dst")
            attach(con, source, origin)
            version = _version(con)
            if version and int(version[0]) > SCHEMA_VERSION:
                raise HarnessInputError(f"{origin}: schema version {version[0]} is newer than this harness understands "
                                        f"({SCHEMA_VERSION}); salvage it with a newer finetune-harness.")
            tables = []
            for table in base_tables(con):
                if table == "meta":  # read for the record; the new store writes its own schema version
                    tables.append(check_table(con, table))
                    continue
                if table not in TABLES:  # a table of the user's own: kept too
                    con.execute(f'CREATE TABLE dst."{table}" AS SELECT * FROM src."{table}" LIMIT 0')
                tables.append(check_table(con, table, into="dst"))
            if version and int(version[0]) < SCHEMA_VERSION:  # reopened below as the older version it is: migrated
                con.execute("UPDATE dst.meta SET value = ? WHERE key = 'schema_version'", [str(version[0])])
            check_indexes(con, tables)
            found = StoreCheck(origin, tables, missing_bytes(con, source))
            summary = runs_summary(con, found)
            con.execute("DETACH src")
            con.execute("CHECKPOINT dst")
            con.execute("DETACH dst")
        finally:
            con.close()
        Store(tmp).close()
        os.replace(tmp, target)
        done = True
    except (OSError, duckdb.IOException) as exc:
        cause = _cause(exc)
        advice = "Free some space" if cause == "no space left on device" else "Choose a folder you can write"
        raise HarnessInputError(f"cannot write {target}: {cause}. Nothing was left there, and {origin} is unchanged. "
                                f"{advice}, and give the path with --salvage.", title="salvage failed") from None
    finally:
        if not done:
            _remove(tmp)
    return found, summary
