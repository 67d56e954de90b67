"""Train (or load) and score one local variant: a function of plain, serialisable inputs that returns its rows.

It never opens the store, so the same function runs in-process or as a Ray task.
"""

from __future__ import annotations

import os
import platform
import socket
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.data.chat import DataBundle
from harness.data.suites import Suite
from harness.models.resolve import ModelRef
from harness.progress import Progress, Quiet
from harness.results import (
    LogPoint,
    RanOn,
    RunParts,
    VariantResult,
    VariantRow,
    Worker,
    failed_result,
    planned_row,
    scored_result,
)
from harness.spec.plan import Variant
from harness.spec.schema import ExperimentSpec, TrainSpec

if TYPE_CHECKING:
    from collections.abc import Mapping

    from harness.store.db import Incomplete


@dataclass(frozen=True)
class Rescore:
    """The rerun of an incomplete variant: only `suites` (the ones that failed) are scored, on its stored artifact
    (nothing is trained again), with its stored train log for the suites that read it."""

    suites: list[str]
    artifact: str | None  # the adapter or model folder it was scored at (None: nothing trained, e.g. base)
    train_log: list[LogPoint]


@dataclass
class VariantTask:
    """Everything needed to produce one variant's results (plain data and pydantic models: it pickles for Ray)."""

    variant: Variant
    model: ModelRef
    train: TrainSpec  # the spec's train settings, fixed at plan time
    data: DataBundle
    suites: list[Suite]
    out_dir: str
    base_url: str | None = None
    base_outputs: dict[str, dict[str, str]] | None = None  # base's outputs by suite and example id (pairwise judges)
    rescore: Rescore | None = None  # an incomplete variant: score only its failed suites (`suites` holds just them)
    storage: str | None = None  # the spec's `storage:`: where weights go that every Ray node reaches (docs/ray.md)
    node: str | None = None  # where it runs, for the row's `node` (None: this host's name)
    attempt: int = 1  # which try this is (Ray runs a variant again once if its worker dies)

    def planned(self) -> VariantRow:
        """The variant's `variants` row as the plan fixes it, before it has run."""
        return planned_row(self.variant, self.model.identity, self.train)


class PreparedSweep(Protocol):
    """What the scheduler and the executors use of a prepared sweep (harness.sweep.runner.Sweep)."""

    @property
    def spec(self) -> ExperimentSpec: ...

    @property
    def model(self) -> ModelRef: ...

    @property
    def data(self) -> DataBundle: ...

    @property
    def suites(self) -> list[Suite]: ...

    @property
    def base_outputs(self) -> dict[str, dict[str, str]]: ...

    def task(self, v: Variant, out_dir: Path) -> VariantTask: ...


def rescores(todo: list[Variant], suites: list[Suite], remote_model: bool,
             incomplete: Mapping[str, Incomplete]) -> dict[str, Rescore]:
    """What a rerun scores of each stored incomplete variant: its failed suites, on its stored artifact. A variant
    scored through an API, or whose trained artifact is gone, is run again whole instead."""
    names, out = {s.name for s in suites}, {}
    for v in todo:
        found = incomplete.get(v.variant_id)
        if found is None or v.is_remote or remote_model or not found.suites or not set(found.suites) <= names:
            continue
        if v.trains and not (found.artifact and Path(found.artifact).is_dir()):
            continue
        out[v.variant_id] = Rescore(list(found.suites), found.artifact, found.train_log)
    return out


def worker(attempt: int = 1) -> Worker:
    """Which process ran a variant (recorded in its config: Ray tasks run in other processes, or on other hosts)."""
    return Worker(os.getpid(), socket.gethostname(), attempt)


def ran_on(parts: RunParts, model: object, node: str) -> RanOn:
    """How a local variant ran: training's processes and strategy, every device it trained or was scored on, the host."""
    from harness.models.device import model_devices

    stats = parts.training.stats if parts.training else None
    devices = model_devices(model)
    if stats is not None and stats.devices:
        devices = sorted({*stats.devices.split(","), *devices})
    return RanOn(stats.processes if stats else 1, stats.strategy if stats else None, ",".join(devices),
                 node)


