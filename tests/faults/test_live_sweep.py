"""Cases 2 and 3 with a real sweep running in another process: `harness runs` and `report` read the variants
committed so far, a second sweep is refused, and SIGTERM ends the sweep like Ctrl-C (run interrupted, exit 143)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from faultlib import ONE_LORA, Child, child_env, harness, write_experiment

pytestmark = pytest.mark.faults

LONG = ONE_LORA.replace("  batch_size: 8\n", "  batch_size: 8\n  max_steps: 100000\n")  # trains until stopped


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A sweep that has stored `base` and is training its LoRA variant (for minutes, until the tests stop it)."""
    folder = tmp_path_factory.mktemp("live")
    spec = write_experiment(folder, LONG)
    child = Child("sweep", str(spec), "--db", str(folder / "r.duckdb"), cwd=folder)
    try:
        child.wait_for("stored base", "training steps")
        yield {"folder": folder, "spec": spec, "db": folder / "r.duckdb", "child": child}
    finally:
        child.kill()


def test_runs_and_report_read_the_store_during_a_sweep(live: dict[str, Any]) -> None:
    db, folder = live["db"], live["folder"]
    procs = {name: subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=folder, env=child_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, args in {"runs": ["runs", "--db", str(db)],
                                "report": ["report", "--db", str(db), "-o", str(folder / "live.html")]}.items()}
    results = {name: (p.wait(timeout=120), *p.communicate()) for name, p in procs.items()}
    for name, (code, _out, err) in results.items():
        assert code == 0, (name, err)
    assert "running" in results["runs"][1]
    html = (folder / "live.html").read_text(encoding="utf-8")
    assert "base" in html
    assert live["child"].proc.poll() is None, "the sweep kept running while it was read"


def test_a_second_sweep_on_the_same_store_is_refused(live: dict[str, Any]) -> None:
    out = harness("sweep", str(live["spec"]), "--db", str(live["db"]), cwd=live["folder"])
    assert out.returncode == 2, out.stderr
    assert "being written by another sweep" in out.stderr and "Traceback" not in out.stderr
    assert live["child"].proc.poll() is None


def test_sigterm_marks_the_run_interrupted_and_exits_143(live: dict[str, Any]) -> None:
    child: Child = live["child"]
    child.proc.send_signal(signal.SIGTERM)
    code, printed = child.finish()
    assert code == 143, printed
    assert "terminated (SIGTERM)" in printed and "Traceback" not in printed
    out = harness("runs", "--db", str(live["db"]), cwd=live["folder"])
    assert out.returncode == 0 and "interrupted" in out.stdout and "running" not in out.stdout, out.stdout
    from harness.store.db import Store

    with Store(live["db"], read_only=True) as s:
        assert list(s.query("SELECT name FROM variant_results")["name"]) == ["base"]  # the LoRA in progress: not kept
        assert list(s.query("SELECT status FROM runs")["status"]) == ["interrupted"]
