"""Time the README's default experiment end to end: `harness sweep` then `harness report`, as a user runs them.

Prints wall and CPU seconds (the sweep's and report's processes, children included) of each step and in all,
against the goal (the whole first run <= 8 minutes on an idle 2-core CPU), and the load average before and after
(a shared machine's wall time is not the figure to quote). Heavy: about 10 minutes on a 2-core CPU.

    python benchmarks/default_bench.py [--spec experiments/acme-support/spec.yaml] [--keep DIR]
    python benchmarks/default_bench.py --tiny     # the same code path on a tiny random model, in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO / "experiments" / "acme-support" / "spec.yaml"
GOAL_S = 8 * 60.0
TINY_SPEC = """\
name: tiny-bench
model: tiny-random-llama
data: {train: train.jsonl, validation: 0.25, test: test.jsonl}
sweep: {method: [lora], rank: [2], epochs: [1], learning_rate: [1.0e-3]}
train: {max_seq_length: 96, batch_size: 8}
suites:
  - name: heldout
    options: {max_new_tokens: 8}
"""


def tiny_spec(folder: Path) -> Path:
    """A two-variant spec (base and one LoRA) on the tiny random model, with its data, written into `folder`."""
    cats = ["login", "billing", "defect"]
    for name, n, offset in (("train.jsonl", 16, 0), ("test.jsonl", 10, 100)):
        rows = [{"messages": [{"role": "user", "content": f"Ticket {i + offset}: about {cats[i % 3]}"},
                              {"role": "assistant", "content": json.dumps({"category": cats[i % 3]})}]}
                for i in range(n)]
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = folder / "spec.yaml"
    spec.write_text(TINY_SPEC, encoding="utf-8")
    return spec


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Run a command (inheriting stdout/stderr): (wall seconds, CPU seconds of it and its children, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    code = subprocess.run(cmd, check=False).returncode
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, code


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="the experiment (default: the README's)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random-model spec instead: checks the code path")
    ap.add_argument("--keep", type=Path, default=None, help="keep the store and report in this folder")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="default-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    spec = tiny_spec(folder) if args.tiny else args.spec.resolve()
    db, html = folder / "results.duckdb", folder / "report.html"
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    harness = [sys.executable, "-m", "harness"]
    load = os.getloadavg()
    print(f"spec: {spec}\nload average before: {load[0]:.2f} (1 min), {load[2]:.2f} (15 min) on {os.cpu_count()} CPUs")
    sweep_wall, sweep_cpu, code = timed([*harness, "sweep", str(spec), "--db", str(db)])
    if code != 0:
        print(f"harness sweep exited {code}: no figure")
        return 1
    report_wall, report_cpu, code = timed([*harness, "report", "latest", "--db", str(db), "-o", str(html)])
    if code != 0:
        print(f"harness report exited {code}: no figure")
        return 1
    wall, cpu = sweep_wall + report_wall, sweep_cpu + report_cpu
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} (1 min), {load[2]:.2f} (15 min)")
    print(f"sweep:  {sweep_wall:.1f} s wall, {sweep_cpu:.1f} s CPU")
    print(f"report: {report_wall:.1f} s wall, {report_cpu:.1f} s CPU")
    print(f"total:  {wall:.1f} s wall ({wall / 60:.1f} min), {cpu:.1f} s CPU (goal <= {GOAL_S / 60:.0f} min on an idle "
          f"2-core CPU: {wall / GOAL_S:.2f}x wall, {cpu / 2 / GOAL_S:.2f}x CPU over 2 cores)")
    ok = wall <= GOAL_S
    print("goal met" if ok else "GOAL MISSED" + ("" if not args.tiny else " (tiny spec: the figure is not the goal's)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
