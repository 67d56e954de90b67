"""A trial's training up to a rung: resumed from its checkpoint, stopped at the rung's epoch, its checkpoints kept for
the rung after. Each call's seconds are kept beside the checkpoints (search.json), so a rerun after a kill still
counts what the killed process trained."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.progress import Progress, Quiet
from harness.results import LogPoint
from harness.sweep.execute import VariantTask


@dataclass(frozen=True)
class Segment:
    """One call's training: up to which epoch, how many steps it reached, and its wall seconds."""

    epoch: int
    step: int
    seconds: float


def folder(task: VariantTask) -> Path:
    """Where the variant trains (the folder harness.train.local uses)."""
    return Path(task.out_dir) / task.variant.variant_id


def segments(task: VariantTask) -> list[Segment]:
    path = folder(task) / "search.json"
    return [Segment(**s) for s in json.loads(path.read_text())] if path.is_file() else []


def _add_segment(task: VariantTask, seg: Segment) -> None:
    path = folder(task) / "search.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([s.__dict__ for s in [*segments(task), seg]]))


def disk_log(task: VariantTask) -> list[LogPoint]:
    """The train log of the variant's last checkpoint on disk (a paused trial's), with the step-0 validation pass."""
    from transformers.trainer_utils import get_last_checkpoint

    from harness.train.checkpoints import log_rows

    trainer = folder(task) / "trainer"
    last = get_last_checkpoint(str(trainer)) if trainer.is_dir() else None
    if last is None:
        return []
    history = json.loads((Path(last) / "trainer_state.json").read_text())["log_history"]
    rows = log_rows(history)
    start = trainer / "start.json"
    if start.is_file():
        rows.insert(0, LogPoint(**json.loads(start.read_text())))
    return sorted(rows, key=lambda r: (r.step, r.split))


def value_at(log: list[LogPoint], epoch: int) -> float | None:
    """The validation loss of the pass at the end of `epoch`; None where the log has none (not trained that far)."""
    hits = [r.loss for r in log if r.split == "validation" and r.epoch is not None and abs(r.epoch - epoch) < 1e-3]
    return hits[-1] if hits else None


def train_to(task: VariantTask, epoch: int, progress: Progress | None = None) -> list[LogPoint]:
    """Train the variant up to the end of `epoch` (resuming from its checkpoint; nothing when it is there already) and
    return its train log. Runs in the driver or as a Ray task (harness.sweep.ray_executor.map_shared)."""
    progress = progress or Quiet()
    log = disk_log(task)
    if value_at(log, epoch) is not None:
        return log
    from harness.models.device import detect_placement
    from harness.train.checkpoints import Paused
    from harness.train.local import train_variant

    v, data = task.variant, task.data
    progress.phase("training steps", None)
    try:
        train_variant(task.model, v, task.train, [e.messages for e in data.train],
                      [e.messages for e in data.validation], folder(task), on_step=progress.step,
                      placement=detect_placement(task.train.dtype), pause_at=epoch)
    except Paused as paused:
        _add_segment(task, Segment(epoch, paused.step, paused.seconds))
        return paused.log
    finally:
        progress.close_phase()
    raise RuntimeError(f"{v.name}: training to epoch {epoch} ran to the end instead of pausing there")


def earlier_seconds(task: VariantTask) -> float:
    """Seconds the variant's earlier rungs trained (a survivor's final call times only its own part)."""
    return sum(s.seconds for s in segments(task))


def discard(task: VariantTask, keep: bool) -> None:
    """A stopped trial's checkpoints: deleted unless train.keep_checkpoints is `all`."""
    if not keep:
        shutil.rmtree(folder(task) / "trainer", ignore_errors=True)