def execute_variant(task: VariantTask, progress: Progress | None = None) -> VariantResult:
    """Train and score one local variant (base, lora, qlora, full, given); failures come back as a failed row."""
    progress = progress or Quiet()
    planned, parts = replace(task.planned(), node=task.node or platform.node()), RunParts(worker=worker(task.attempt))
    v, train = task.variant, task.train
    out_dir = Path(task.out_dir) / v.variant_id
    try:
        from transformers.utils import logging as hf_logging

        from harness.models.device import detect_placement, record_placement
        from harness.models.judge_model import open_judge
        from harness.models.local import LocalModel
        from harness.models.prompted import for_variant
        from harness.models.resolve import load_model, load_tokenizer
        from harness.scorers.run import score_suites

        hf_logging.disable_progress_bar()
        placement = detect_placement(train.dtype)
        if train.distributed is not None and train.distributed.device_map == "auto":
            placement = replace(placement, spread=True)  # scoring loads across every visible GPU
        train_log: list[LogPoint] = list(task.rescore.train_log) if task.rescore else []
        if v.trains and task.rescore is not None and task.rescore.artifact:
            from harness.train.local import load_trained

            progress.info(f"{v.name}: scoring suites {', '.join(task.rescore.suites)} on its stored artifact "
                          f"{task.rescore.artifact} (not trained again; its other suites are stored)")
            model, tok = load_trained(task.model, Path(task.rescore.artifact), v.method, placement)
        elif v.trains:
            from harness.train.local import train_for_scoring

            progress.phase("training steps", None)
            trained = train_for_scoring(task.model, v, train, [e.messages for e in task.data.train],
                                        [e.messages for e in task.data.validation], out_dir.parent,
                                        on_step=progress.step, placement=placement)
            progress.close_phase()
            model, tok, train_log = trained.model, trained.tokenizer, trained.log
            parts = replace(parts, training=trained.outcome)
        elif v.method == "given":
            from harness.train.local import load_given

            ckpt = Path(v.checkpoint_path or "")
            model, tok = load_given(task.model, ckpt, placement)
            parts = replace(parts, given=str(ckpt))
        else:
            model = load_model(task.model, placement=placement, attn_implementation=train.attn_implementation)
            tok = load_tokenizer(task.model)
        parts = replace(parts, placed=record_placement(model, placement), ran_on=ran_on(parts, model, planned.node or platform.node()))
        t0 = time.perf_counter()
        untouched = v.method in ("base", "prompt")  # the resolved model's own weights, as loaded
        weights = f"{task.model.identity}|{placement.dtype}|{train.attn_implementation}" if untouched else None
        local = LocalModel(model, tok, name=v.name, batch_size=train.eval_batch_size, on_batch=progress.advance,
                           weights=weights)
        lm, prompt = for_variant(local, v, task.data.train)
        parts = replace(parts, prompt=prompt)
        suites = score_suites(lm, v, task.suites, task.data.test, train_log, progress,
                              train=task.data.train, open_judge=open_judge, base_outputs=task.base_outputs)
        parts = replace(parts, usage=lm.usage.per_request(), score_seconds=time.perf_counter() - t0)
        return scored_result(planned, parts, train_log, suites, task.rescore.suites if task.rescore else None)
    except Exception as exc:  # noqa: BLE001 - one variant's failure must not end the sweep
        progress.close_phase()
        d = train.distributed
        tried = parts.ran_on or RanOn(d.processes if d and v.trains else 1, d.strategy if d and d.processes > 1 and
                                      v.trains else None, None, planned.node or platform.node())
        return failed_result(planned, f"{exc.__class__.__name__}: {exc}",
                             replace(parts, traceback=traceback.format_exc(limit=3), ran_on=tried))
