"""Checkpoints of local training: a checkpoint at every epoch boundary, the train log from Trainer's history (which
a resume restores), where and why early stopping ended a run, and which checkpoint each target epoch count is scored
at (`train.select`), its weights exported without the training state. Used by harness.train.local."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import (
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from harness.results import (
    DevicePolicy,
    LogPoint,
    MemorySettings,
    Scored,
    Stop,
    TrainingTimes,
    TrainStats,
)
from harness.scores import JSONDict
from harness.spec.schema import TrainSpec

__all__ = ["EpochBoundaries", "PauseAtEpoch", "Paused", "Scored", "TrainRecord", "export_weights", "group_lock", "log_rows", "select_checkpoints",
           "stop_reason"]

# Files of a Trainer checkpoint that hold training state, not the model: left behind when a checkpoint is exported.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "trainer_state.json")


@dataclass(frozen=True)
class TrainRecord:
    """One training's record: its log, stats and stop, the checkpoint scored for each target epoch count, and the peft
    configs it trained with. A group's other variants read it from trained.json (`dumps`/`loads`)."""

    log: list[LogPoint]
    stats: TrainStats
    scored: dict[int, Scored]  # target epoch count -> the checkpoint scored for it
    stop: Stop | None = None
    trained_by: str | None = None  # the variant id whose run trained it (epochs_from_one_run groups)
    peft: JSONDict | None = None
    quantization: JSONDict | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def loads(cls, text: str) -> TrainRecord:
        d = json.loads(text)
        s = d["stats"]
        stats = TrainStats(**{**s, "placement": DevicePolicy(**s["placement"]), "memory": MemorySettings(**s["memory"]),
                              "timing": TrainingTimes(**s["timing"])})
        return cls([LogPoint(**r) for r in d["log"]], stats, {int(k): Scored(**v) for k, v in d["scored"].items()},
                   Stop(**d["stop"]) if d["stop"] else None, d["trained_by"], d["peft"], d["quantization"])


class EpochBoundaries(TrainerCallback):
    """A checkpoint (and a validation pass, where there is a validation split) at every epoch boundary, besides the
    ones every `eval_steps`: epoch counts are what a sweep scores, so each must have its checkpoint."""

    def __init__(self, has_validation: bool):
        self.has_validation = has_validation

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kw: object) -> TrainerControl:
        step = state.global_step
        # decided from the schedule, not the disk, so every rank of a torchrun group decides alike (a save is
        # collective under FSDP); a step-based save at this very step has already written this checkpoint
        steps = args.save_strategy == "steps" and bool(args.save_steps)
        if not (steps and (step % int(args.save_steps) == 0 or step >= state.max_steps)):
            control.should_save = True
        if self.has_validation and not any(h.get("step") == step and "eval_loss" in h for h in state.log_history[-4:]):
            control.should_evaluate = True  # unless this step's validation pass has run already
        return control


class PauseAtEpoch(TrainerCallback):
    """Stops training at the end of epoch `epoch` (after its checkpoint and validation pass): a search's rung
    boundary (harness.search). The run's schedule is the full run's, so a later call resumes it unchanged."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kw: object) -> TrainerControl:
        if round(state.epoch or 0) >= self.epoch:
            control.should_training_stop = True
        return control


class Paused(Exception):  # noqa: N818 - not an error: training stopped where it was asked to
    """Training paused at a rung boundary: the train log so far and the seconds this call trained; the trainer's
    checkpoints stay on disk for the call that continues it."""

    def __init__(self, log: list[LogPoint], seconds: float, step: int):
        super().__init__(f"paused at step {step}")
        self.log, self.seconds, self.step = log, seconds, step


def log_rows(history: list[dict[str, float]]) -> list[LogPoint]:
    """train_log points from Trainer's log history (restored from the checkpoint on resume, so nothing is lost)."""
    rows = []
    for h in history:
        if "loss" in h:
            rows.append(LogPoint(int(h["step"]), float(h.get("epoch") or 0), "train", float(h["loss"])))
        if "eval_loss" in h:
            rows.append(LogPoint(int(h["step"]), float(h.get("epoch") or 0), "validation", float(h["eval_loss"])))
    return rows


