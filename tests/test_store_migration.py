"""Opening an older store migrates it: a version-1 store gains variant_results' device columns; a version-4 store
gains sample_scores and examples.cluster, filled from what examples.detail held."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from harness.results import VariantRow
from harness.store.db import SCHEMA_VERSION, TABLES, Store, VariantResult
from harness.store.reads import load_run
from harness.verdicts.compare import Settings, clusters_of, compare

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


def _v4_store(path: Path, details: dict[str, list[dict[str, object]]]) -> None:
    """A version-4 file as the previous harness wrote it: per-example values only inside examples.detail (under the
    metric's name, booleans as JSON true/false, the item's cluster under `cluster`), no sample_scores table."""
    con = duckdb.connect(str(path))
    for table, ddl in TABLES.items():
        if table == "sample_scores":
            continue
        con.execute(f"CREATE TABLE {table} ({ddl.replace(', cluster VARCHAR', '')})")
    con.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    con.execute("INSERT INTO runs (run_id, name, status) VALUES ('r1', 'old', 'finished')")
    for i, (vid, rows) in enumerate(details.items()):
        con.execute("INSERT INTO run_variants VALUES ('r1', ?, ?, false)", [vid, i])
        con.execute("INSERT INTO variant_results (variant_id, run_id, name, method, status) VALUES (?, 'r1', ?, ?, "
                    "'finished')", [vid, vid, "base" if vid == "base" else "lora"])
        for metric in ("field_accuracy", "exact_match"):
            values = [float(r[metric]) for r in rows]
            con.execute("INSERT INTO scores VALUES (?, 'heldout', ?, ?, 0.0, 1.0, ?, 'v1', ?)",
                        [vid, metric, sum(values) / len(values), len(values), json.dumps({"kind": "heldout"})])
        for j, detail in enumerate(rows):
            con.execute("INSERT INTO examples VALUES (?, 'heldout', ?, 'p', 'r', 'o', ?, ?)",
                        [vid, f"ex{j}", bool(detail["exact_match"]), json.dumps(detail)])
    con.close()


def test_version_4_store_gains_sample_scores_from_detail_and_pairs_as_before(tmp_path: Path) -> None:
    path = tmp_path / "v4.duckdb"
    base = [{"field_accuracy": 0.5, "exact_match": False, "cluster": f"c{j // 2}", "reason": "wrong"} for j in range(8)]
    lora = [{"field_accuracy": 1.0, "exact_match": j < 6, "cluster": f"c{j // 2}", "reason": "ok"} for j in range(8)]
    _v4_store(path, {"base": base, "lora": lora})
    with Store(path) as s:
        assert s.query("SELECT value FROM meta WHERE key = 'schema_version'").iloc[0, 0] == str(SCHEMA_VERSION)
        backfilled = s.query("SELECT variant_id, metric, count(*) AS n, sum(value) AS total FROM sample_scores "
                             "GROUP BY ALL ORDER BY ALL")
        # one row per example and per metric the suite has a score of; booleans as 1.0/0.0; `reason` is no metric
        assert backfilled.to_dict("records") == [
            {"variant_id": "base", "metric": "exact_match", "n": 8, "total": 0.0},
            {"variant_id": "base", "metric": "field_accuracy", "n": 8, "total": 4.0},
            {"variant_id": "lora", "metric": "exact_match", "n": 8, "total": 6.0},
            {"variant_id": "lora", "metric": "field_accuracy", "n": 8, "total": 8.0}]
        run = load_run(s, "r1")
        detail = json.loads(s.query("SELECT detail FROM examples WHERE variant_id = 'lora' AND example_id = 'ex0'"
                                    ).iloc[0, 0])
    assert detail == lora[0]  # detail keeps what it held
    clusters = clusters_of(run.examples, "heldout")
    assert clusters == {f"ex{j}": f"c{j // 2}" for j in range(8)}
    got = compare("heldout", "exact_match", run.values("lora", "heldout", "exact_match"),
                  run.values("base", "heldout", "exact_match"), Settings(), clusters=clusters)
    assert got is not None and got.paired and got.clustered and got.n == 8 and got.difference == 0.75
    with Store(path) as s:  # opened again: nothing is copied twice
        assert int(s.query("SELECT count(*) FROM sample_scores").iloc[0, 0]) == 32
