"""Who runs what, and where: one scheduler for every sweep.

Remote variants (managed fine-tuning jobs on OpenAI or Azure OpenAI, API-scored model ids) are all submitted first and followed together in the
background; meanwhile local variants train one after another in this process, or all at once as Ray tasks.
`base` is handed out before any other result, since findings compare every variant with it. The scheduler
yields what the runner must store; it never writes the store itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.progress import Progress
from harness.results import VariantResult
from harness.scores import JSONDict
from harness.spec.plan import Variant

if TYPE_CHECKING:
    from harness.sweep.execute import PreparedSweep
    from harness.train.remote import RemoteJobs


@dataclass
class Finished:
    """A variant's result (finished or failed), ready to store."""

    variant: Variant
    result: VariantResult


@dataclass
class JobRow:
    """A managed fine-tuning job's row (the `jobs` table), to store as soon as it is known."""

    row: JSONDict


Event = Finished | JobRow


class _BaseFirst:
    """Holds results back until `base` has been handed out (when base is among the variants to run)."""

    def __init__(self, base_id: str | None):
        self.base_id = base_id
        self.held: list[Finished] = []

    def add(self, item: Finished) -> Iterator[Finished]:
        self.held.append(item)
        if self.base_id is not None:
            base = [h for h in self.held if h.variant.variant_id == self.base_id]
            if not base:
                return
            self.held.remove(base[0])
            self.base_id = None
            yield base[0]
        while self.held:
            yield self.held.pop(0)


def is_remote(sweep: PreparedSweep, v: Variant) -> bool:
    """Trained or scored through an API rather than on this machine (or a Ray worker)."""
    return v.is_remote or sweep.model.is_remote


def schedule(sweep: PreparedSweep, todo: list[Variant], out_dir: Path, executor: str, progress: Progress, *,
             stored_jobs: Mapping[str, Mapping[str, object]] | None = None, run_id: str | None = None) -> Iterator[Event]:
    """Run `todo` (a prepared Sweep's variants); yield job rows and results as they come, `base` first."""
    remote = [v for v in todo if is_remote(sweep, v)]
    local = [v for v in todo if not is_remote(sweep, v)]
    order = _BaseFirst(next((v.variant_id for v in todo if v.method == "base"), None))
    jobs = _start_remote(sweep, remote, out_dir, stored_jobs or {}, run_id) if remote else None
    try:
        if jobs is not None:
            yield from _drain(jobs, order, progress, block=False)
        for item in _local(sweep, local, out_dir, executor, progress):
            if item is not None:
                yield from order.add(item)
            if jobs is not None:
                yield from _drain(jobs, order, progress, block=False)
        while jobs is not None and jobs.pending:
            yield from _drain(jobs, order, progress, block=True)
        yield from order.held  # base failed to come back (it always does) or was not in `todo`
    finally:
        if jobs is not None:
            jobs.close()


def _start_remote(sweep: PreparedSweep, remote: list[Variant], out_dir: Path, stored_jobs: Mapping[str, Mapping[str, object]],
                  run_id: str | None) -> RemoteJobs:
    from harness.train.remote import RemoteInputs, RemoteJobs

    inputs = RemoteInputs(sweep.model, sweep.data, sweep.suites, sweep.spec.train, sweep.spec.name,
                          str(sweep.spec.source_path), sweep.spec.base_url, out_dir, run_id, azure=sweep.spec.azure,
                          base_outputs=sweep.base_outputs)
    jobs = RemoteJobs(inputs, stored_jobs)
    jobs.start(remote)
    return jobs


def _drain(jobs: RemoteJobs, order: _BaseFirst, progress: Progress, *, block: bool) -> Iterator[Event]:
    from harness.train.remote_types import Info, JobUpdate

    for event in jobs.events(block=block):
        if isinstance(event, Info):
            progress.info(event.message)
        elif isinstance(event, JobUpdate):
            yield JobRow(event.row)
        else:
            yield from order.add(Finished(event.variant, event.result))


def _local(sweep: PreparedSweep, local: list[Variant], out_dir: Path, executor: str, progress: Progress
           ) -> Iterator[Finished | None]:
    """Local results as they finish; None now and then while Ray tasks run, so remote events are not held up."""
    if not local:
        return
    if executor == "ray":
        from harness.sweep.ray_executor import execute_ray

        for v, result in execute_ray(sweep, local, out_dir, progress):
            yield None if v is None or result is None else Finished(v, result)
        return
    from harness.sweep.execute import execute_variant

    for i, v in enumerate(local, start=1):
        progress.variant_start(i, len(local), v.name, "training and scoring" if v.trains else "scoring")
        yield Finished(v, execute_variant(sweep.task(v, out_dir), progress))
