"""Case 8: a full disk and a read-only folder are exit 2 naming the file and the cause, and the store still opens
afterwards. A small tmpfs where mounting works (root), else a simulated ENOSPC at the write and chmod."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlib import cli, copy_store

pytestmark = pytest.mark.faults


def _mount(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    disk = tmp_path / "disk"
    mounted = _mount(disk, "16m")
    try:
        yield disk if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_full_disk_is_exit_2_and_the_store_opens_afterwards(finished: dict[str, Any], tmp_path: Path,
                                                            small_disk: Path | None) -> None:
    if small_disk is None:
        pytest.skip("cannot mount a tmpfs here; the simulated ENOSPC test covers the message")
    copy_store(finished, tmp_path / "exp")
    db = small_disk / "r.duckdb"
    db.write_bytes((tmp_path / "exp" / "r.duckdb").read_bytes())
    spec = tmp_path / "exp" / "spec.yaml"
    spec.write_text(spec.read_text().replace("rank: [2]", "rank: [4]"))  # one new variant to store
    filler = _fill(small_disk)
    out = cli("sweep", str(spec), "--db", str(db))
    assert out.returncode == 2, out.stderr
    assert "no space left on device" in out.stderr and str(small_disk) in out.stderr
    assert "Traceback" not in out.stderr
    filler.unlink()
    out = cli("runs", "--db", str(db))
    assert out.returncode == 0 and "tiny" in out.stdout, out.stderr


def test_enospc_while_committing_is_exit_2_naming_the_file(finished: dict[str, Any], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.store.db import Store

    db = copy_store(finished, tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec.read_text().replace("rank: [2]", "rank: [4]"))
    real = Store._insert

    def full(self: Store, table: str, rows: Any) -> None:
        if table == "examples":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path) + ".wal")
        real(self, table, rows)

    monkeypatch.setattr(Store, "_insert", full)
    out = cli("sweep", str(spec), "--db", str(db))
    assert out.returncode == 2, out.stderr
    assert f"cannot write {db}.wal: no space left on device" in out.stderr
    monkeypatch.setattr(Store, "_insert", real)
    with Store(db, read_only=True) as s:  # the failed commit left nothing behind; the run is marked failed
        assert set(s.query("SELECT name FROM variant_results")["name"]) == {"base", "lora-r2-e1"}
        assert "failed" in set(s.query("SELECT status FROM runs")["status"])


def test_read_only_folder_is_exit_2_and_reading_still_works(finished: dict[str, Any], tmp_path: Path,
                                                            small_disk: Path | None) -> None:
    exp = tmp_path / "exp"
    copy_store(finished, exp)
    ro = small_disk or tmp_path / "ro"
    ro.mkdir(exist_ok=True)
    (ro / "r.duckdb").write_bytes((exp / "r.duckdb").read_bytes())
    if small_disk is not None:
        assert subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=False).returncode == 0
    elif os.geteuid() == 0:
        pytest.skip("root ignores permissions and no tmpfs could be mounted")
    else:
        ro.chmod(0o555)
    try:
        out = cli("sweep", str(exp / "spec.yaml"), "--db", str(ro / "r.duckdb"))
        assert out.returncode == 2, out.stderr
        assert ("read-only file system" in out.stderr or "permission denied" in out.stderr) and str(ro) in out.stderr
        out = cli("report", "--db", str(exp / "r.duckdb"), "-o", str(ro / "report.html"))
        assert out.returncode == 2 and str(ro / "report.html") in out.stderr, out.stderr
        out = cli("runs", "--db", str(ro / "r.duckdb"))
        assert out.returncode == 0 and "tiny" in out.stdout, out.stderr
    finally:
        ro.chmod(0o755) if small_disk is None else None
