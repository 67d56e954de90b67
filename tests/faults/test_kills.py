"""SIGKILL mid-training then resume, and SIGKILL at random moments of a large commit: nothing partial is ever
stored, finished variants are not redone, and a run whose process is gone shows as interrupted (case 3)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from faultlib import ONE_LORA, Child, cli, harness, write_experiment, write_variant_then

from harness.store.db import Store

pytestmark = pytest.mark.faults

TWO_LORA = ONE_LORA.replace("rank: [2]", "rank: [2, 4]")
N_EXAMPLES = 40_000


def test_sigkill_mid_training_then_resume_redoes_only_the_missing_variant(tmp_path: Path) -> None:
    spec = write_experiment(tmp_path, TWO_LORA)
    db = tmp_path / "r.duckdb"
    child = Child("sweep", str(spec), "--db", str(db), cwd=tmp_path)
    try:
        child.wait_for("stored lora-r2-e1", "variant 3/3 lora-r4-e1", "training steps")
    finally:
        child.kill()  # SIGKILL: no handler runs
    out = harness("runs", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0 and "interrupted (stale" in out.stdout, out.stdout
    with Store(db, read_only=True) as s:
        assert sorted(s.query("SELECT name FROM variant_results")["name"]) == ["base", "lora-r2-e1"]
        first = s.query("SELECT run_id FROM runs")["run_id"].iloc[0]
        before = s.query("SELECT variant_id, finished_at FROM variant_results ORDER BY 1")
    resumed = cli("sweep", str(spec), "--db", str(db))
    assert resumed.returncode == 0, resumed.stderr
    with Store(db, read_only=True) as s:
        results = s.query("SELECT variant_id, name, finished_at FROM variant_results ORDER BY 1")
        assert results["variant_id"].is_unique and len(results) == 3
        kept = results[results["variant_id"].isin(before["variant_id"])].reset_index(drop=True)
        assert kept[["variant_id", "finished_at"]].equals(before)  # finished variants were not trained again
        runs = s.query("SELECT run_id, status FROM runs ORDER BY started_at")
        assert list(runs["status"]) == ["interrupted", "finished"] and runs["run_id"].iloc[0] == first
        links = s.query("SELECT reused FROM run_variants WHERE run_id = ? ORDER BY position", [runs["run_id"].iloc[1]])
        assert list(links["reused"]) == [True, True, False]
        for table in ("train_log", "scores", "examples"):
            ids = set(s.query(f"SELECT DISTINCT variant_id FROM {table}")["variant_id"])
            assert ids <= set(results["variant_id"]), table


def test_sigkill_during_a_large_commit_is_all_or_nothing(tmp_path: Path) -> None:
    from harness.store.recover import recover

    db = tmp_path / "r.duckdb"
    rng = random.Random(11)
    committed: set[str] = set()
    for i in range(10):
        vid = f"big{i}"
        out = write_variant_then(db, vid, N_EXAMPLES, "kill-during", rng.uniform(0.0, 1.2))
        assert "ready" in out.stdout, out.stderr
        if re.search(r"committed", out.stdout):
            committed.add(vid)
        state = _variants(db)
        if (tmp_path / "r.duckdb.wal").exists():
            try:
                Store(db).close()  # refused only when the WAL ends mid-transaction
            except Exception as exc:  # noqa: BLE001
                assert "harness store recover" in str(exc)
                recover(db)
                assert _variants(db) == state, "recovery must keep exactly what was committed"
        assert committed <= set(state), (committed, state)
        for v, n in state.items():
            assert n == N_EXAMPLES, f"{v}: {n} of {N_EXAMPLES} example rows: a partial commit"
    assert committed, "no commit finished before its kill: the delays are too short for this machine"


def _variants(db: Path) -> dict[str, int]:
    with Store(db, read_only=True) as s:
        rows = s.query("SELECT v.variant_id, count(e.example_id) AS n FROM variant_results v "
                       "LEFT JOIN examples e USING (variant_id) GROUP BY ALL")
        orphans = s.query("SELECT count(*) AS n FROM examples WHERE variant_id NOT IN "
                          "(SELECT variant_id FROM variant_results)")["n"].iloc[0]
    assert orphans == 0, "example rows without their variant: a partial commit"
    return dict(zip(rows["variant_id"], rows["n"], strict=True))
