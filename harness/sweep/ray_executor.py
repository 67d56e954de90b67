"""`--executor ray`: each local variant is a Ray task; results come back to the driver, which alone writes DuckDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from harness.errors import HarnessInputError
from harness.progress import Progress
from harness.results import VariantResult, failed_result
from harness.spec.plan import Variant
from harness.sweep.execute import PreparedSweep, VariantTask

POLL_SECONDS = 1.0  # how often the driver looks up from Ray to hand out remote events


def _connect() -> ModuleType:
    """The `ray` module, connected to a cluster (RAY_ADDRESS) or a local one it starts."""
    try:
        import ray
    except ImportError:
        raise HarnessInputError("--executor ray needs Ray: pip install 'finetune-harness[ray]'") from None
    if not ray.is_initialized():
        # RAY_ADDRESS points at a cluster; without it Ray starts a local one on this machine.
        ray.init(address=os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False,
                 include_dashboard=False)
    return ray


def _run_variant(task: VariantTask) -> VariantResult:
    from harness.sweep.execute import execute_variant

    return execute_variant(task)


def execute_ray(sweep: PreparedSweep, variants: list[Variant], out_dir: Path, progress: Progress
                ) -> Iterator[tuple[Variant | None, VariantResult | None]]:
    """Submit every variant as a Ray task (asking for a GPU where the cluster has them); yield (variant, result)
    as each finishes, and (None, None) every POLL_SECONDS while none has, so the caller can do other work."""
    ray = _connect()
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote_fn = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_run_variant)
    pending = {remote_fn.remote(sweep.task(v, out_dir)): v for v in variants}
    progress.info(f"submitted {len(pending)} variants to Ray ({int(ray.cluster_resources().get('CPU', 0))} CPUs, "
                  f"{gpus and int(ray.cluster_resources()['GPU'])} GPUs)")
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
        if not ready:
            yield None, None
            continue
        v = pending.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except Exception as exc:  # noqa: BLE001 - a lost worker fails its variant, not the sweep
            planned = sweep.task(v, out_dir).planned()
            result = failed_result(planned, f"Ray task failed: {exc.__class__.__name__}: {exc}")
        progress.info(f"Ray: {v.name} {result.variant.status}")
        yield v, result
