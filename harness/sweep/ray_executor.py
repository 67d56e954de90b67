"""`--executor ray`: each local variant is a Ray task asking for the spec's `resources:`; results come back to the
driver, which alone writes DuckDB. A task whose worker dies (process killed, node gone) runs once more, resuming from
its checkpoints; then it is stored as failed with the reason. The driver's wait is bounded (docs/ray.md)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from harness.errors import HarnessInputError
from harness.progress import Progress
from harness.results import VariantResult, failed_result
from harness.spec.plan import Variant
from harness.spec.sections import ResourcesSpec
from harness.sweep.cluster_files import NodeResult, attempts, check_storage, land, pack, record_attempt, work_folder
from harness.sweep.execute import PreparedSweep, VariantTask

T = TypeVar("T")
POLL_SECONDS = 1.0  # how often the driver looks up from Ray to hand out remote events
MAX_RETRIES = 1  # a task whose worker or node dies runs once more (Ray's own retry of system failures)


@dataclass(frozen=True)
class Request:
    """What one variant asks Ray for."""

    cpus: float
    gpus: float
    custom: dict[str, float]

    def options(self) -> dict[str, object]:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus, "resources": dict(self.custom),
                "max_retries": MAX_RETRIES, "retry_exceptions": False}

    def describe(self) -> str:
        parts = [f"{self.cpus:g} CPU", f"{self.gpus:g} GPU", *(f"{v:g} {k}" for k, v in self.custom.items())]
        return ", ".join(parts)

    def fits(self, total: dict[str, float]) -> bool:
        need = {"CPU": self.cpus, "GPU": self.gpus, **self.custom}
        return all(total.get(k, 0.0) >= v for k, v in need.items() if v > 0)


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


def request(spec: ResourcesSpec, cluster: dict[str, float], processes: int = 1) -> Request:
    """The spec's per-variant request; without gpus_per_variant, one GPU per training process (train.distributed)
    where the cluster has any GPU, else none (as before)."""
    gpus = spec.gpus_per_variant if spec.gpus_per_variant is not None else (
        float(processes) if cluster.get("GPU", 0) >= 1 else 0.0)
    return Request(spec.cpus_per_variant, gpus, dict(spec.resources))


def node_label() -> str:
    """This Ray worker's node: host name, address and (the start of) Ray's node id."""
    import ray

    return f"{socket.gethostname()} {ray.util.get_node_ip_address()} {ray.get_runtime_context().get_node_id()[:12]}"


def _run_variant(task: VariantTask, marker: str) -> NodeResult:
    """The Ray task: train and score in a folder this node can write (the driver's where it sees it), then send
    back the result and, where the driver cannot read the adapter, its files."""
    from harness.sweep.execute import execute_variant

    node = node_label()
    folder = work_folder(task.out_dir, marker, task.storage)
    attempt = record_attempt(folder.path, task.variant.variant_id, node)
    result = execute_variant(replace(task, out_dir=str(folder.path), node=node, attempt=attempt))
    return pack(result, folder, task.storage)


def _feasible(ray: ModuleType, need: Request) -> str | None:
    """None where some alive node has what a variant asks for; else why not, naming the nodes' resources."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if any(need.fits(n.get("Resources", {})) for n in nodes):
        return None
    have = "; ".join(f"{n.get('NodeManagerAddress')}: " + ", ".join(
        f"{v:g} {k}" for k, v in sorted(n.get("Resources", {}).items()) if "memory" not in k and not k.startswith("node:"))
        for n in nodes)
    return (f"no node of the Ray cluster has {need.describe()} (spec key 'resources'); nodes: {have or 'none'}. "
            "Lower resources.gpus_per_variant / cpus_per_variant, or start a node with what it asks for")


def _lost(ray: ModuleType, exc: Exception, out_dir: Path, v: Variant) -> str:
    """Why a variant's task came back without a result (its worker died on every try, it was cancelled, ...)."""
    last = _last_node(out_dir, v)
    where = f"; last on node {last}" if last else ""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    # a task's own exception ends with the original error; Ray's system errors say it first
    detail = (lines[-1] if isinstance(exc, ray.exceptions.RayTaskError) else lines[0]) if lines else ""
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        kind = "its node died" if isinstance(exc, ray.exceptions.NodeDiedError) else "the worker process died"
        return (f"Ray: {kind} while running it, on each of {MAX_RETRIES + 1} tries (a retry resumes from the last "
                f"checkpoint){where}: {exc.__class__.__name__}: {detail}")
    return f"Ray task failed{where}: {exc.__class__.__name__}: {detail}"


def _start(sweep: PreparedSweep, out_dir: Path) -> tuple[ModuleType, Request, Path]:
    """Ray connected, what each variant asks for, and the driver's marker file in `out_dir` (a node that sees it
    shares the driver's folder; the caller removes it)."""
    ray = _connect()
    dist = sweep.spec.train.distributed
    need = request(sweep.spec.resources, ray.cluster_resources(), dist.processes if dist is not None else 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    marker = out_dir / f".driver-{uuid.uuid4().hex}"
    marker.write_text(socket.gethostname(), encoding="utf-8")
    return ray, need, marker


def execute_ray(sweep: PreparedSweep, variants: list[Variant], out_dir: Path, progress: Progress
                ) -> Iterator[tuple[Variant | None, VariantResult | None]]:
    """Submit every variant as a Ray task with its resources; yield (variant, result) as each finishes, and
    (None, None) every POLL_SECONDS while none has, so the caller can do other work."""
    check_storage(sweep.spec.storage)
    ray, need, marker = _start(sweep, out_dir)
    cluster = ray.cluster_resources()
    limit = sweep.spec.resources.timeout_minutes
    remote_fn = ray.remote(_run_variant).options(**need.options())
    pending: dict[object, tuple[Variant, float]] = {}
    try:
        impossible = _feasible(ray, need)
        for v in variants:
            if impossible:
                yield v, failed_result(sweep.task(v, out_dir).planned(), impossible)
                continue
            pending[remote_fn.remote(sweep.task(v, out_dir), str(marker))] = (v, time.monotonic())
        if pending:
            progress.info(f"submitted {len(pending)} variants to Ray, each asking for {need.describe()} (cluster: "
                          f"{len(ray.nodes())} nodes, {cluster.get('CPU', 0):g} CPUs, {cluster.get('GPU', 0):g} GPUs)")
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            if not ready:
                yield from _overdue(ray, pending, limit, sweep, out_dir)
                yield None, None
                continue
            v, _started = pending.pop(ready[0])
            try:
                reply: NodeResult = ray.get(ready[0])
                result = land(reply, out_dir)
                if reply.note:
                    progress.info(f"Ray: {v.name}: {reply.note}")
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its variant, not the sweep
                planned = replace(sweep.task(v, out_dir).planned(), node=_last_node(out_dir, v))
                result = failed_result(planned, _lost(ray, exc, out_dir, v))
            progress.info(f"Ray: {v.name} {result.variant.status} on {result.variant.node or 'an unknown node'}")
            yield v, result
    finally:
        for ref in pending:  # the driver stops (Ctrl-C, an error): its tasks stop with it
            ray.cancel(ref, force=True)
        marker.unlink(missing_ok=True)


def map_shared(sweep: PreparedSweep, calls: Sequence[tuple[Variant, Callable[[], T]]], out_dir: Path,
               progress: Progress) -> Iterator[tuple[Variant, T | BaseException]]:
    """Run each (variant, call) as a Ray task with the spec's resources, on nodes that see the driver's `out_dir`
    (work that pauses and resumes there, like a search's rungs); yield (variant, the call's return value or the
    exception it ended with) as each finishes. A node that does not see the folder fails the call, saying so."""
    ray, need, marker = _start(sweep, out_dir)
    impossible = _feasible(ray, need)
    if impossible:
        marker.unlink(missing_ok=True)
        raise HarnessInputError(impossible)
    remote_fn = ray.remote(_in_shared_folder).options(**need.options())
    pending = {remote_fn.remote(call, str(marker)): v for v, call in calls}
    progress.info(f"submitted {len(pending)} tasks to Ray, each asking for {need.describe()}")
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            if not ready:
                continue
            v = pending.pop(ready[0])
            try:
                yield v, ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # the task's own exception, as it was raised there
                yield v, exc.as_instanceof_cause()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its variant, not the sweep
                yield v, RuntimeError(_lost(ray, exc, out_dir, v))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        marker.unlink(missing_ok=True)


def _in_shared_folder(call: Callable[[], T], marker: str) -> T:
    """The Ray task of map_shared: `call()` where the driver's folder is visible, else an error naming the node."""
    if not Path(marker).is_file():
        raise HarnessInputError(f"Ray node {node_label()} does not see the driver's output folder "
                                f"({Path(marker).parent}); a search with a scheduler pauses and resumes its trials "
                                "there, so run it on nodes that share that folder (docs/search.md)")
    return call()


def _overdue(ray: ModuleType, pending: dict[object, tuple[Variant, float]], limit: float | None,
             sweep: PreparedSweep, out_dir: Path) -> Iterator[tuple[Variant, VariantResult]]:
    """Variants past resources.timeout_minutes (counted from submission): cancelled, stored as failed."""
    if limit is None:
        return
    now = time.monotonic()
    for ref, (v, started) in list(pending.items()):
        if now - started > limit * 60:
            ray.cancel(ref, force=True)
            del pending[ref]
            why = (f"Ray: still running after resources.timeout_minutes={limit:g} minutes (from submission); "
                   "cancelled. Raise the limit, or rerun: a rerun resumes from the last checkpoint")
            yield v, failed_result(replace(sweep.task(v, out_dir).planned(), node=_last_node(out_dir, v)), why)


def _last_node(out_dir: Path, v: Variant) -> str | None:
    tries = attempts(out_dir, v.variant_id)
    return str(tries[-1]["node"]) if tries else None
