"""`--executor ray` on a two-node Ray cluster started on this machine: variants spread over both nodes with the
local executor's results, `resources:` honoured, and a worker killed mid-training retried once (resuming from its
checkpoint) or stored as failed with the reason, the driver returning within a bound."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep

pytest.importorskip("ray")
from conftest import make_rows, write_jsonl  # noqa: E402
from ray_cluster import Cluster, start_cluster  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = start_cluster()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """16 training conversations (12 train, 4 validation) and 10 test ones (the least a sweep accepts)."""
    write_jsonl(tmp_path / "train.jsonl", make_rows(16))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    return tmp_path


@pytest.fixture
def on_cluster(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    return cluster


def sweep(spec: Path, db: Path, executor: str) -> str:
    with open(spec.parent / f"{db.stem}.out", "w") as out:
        rid = run_sweep(spec, db, executor=executor, progress=Quiet(), out=out)
    assert rid is not None
    return rid


def variants(db: Path, rid: str) -> list[dict[str, object]]:
    with Store(db, read_only=True) as s:
        return list(s.run_table(rid, "variants").to_dict("records"))


def node_id(row: dict[str, object]) -> str:
    """The Ray node id's start, the last word of the row's `node` (host address node-id)."""
    return str(row["node"]).split()[-1]


FOUR = """\
name: four
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep: {method: [lora], rank: [2, 4, 8], epochs: [1], learning_rate: [1.0e-3]}
train: {max_seq_length: 64, batch_size: 8, max_steps: 2}
suites: [{name: heldout, options: {max_new_tokens: 4}}]
"""


def test_a_sweep_spreads_over_both_nodes_with_the_local_executors_results(on_cluster: Cluster,
                                                                          folder: Path) -> None:
    spec = folder / "four.yaml"
    spec.write_text(FOUR, encoding="utf-8")
    ray_db, local_db = folder / "ray.duckdb", folder / "local.duckdb"
    ray_rows = variants(ray_db, sweep(spec, ray_db, "ray"))
    assert len(ray_rows) == 4 and {r["status"] for r in ray_rows} == {"finished"}, [r["error"] for r in ray_rows]
    ran_on = {node_id(r) for r in ray_rows}
    assert ran_on == {i[:12] for i in on_cluster.node_ids.values()}, ran_on  # both nodes, from the stored rows
    local_rows = variants(local_db, sweep(spec, local_db, "local"))
    assert all(r["node"] and len(str(r["node"]).split()) == 1 for r in local_rows)  # platform.node() locally
    assert [r["variant_id"] for r in ray_rows] == [r["variant_id"] for r in local_rows]
    for r in ray_rows:  # adapters and models where the driver reads them (the nodes share this file system)
        if r["method"] != "base":
            assert Path(str(r["artifact"])).is_dir() and str(r["artifact"]).startswith(str(folder))
    q = "SELECT variant_id, suite, metric, value FROM scores ORDER BY 1, 2, 3"
    with Store(ray_db, read_only=True) as a, Store(local_db, read_only=True) as b:
        on_ray, here = a.query(q), b.query(q)
        assert on_ray[["variant_id", "suite", "metric"]].equals(here[["variant_id", "suite", "metric"]])
        exact = on_ray["metric"] == "exact_match"
        assert on_ray[exact]["value"].equals(here[exact]["value"])
        for x, y, m in zip(on_ray["value"], here["value"], on_ray["metric"], strict=True):
            assert (x is None and y is None) or (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-4,
                                                                                                       abs=1e-6), m
        q = "SELECT variant_id, example_id, output FROM examples ORDER BY 1, 2"
        assert a.query(q).equals(b.query(q))  # the same greedy outputs, whichever node trained them


PINNED = """\
name: pinned
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep: {method: [lora], rank: [2], epochs: [1], learning_rate: [1.0e-3]}
train: {max_seq_length: 64, batch_size: 8}
suites: [{name: heldout, options: {max_new_tokens: 4}}]
resources: {RESOURCES}
"""


def test_a_custom_resource_pins_variants_to_the_node_that_has_it(on_cluster: Cluster, folder: Path) -> None:
    spec = folder / "pinned.yaml"
    spec.write_text(PINNED.replace("{RESOURCES}", "{resources: {node_b: 1}}"), encoding="utf-8")
    db = folder / "pinned.duckdb"
    rows = variants(db, sweep(spec, db, "ray"))
    assert [r["status"] for r in rows] == ["finished", "finished"], [r["error"] for r in rows]
    assert {node_id(r) for r in rows} == {on_cluster.node_ids["node_b"][:12]}
    # what no node has fails at once, saying which key asks for it and what the nodes have
    spec.write_text(PINNED.replace("{RESOURCES}", "{gpus_per_variant: 2}"), encoding="utf-8")
    db = folder / "gpus.duckdb"
    t0 = time.monotonic()
    rows = variants(db, sweep(spec, db, "ray"))
    assert time.monotonic() - t0 < 120
    assert [r["status"] for r in rows] == ["failed", "failed"]
    assert all("no node of the Ray cluster has 1 CPU, 2 GPU" in str(r["error"]) and "'resources'" in str(r["error"])
               for r in rows), rows[0]["error"]


KILLED = """\
name: killed
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep: {method: [lora], rank: [2, 4], epochs: [12], learning_rate: [1.0e-3]}
train: {max_seq_length: 64, batch_size: 8}
suites: [{name: heldout, options: {max_new_tokens: 4}}]
"""
BOUND_SECONDS = 420  # the driver returns within this, whatever the kills


def _killer(runs: Path, kills: dict[str, int], stop: threading.Event, log: list[str]) -> None:
    """Kill each variant's worker (the pid its attempt recorded) once it has a checkpoint, `kills[name]` times."""
    done: dict[str, int] = {}
    while not stop.is_set():
        for folder in runs.glob("*/attempts.jsonl"):
            vid = folder.parent.name
            tries = [json.loads(line) for line in folder.read_text().splitlines() if line.strip()]
            want = kills.get(vid, 0)
            if done.get(vid, 0) >= want or len(tries) <= done.get(vid, 0):
                continue
            if not any((folder.parent / "trainer").glob("checkpoint-*/trainer_state.json")):  # a whole checkpoint
                continue
            pid = int(tries[-1]["pid"])
            try:
                psutil.Process(pid).kill()
                log.append(f"killed {vid} try {len(tries)} (pid {pid})")
            except psutil.NoSuchProcess:
                log.append(f"{vid} try {len(tries)} (pid {pid}) was gone")
            done[vid] = done.get(vid, 0) + 1
        time.sleep(0.05)


