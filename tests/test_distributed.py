"""`--executor ray`: the same sweep through Ray tasks stores the same results as a local run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep


@pytest.mark.slow
def test_ray_executor_matches_local(tiny_experiment: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with open(tmp_path / "out.txt", "w") as out:
            ray_run = run_sweep(tiny_experiment, tmp_path / "ray.duckdb", executor="ray", progress=Quiet(), out=out)
            local_run = run_sweep(tiny_experiment, tmp_path / "local.duckdb", progress=Quiet(), out=out)
    finally:
        ray.shutdown()
    assert ray_run and local_run
    with Store(tmp_path / "ray.duckdb", read_only=True) as a, Store(tmp_path / "local.duckdb", read_only=True) as b:
        va, vb = a.run_table(ray_run, "variants"), b.run_table(local_run, "variants")
        assert list(va["variant_id"]) == list(vb["variant_id"]) and set(va["status"]) == {"finished"}
        q = "SELECT variant_id, metric, value FROM scores WHERE metric = 'exact_match' ORDER BY 1"
        assert a.query(q).equals(b.query(q))
        q = "SELECT variant_id, example_id, output FROM examples ORDER BY 1, 2"
        assert a.query(q).equals(b.query(q))  # same greedy outputs, whichever process trained them