def stop_reason(trainer: Trainer, stopper: EarlyStoppingCallback | None, train: TrainSpec,
                rows: list[LogPoint]) -> Stop | None:
    """Where and why early stopping ended training (None when it ran its course)."""
    state = trainer.state
    es = train.early_stopping
    if stopper is None or es is None or state.global_step >= state.max_steps:
        return None
    val = [r for r in rows if r.split == "validation" and r.step > 0]
    best = min(val, key=lambda r: r.loss) if val else None
    return Stop(state.global_step, float(state.epoch or 0), state.max_steps,
                f"early stopping: validation loss did not improve by more than {es.min_delta:g} for "
                f"{es.patience} evaluation{'s' if es.patience != 1 else ''}"
                + (f" (best {best.loss:.4f} at step {best.step}, epoch {best.epoch or 0:.2f})" if best else ""))


def select_checkpoints(trainer: Trainer, rows: list[LogPoint], targets: tuple[int, ...], steps_per_epoch: int,
                       select: str, out_dir: Path) -> dict[int, Scored]:
    """For each target epoch count, the checkpoint scored for it: the last one at or before its epoch boundary, or
    (select best) the one of those with the lowest validation loss. Checkpoints other than the final state are
    exported (weights and config only) to out_dir/scored/epoch-E, E the epoch of the checkpoint exported (not the
    target's: `select: best` may score epoch 5 for a 30-epoch target); the final state is scored as it is in memory."""
    folder = Path(str(trainer.args.output_dir))
    last = trainer.state.global_step
    have = {int(p.name.rsplit("-", 1)[1]): p for p in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir()}
    have.setdefault(last, folder / "final")  # the model in memory
    val = {r.step: r for r in rows if r.split == "validation" and r.step > 0}
    epoch_of = {r.step: r.epoch for r in rows}
    out: dict[int, Scored] = {}
    exported: dict[int, Path] = {}  # step -> its folder: targets that select the same checkpoint share it
    for target in targets:
        boundary = min(target * steps_per_epoch, last)
        steps = sorted(s for s in have if s <= boundary)
        if not steps:
            continue
        step, why = steps[-1], (f"the checkpoint at epoch {target}" if boundary == target * steps_per_epoch
                                else f"the last checkpoint (training stopped at step {last} before epoch {target})")
        if select == "best":
            candidates = [s for s in steps if s in val]
            if candidates:
                step = min(candidates, key=lambda s: (val[s].loss, -s))
                evaluated = sum(1 for s in val if s <= boundary)
                why = (f"the lowest validation loss ({val[step].loss:.4f}) of {evaluated} validation passes up "
                       f"to epoch {min(target, round(last / steps_per_epoch, 2)):g}")
        logged = epoch_of.get(step)
        epoch = float(logged if logged is not None else step / steps_per_epoch)
        path = None
        if step != last:
            path = exported.get(step)
            if path is None:
                path = out_dir / "scored" / f"epoch-{round(epoch, 2):g}"
                if path in exported.values():  # another checkpoint within the same hundredth of an epoch
                    path = path.with_name(f"{path.name}-step-{step}")
                export_weights(have[step], path)
                exported[step] = path
        out[target] = Scored(target, step, epoch, why, str(path) if path else None,
                             val[step].loss if step in val else None)
    return out


def export_weights(checkpoint: Path, dest: Path) -> None:
    """A checkpoint's model files (safetensors weights, configs), without the optimizer and trainer state."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in checkpoint.iterdir():
        if f.is_file() and f.name not in _TRAINING_STATE and not f.name.startswith("rng_state"):
            shutil.copy2(f, dest / f.name)


class group_lock:  # noqa: N801 - used as a context manager, like a function
    """An exclusive lock on a file (fcntl), for one group's training across processes (Ray tasks)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        import fcntl

        self.f = self.path.open("a")
        fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()
