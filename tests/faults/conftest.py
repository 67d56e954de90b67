"""The fault suite: kills, corrupt files, full disks, hostile specs (marked `faults`; run with -m '' or -m faults)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from faultlib import write_experiment


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """A one-LoRA tiny experiment in tmp_path; returns the spec path."""
    return write_experiment(tmp_path)


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished one-LoRA sweep (store, baseline of the LoRA variant), built once; copy it before damaging it."""
    from harness.cli import main

    folder = tmp_path_factory.mktemp("finished")
    spec = write_experiment(folder)
    db = folder / "r.duckdb"
    assert main(["sweep", str(spec), "--db", str(db)]) == 0
    assert main(["baseline", "save", "--db", str(db), "--variant", "lora-r2-e1", "-o", str(folder / "base.json")]) == 0
    return {"folder": folder, "spec": spec, "db": db, "baseline": folder / "base.json"}


