"""One local variant on several processes (`train.distributed`): the sweep's process writes the job (JSON), launches a
torchrun group in a child process (`python -m harness.train.distributed`, which runs torch.distributed.run and
writes which rank failed and why), follows rank 0's steps as progress, and reads rank 0's training record.

A rank that dies ends the group: torchrun's agent sees it within its monitor interval and stops the other ranks
(SIGTERM, then SIGKILL); a rank that hangs in a collective is ended by the process group's timeout
(`train.distributed.timeout`). The error names the rank, its exit code or signal, and its last message; the
checkpoints rank 0 saved stay, so a rerun resumes from the last one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.models.resolve import ModelRef
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.train.checkpoints import TrainRecord

STEP_PREFIX = "harness-step "
MONITOR_SECONDS = 0.5  # how often torchrun's agent looks at its ranks
STOP_SECONDS = 30.0  # how long an interrupted group may take to stop before it is killed


@dataclass
class RankJob:
    """What every rank trains: the inputs of harness.train.local.train_variant (a JSON file beside the checkpoints:
    data, never code, so a file swapped in that folder cannot run anything in the ranks)."""

    ref: ModelRef
    variant: Variant
    train: TrainSpec
    train_examples: list[list[dict[str, str]]]
    val_examples: list[list[dict[str, str]]]
    out_dir: str
    targets: tuple[int, ...] | None

    def dumps(self) -> str:
        return json.dumps({"ref": asdict(self.ref), "variant": asdict(self.variant),
                           "train": self.train.model_dump(mode="json"), "train_examples": self.train_examples,
                           "val_examples": self.val_examples, "out_dir": self.out_dir,
                           "targets": None if self.targets is None else list(self.targets)})

    @classmethod
    def loads(cls, text: str) -> RankJob:
        d = json.loads(text)
        ref, v = d["ref"], d["variant"]
        return cls(ModelRef(**{**ref, "notices": tuple(ref.get("notices") or ())}),
                   Variant(**{**v, "one_run": None if v.get("one_run") is None else tuple(v["one_run"])}),
                   TrainSpec.model_validate(d["train"]), d["train_examples"], d["val_examples"], d["out_dir"],
                   None if d["targets"] is None else tuple(d["targets"]))


class RankFailed(RuntimeError):
    """A rank of a distributed training died or failed; the group was ended."""


def train_distributed(ref: ModelRef, variant: Variant, train: TrainSpec, train_examples: list[list[dict[str, str]]],
                      val_examples: list[list[dict[str, str]]], out_dir: Path,
                      on_step: Callable[[int, int, float | None], None] | None = None,
                      targets: tuple[int, ...] | None = None) -> TrainRecord:
    """Train on `train.distributed.processes` ranks under torchrun; rank 0's record (its checkpoints and artifact
    under out_dir, as one-process training leaves them)."""
    assert train.distributed is not None
    work = out_dir / "distributed"
    work.mkdir(parents=True, exist_ok=True)
    job, record, outcome = work / "job.json", work / "record.json", work / "outcome.json"
    for f in (record, outcome):
        f.unlink(missing_ok=True)
    job.write_text(RankJob(ref, variant, train, train_examples, val_examples, str(out_dir), targets).dumps(),
                   encoding="utf-8")
    cmd = [sys.executable, "-m", "harness.train.distributed", str(outcome), "--standalone",
           f"--nproc-per-node={train.distributed.processes}", "--max-restarts=0",
           f"--monitor-interval={MONITOR_SECONDS}", "-m", "harness.train.rank", str(job)]
    tail = _run(cmd, on_step)
    if record.is_file():
        job.unlink(missing_ok=True)  # the examples it holds are in the data files already
        return TrainRecord.loads(record.read_text())
    raise RankFailed(_failure(outcome, tail, train.distributed.processes, out_dir))


def _run(cmd: list[str], on_step: Callable[[int, int, float | None], None] | None) -> list[str]:
    """Run the launcher, turning rank 0's step lines into progress; the last lines of its output."""
    tail: deque[str] = deque(maxlen=30)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(STEP_PREFIX):
                step, total, loss = line[len(STEP_PREFIX):].split()
                if on_step:
                    on_step(int(step), int(total), None if loss == "nan" else float(loss))
            elif line.strip():
                tail.append(line.rstrip())
        proc.wait()
    except BaseException:  # interrupted (Ctrl-C, SIGTERM) or the caller's failure: never leave ranks behind
        _stop(proc)
        raise
    return list(tail)


def _stop(proc: subprocess.Popen[str]) -> None:
    """End the launcher's whole process group (its agent and every rank): SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, STOP_SECONDS), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(outcome: Path, tail: list[str], processes: int, out_dir: Path) -> str:
    """Which rank failed and why (the launcher's report), and where a rerun resumes."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out_dir / "trainer"
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    resume = (f"a rerun resumes from {Path(last).name}" if last else "no checkpoint was saved: a rerun starts over")
    if outcome.is_file():
        failures = json.loads(outcome.read_text())
        first = failures[0]
        why = f"killed by {first['signal']}" if first["signal"] else f"exit code {first['exitcode']}"
        message = f": {first['message']}" if first["message"] and not first["signal"] else ""
        return (f"distributed training ({processes} processes) failed: rank {first['rank']} (pid {first['pid']}) "
                f"{why}{message}; torchrun ended the other ranks; {resume}")
    last_lines = " | ".join(tail[-5:])
    return f"distributed training ({processes} processes) ended without a result ({last_lines}); {resume}"


def launch(outcome: Path, torchrun_args: list[str]) -> int:
    """torchrun (torch.distributed.run) in this process; on a rank's failure, write each failed rank to `outcome`
    (first failure first: rank, pid, exit code, signal, message) and return 1."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(torchrun_args))
    except ChildFailedError as exc:
        # the cause first: a rank torchrun itself ended (SIGTERM, after another rank failed) can be recorded at the
        # same time as the rank that failed, so it sorts after every other failure
        failures = sorted(exc.failures.items(), key=lambda kv: (kv[1].exitcode == -signal.SIGTERM, kv[1].timestamp))
        rows = [{"rank": rank, "local_rank": f.local_rank, "pid": f.pid, "exitcode": f.exitcode,
                 "signal": f.signal_name() if f.exitcode < 0 else None,
                 "message": _message(f.message)}
                for rank, f in failures]
        outcome.write_text(json.dumps(rows))
        return 1
    return 0


def _message(message: object) -> str:
    """A failure's message: the exception line of a rank's error file, or torchrun's own text."""
    if isinstance(message, dict):
        return str(message.get("message", json.dumps(message)))
    return str(message)


if __name__ == "__main__":
    sys.exit(launch(Path(sys.argv[1]), sys.argv[2:]))
