"""Bulk appends: Arrow record batches streamed into a store table in one transaction, memory bounded by a batch."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import duckdb
import pyarrow as pa

from harness.errors import HarnessInputError
from harness.store.schema import TABLES, columns

_VIEW = "_harness_bulk_batches"  # the name the batches stream under while one append runs


def append_batches(con: duckdb.DuckDBPyConnection, table: str, batches: Iterable[pa.RecordBatch], *,
                   memory_mb: int = 512) -> int:
    """Append every batch to `table` (inside the caller's transaction: all or nothing) and return how many rows
    went in.

    Batches stream through one INSERT, so only the batch being read is held in memory; each batch names a subset of
    the table's columns (the rest are NULL), with the same schema as the first batch. DuckDB's buffer pool is capped
    at `memory_mb` while the append runs (its cache would otherwise grow towards 80% of RAM), then restored.
    """
    if table not in TABLES or table == "meta":
        raise HarnessInputError(f"bulk append into {table!r}: not a results table; use one of "
                                f"{', '.join(t for t in TABLES if t != 'meta')}")
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return 0
    known = columns(table)
    unknown = [c for c in first.schema.names if c not in known]
    if unknown:
        raise HarnessInputError(f"bulk append into {table}: no column {', '.join(map(repr, unknown))} in the table; "
                                f"its columns are {', '.join(known)}")
    counted = [0]
    mismatch: list[str] = []

    def checked() -> Iterator[pa.RecordBatch]:
        for batch in itertools.chain([first], it):
            if batch.schema != first.schema:
                mismatch.append(f"bulk append into {table}: batch {counted[0] // max(first.num_rows, 1) + 1} has "
                                f"columns {batch.schema} but the first batch {first.schema}; give every batch one "
                                "schema")
                return
            counted[0] += batch.num_rows
            yield batch

    reader = pa.RecordBatchReader.from_batches(first.schema, checked())
    cols = ", ".join(f'"{c}"' for c in first.schema.names)
    con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")  # the store sets no other: RESET restores DuckDB's
    con.register(_VIEW, reader)
    try:
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {_VIEW}")
    finally:
        con.unregister(_VIEW)
        con.execute("RESET memory_limit")
    if mismatch:
        raise HarnessInputError(mismatch[0])
    return counted[0]
