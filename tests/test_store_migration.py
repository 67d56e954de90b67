"""Opening a version-1 store migrates it: variant_results gains device, dtype and real_token_share."""

from __future__ import annotations

from pathlib import Path

import duckdb

from harness.results import VariantRow
from harness.store.db import SCHEMA_VERSION, TABLES, Store, VariantResult

V1_VARIANT_RESULTS = """
    variant_id VARCHAR PRIMARY KEY, run_id VARCHAR, name VARCHAR, method VARCHAR, rank INTEGER,
    epochs INTEGER, learning_rate DOUBLE, seed INTEGER, base_model VARCHAR, status VARCHAR,
    train_seconds DOUBLE, train_tokens BIGINT, tokens_per_second DOUBLE, trainable_params BIGINT,
    total_params BIGINT, peak_memory_mb DOUBLE, artifact VARCHAR, error VARCHAR,
    artifact_bytes BIGINT, score_seconds DOUBLE, config JSON, finished_at TIMESTAMP"""


def _v1_store(path: Path) -> None:
    con = duckdb.connect(str(path))
    for table, ddl in TABLES.items():
        con.execute(f"CREATE TABLE {table} ({V1_VARIANT_RESULTS if table == 'variant_results' else ddl})")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO runs (run_id, name, status) VALUES ('r1', 'old', 'finished')")
    con.execute("INSERT INTO run_variants VALUES ('r1', 'v1', 0, false)")
    con.execute("INSERT INTO variant_results (variant_id, run_id, name, method, status) "
                "VALUES ('v1', 'r1', 'base', 'base', 'finished')")
    con.execute("""CREATE VIEW variants AS SELECT vr.variant_id, rv.run_id, vr.* EXCLUDE (variant_id, run_id)
                   FROM run_variants rv JOIN variant_results vr USING (variant_id)""")
    con.close()


def test_version_1_store_gains_device_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _v1_store(path)
    with Store(path) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'").iloc[0, 0] == str(SCHEMA_VERSION)
        old = s.run_table("r1", "variants").iloc[0]
        assert old["name"] == "base" and old["device"] is None and old["dtype"] is None
        s.write_variant(VariantResult(VariantRow("v2", "r1", name="lora", method="lora", status="finished",
                                                 device="cuda", dtype="bf16", real_token_share=0.9,
                                                 tokens_per_second=1000.0)))
        s.link_variants("r1", ["v1", "v2"], [False, False])
        new = s.run_table("r1", "variants").iloc[1]
        assert (new["device"], new["dtype"], new["real_token_share"]) == ("cuda", "bf16", 0.9)
    with Store(path, read_only=True) as s:  # a migrated file opens read-only too
        assert list(s.run_table("r1", "variants")["device"])[1] == "cuda"
