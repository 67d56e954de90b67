"""Bulk Arrow appends into the store: rows land whole, missing columns are NULL, bad input leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from harness.errors import HarnessInputError
from harness.store.db import Store


def batch(start: int, n: int, **extra: pa.Array) -> pa.RecordBatch:
    return pa.record_batch({"variant_id": pa.array([f"v{(start + i) // 10}" for i in range(n)]),
                            "suite": pa.array(["heldout"] * n),
                            "example_id": pa.array([f"ex-{start + i}" for i in range(n)]),
                            "output": pa.array([f"out {start + i}" for i in range(n)]),
                            "passed": pa.array([(start + i) % 2 == 0 for i in range(n)]),
                            "detail": pa.array(['{"exact_match": true}'] * n), **extra})


def test_append_batches_streams_every_row_in_one_transaction(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as s:
        limit = s.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0]
        n = s.append_batches("examples", (batch(i, 50) for i in range(0, 500, 50)), memory_mb=256)
        assert n == 500
        got = s.query("SELECT * FROM examples ORDER BY example_id")
        assert s.query("SELECT current_setting('memory_limit') AS m")["m"].iloc[0] == limit  # restored
    assert len(got) == 500 and got["prompt"].isna().all() and got["cluster"].isna().all()
    assert got["passed"].sum() == 250 and set(got["variant_id"]) == {f"v{i}" for i in range(50)}
    with Store(tmp_path / "r.duckdb", read_only=True) as s:  # the JSON column reads back as JSON
        assert s.query("SELECT count(*) AS n FROM examples WHERE detail->>'exact_match' = 'true'")["n"].iloc[0] == 500
    assert Store(tmp_path / "r.duckdb").append_batches("examples", iter([])) == 0


def test_bad_batches_are_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as s:
        with pytest.raises(HarnessInputError, match=r"no column 'colour'.*its columns are variant_id"):
            s.append_batches("examples", [batch(0, 5, colour=pa.array(["red"] * 5))])
        with pytest.raises(HarnessInputError, match="give every batch one schema"):
            s.append_batches("examples", [batch(0, 5), batch(5, 5).drop_columns(["output"])])
        with pytest.raises(HarnessInputError, match="not a results table"):
            s.append_batches("meta", [batch(0, 5)])
        assert s.query("SELECT count(*) AS n FROM examples")["n"].iloc[0] == 0  # the mismatch rolled back