def test_a_killed_worker_is_retried_once_resuming_then_the_variant_is_stored_failed(on_cluster: Cluster,
                                                                                   folder: Path) -> None:
    spec = folder / "killed.yaml"
    spec.write_text(KILLED, encoding="utf-8")
    db = folder / "killed.duckdb"
    from harness.sweep.runner import Sweep

    plan = {v.name: v.variant_id for v in Sweep(spec).variants}
    once, twice = plan["lora-r2-e12"], plan["lora-r4-e12"]
    stop, log = threading.Event(), []
    killer = threading.Thread(target=_killer, args=(db.parent / "runs", {once: 1, twice: 2}, stop, log), daemon=True)
    killer.start()
    t0 = time.monotonic()
    try:
        rid = sweep(spec, db, "ray")
    finally:
        stop.set()
        killer.join()
    took = time.monotonic() - t0
    assert took < BOUND_SECONDS, log
    rows = {r["variant_id"]: r for r in variants(db, rid)}
    assert len(rows) == 3, rows  # one row per variant, however many tries
    with Store(db, read_only=True) as s:
        assert s.query("SELECT count(*) AS n FROM variant_results").iloc[0, 0] == 3
    assert any(once in line and "killed" in line for line in log), log
    resumed = rows[once]
    assert resumed["status"] == "finished", (resumed["error"], log)
    config = json.loads(str(resumed["config"])) if isinstance(resumed["config"], str) else resumed["config"]
    assert config["worker"]["attempt"] == 2, log
    assert str(config["training"]["resumed_from"]).startswith("checkpoint-"), config["training"]  # resumed, not restarted
    failed = rows[twice]
    assert failed["status"] == "failed", log
    assert "the worker process died while running it, on each of 2 tries" in str(failed["error"]), failed["error"]
    assert failed["node"], "the node of its last try"
