"""One rank of a `train.distributed` group, as torchrun starts it: `python -m harness.train.rank JOB.pkl`.

Every rank runs the same local training (harness.train.local); Trainer joins the process group torchrun set up.
Rank 0 alone writes: Trainer's checkpoints, the artifact, and the training record the sweep's parent reads. Its
training steps go to stdout as `harness-step STEP TOTAL LOSS` lines, which the parent turns into progress.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from harness.train.distributed import STEP_PREFIX, RankJob


def _print_step(step: int, total: int, loss: float | None) -> None:
    print(f"{STEP_PREFIX}{step} {total} {'nan' if loss is None else loss}", flush=True)


@record  # a Python exception in a rank reaches the launcher's failure report with its message
def main(argv: list[str]) -> int:
    """Train the job (JSON) on this rank; rank 0 writes the record next to the job file."""
    from transformers.utils import logging as hf_logging

    from harness.train.local import train_variant

    hf_logging.disable_progress_bar()
    job_file = Path(argv[0])
    job = RankJob.loads(job_file.read_text(encoding="utf-8"))  # written by the sweep's process (train_distributed)
    rank = int(os.environ.get("RANK", "0"))
    out = train_variant(job.ref, job.variant, job.train, job.train_examples, job.val_examples, Path(job.out_dir),
                        on_step=_print_step if rank == 0 else None, targets=job.targets)
    if rank == 0:
        tmp = job_file.with_name("record.tmp")
        tmp.write_text(out.record.dumps())
        tmp.replace(job_file.with_name("record.json"))  # atomic: the parent never reads half a record
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
