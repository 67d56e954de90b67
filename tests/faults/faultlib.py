"""Helpers of the fault suite: real subprocesses, signals, and small experiments on tiny-random-llama."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _root_conftest() -> Any:
    """tests/conftest.py (its helpers), loaded under its own name: `conftest` here is this folder's."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("harness_tests_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_root = _root_conftest()
REPO: Path = _root.REPO
TINY_SPEC: str = _root.TINY_SPEC
make_rows = _root.make_rows
write_jsonl = _root.write_jsonl

# Base and one LoRA variant: the smallest sweep that trains.
ONE_LORA = TINY_SPEC.replace("method: [lora, full]", "method: [lora]").replace("rank: [2, 4]", "rank: [2]")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout's code and suites, no network."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "HARNESS_SUITES_DIR": str(REPO / "suites"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(extra)
    return env


def harness(*args: str, cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run `python -m harness ARGS` to the end."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env or child_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


class Child:
    """`python -m harness ARGS` running in the background; a thread collects its stderr (progress) lines."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None):
        import threading

        self.proc = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd, env=env or child_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, *needles: str, timeout: float = 180) -> None:
        """Wait until lines holding each needle have appeared, in order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pos = 0
            for needle in needles:
                pos = next((k + 1 for k in range(pos, len(self.lines)) if needle in self.lines[k]), -1)
                if pos < 0:
                    break
            else:
                return
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {needles} (rc {self.proc.poll()}):\n" + "".join(self.lines[-40:]))

    def finish(self, timeout: float = 90) -> tuple[int, str]:
        """Wait for the end; returns (exit code, everything it printed)."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, "".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def write_experiment(folder: Path, spec: str = ONE_LORA, n_train: int = 16) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", make_rows(n_train))
    write_jsonl(folder / "test.jsonl", make_rows(10, offset=100))
    (folder / "spec.yaml").write_text(spec, encoding="utf-8")
    return folder / "spec.yaml"


def copy_store(finished: dict[str, Any], to: Path) -> Path:
    """A copy of the finished experiment's folder (spec, data, store, baseline) under `to`."""
    shutil.copytree(finished["folder"], to, dirs_exist_ok=True)
    return to / "r.duckdb"


WRITE_AND_DIE = """
import os, signal, sys
from harness.results import VariantRow
from harness.store.db import Store, VariantResult
from harness.testing.rows import typed_suites
db, vid, n, die = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = Store(db, hold=die not in ("clean", "kill-during"))
result = VariantResult(VariantRow(vid, name=vid, method="lora", status="finished"),
                       suites=typed_suites([{"suite": "heldout", "metric": "exact_match", "value": 0.5, "n": n}],
                                           [{"suite": "heldout", "example_id": f"e{i}", "prompt": "p" * 200,
                                             "output": "o" * 200, "passed": i % 2 == 0, "detail": {"i": i}}
                                            for i in range(n)]))
print("ready", flush=True)
if die == "kill-during":
    import threading
    threading.Timer(float(sys.argv[5]), lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
import time
t0 = time.perf_counter()
store.write_variant(result)
print(f"committed {time.perf_counter() - t0:.3f}", flush=True)
if die == "clean":
    store.close()
    print(f"checkpointed {time.perf_counter() - t0:.3f}", flush=True)
if die in ("kill-after", "kill-during"):
    os.kill(os.getpid(), signal.SIGKILL)  # no checkpoint: the rows live only in the WAL
store.close()
"""


def write_variant_then(db: Path, vid: str, n: int, die: str, delay: float = 0.0) -> subprocess.CompletedProcess[str]:
    """Write one variant of n examples in a child, then die as told: clean | kill-after | kill-during DELAY."""
    return subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(db), vid, str(n), die, str(delay)],
                          env=child_env(), capture_output=True, text=True, timeout=120, check=False)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (fast; torch stays loaded); exit code and output like a subprocess."""
    import contextlib
    import io

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())
