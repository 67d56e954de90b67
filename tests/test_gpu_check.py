"""benchmarks/gpu_check.sh --cpu runs to the end (CPU, tiny-random-llama), so the GPU check cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert "result: PASS" in out
    for figure in ("sweep lora-r8-e1 tokens per second", "sweep full-e1 peak memory mb", "stage sweep wall time",
                   "compare lora heldout.loss", "lora ratio harness / bare",
                   "multi-gpu: skipped: 0 GPUs visible", "generated tokens/s (batch 1)", "batched identical outputs"):
        assert figure in out, figure
    print(out)
    print(f"gpu_check.sh --cpu took {time.perf_counter() - t0:.0f} s")
