"""Issue 23, items 1-5: a damaged store block is exit 2 wherever it is met; `store recover` reads every block, says
what still reads and salvages it; a WAL without its store is never thrown away; a failed recover changes nothing;
an output file on a full disk is named and never left half written."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlib import cli, copy_store, harness, write_variant_then

pytestmark = pytest.mark.faults

VARIANT = "lora-r2-e1"


def _digest(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def _block_offset(db: Path, table: str, column: str) -> int:
    """The byte offset of the block holding `table.column`'s first segment (three 4 KiB headers, then blocks)."""
    from harness.store.db import Store

    with Store(db, read_only=True) as s:
        size = int(s.query("SELECT block_size FROM pragma_database_size()")["block_size"][0])
        blocks = s.query(f"SELECT block_id FROM pragma_storage_info('{table}') WHERE column_name = ? AND block_id >= 0",
                         [column])["block_id"]
    return 3 * 4096 + int(blocks.iloc[0]) * size


def _damage(db: Path, offset: int) -> None:
    with db.open("r+b") as f:
        f.seek(offset + 64)
        f.write(os.urandom(4096))


def _commands(db: Path, folder: Path) -> dict[str, list[str]]:
    return {"runs": ["runs", "--db", str(db)],
            "gate": ["gate", "latest", "--baseline", str(folder / "base.json"), "--variant", VARIANT, "--db", str(db)],
            "report": ["report", "--db", str(db), "-o", str(folder / "x.html")],
            "baseline save": ["baseline", "save", "--variant", VARIANT, "-o", str(folder / "b2.json"), "--db", str(db)],
            "sweep": ["sweep", str(folder / "spec.yaml"), "--db", str(db)]}


def _says_damaged(out: Any, db: Path) -> None:
    assert "Traceback" not in out.stderr and "_duckdb" not in out.stderr, out.stderr
    assert f"{db}: a damaged block at byte" in out.stderr and "harness store recover" in out.stderr, out.stderr


@pytest.mark.parametrize(("table", "column", "ok", "fail"), [
    # found as soon as a run is looked up
    ("runs", "run_id", (), ("runs", "gate", "report", "baseline save", "sweep")),
    # found mid-command: the store opens and lists its runs fine, the damage is met when examples are read
    ("examples", "output", ("runs",), ("gate", "report", "baseline save")),
])
def test_item01_damaged_block_exits_2_naming_the_file_wherever_it_is_read(
        finished: dict[str, Any], tmp_path: Path, table: str, column: str, ok: tuple[str, ...],
        fail: tuple[str, ...]) -> None:
    db = copy_store(finished, tmp_path)
    _damage(db, _block_offset(db, table, column))
    commands = _commands(db, tmp_path)
    for name in (*ok, *fail):
        args = commands[name]
        before = _digest(db)
        out = harness(*args, cwd=tmp_path, timeout=300)  # a real process: CI reads its exit code
        if name in ok:
            assert out.returncode == 0, (name, out.stderr)
            continue
        assert out.returncode == 2, (name, out.returncode, out.stderr[-2000:])
        _says_damaged(out, db)
        if name != "sweep":
            assert _digest(db) == before, f"{name} changed the store"
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "b2.json").exists()


def test_item02_recover_reads_every_block_says_what_reads_and_salvages_it(finished: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    from harness.store.db import Store

    sound = copy_store(finished, tmp_path / "sound")
    out = cli("store", "recover", "--db", str(sound))
    assert out.returncode == 0 and "no damage" in out.stdout, out.stderr
    db = copy_store(finished, tmp_path / "exp")
    with Store(db, read_only=True) as s:
        total = {t: int(s.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in ("runs", "examples", "scores")}
        run_id = s.resolve_run("latest")
    _damage(db, _block_offset(db, "examples", "output"))
    before = _digest(db)
    out = harness("store", "recover", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)  # today: "the store opens as it is", exit 0
    assert "Traceback" not in out.stderr and f"{db} is damaged" in out.stderr
    assert "examples: " in out.stderr and "rows do not read" in out.stderr and "--salvage NEW.duckdb" in out.stderr
    assert "runs that read complete: none" in out.stderr, out.stderr
    assert _digest(db) == before
    new = tmp_path / "saved.duckdb"
    out = harness("store", "recover", "--db", str(db), "--salvage", str(new), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"{db} is damaged; it was left as it is" in out.stdout and f"wrote {new}" in out.stdout, out.stdout
    assert _digest(db) == before and sorted(p.name for p in tmp_path.iterdir()) == ["exp", "saved.duckdb", "sound"]
    with Store(new, read_only=True) as s:  # every table that reads came across whole; the damaged rows did not
        got = {t: int(s.query(f"SELECT count(*) AS n FROM {t}")["n"][0]) for t in total}
        assert s.resolve_run("latest") == run_id
    assert got["runs"] == total["runs"] and got["scores"] == total["scores"] and got["examples"] < total["examples"]
    assert cli("runs", "--db", str(new)).returncode == 0
    assert cli("store", "recover", "--db", str(new)).returncode == 0  # the salvaged store reads in full
    out = cli("store", "recover", "--db", str(db), "--salvage", str(new))
    assert out.returncode == 2 and "already exists" in out.stderr  # never written over


def test_item02_recover_on_a_truncated_store_never_reports_success(finished: dict[str, Any], tmp_path: Path) -> None:
    db = copy_store(finished, tmp_path)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    out = cli("store", "recover", "--db", str(db))
    assert out.returncode == 2, out.stdout
    assert "bytes shorter than its header says" in out.stderr and "Nothing was changed" in out.stderr, out.stderr
    assert db.read_bytes() == data[: len(data) // 2]


def test_item02_a_store_recover_calls_sound_opens_for_every_command(finished: dict[str, Any], tmp_path: Path) -> None:
    """Damage each used block in turn: wherever recover finds no damage, runs, report and gate must work too (the
    bug: recover said "opens as it is", and the next command exited 2)."""
    from harness.store.db import Store

    src = copy_store(finished, tmp_path / "src")
    with Store(src, read_only=True) as s:
        size = int(s.query("SELECT block_size FROM pragma_database_size()")["block_size"][0])
        free = set(s.query("SELECT unnest(free_list) AS b FROM pragma_metadata_info()")["b"])
    data = src.read_bytes()
    used = [b for b in range((len(data) - 3 * 4096) // size) if b not in free]
    folder = tmp_path / "exp"
    shutil.copytree(tmp_path / "src", folder)
    db = folder / "r.duckdb"
    for block in used:
        db.write_bytes(data)
        _damage(db, 3 * 4096 + block * size)
        verdict = cli("store", "recover", "--db", str(db))
        assert "Traceback" not in verdict.stderr
        if verdict.returncode == 2:
            continue
        assert verdict.returncode == 0 and "no damage" in verdict.stdout
        for name in ("runs", "report", "gate"):
            out = cli(*_commands(db, folder)[name])
            assert out.returncode == 0, f"block {block}: recover found no damage, but {name} says {out.stderr}"


def test_item03_a_wal_without_its_store_is_refused_and_kept(experiment: Path) -> None:
    folder = experiment.parent
    db = folder / "r.duckdb"
    out = write_variant_then(db, "walonly", 10, "kill-after")  # every row of this store is still in the WAL
    assert "committed" in out.stdout, out.stderr
    wal = folder / "r.duckdb.wal"
    kept = folder / "kept.duckdb"
    db.rename(kept)  # the store file is moved away; its WAL stays
    before = wal.read_bytes()
    out = harness("sweep", str(experiment), "--db", str(db), cwd=folder)  # today: exit 0, a fresh store, WAL gone
    assert out.returncode == 2, out.stderr[-2000:]
    assert "store file missing" in out.stderr and f"{wal} is the write-ahead log" in out.stderr, out.stderr
    assert "committed transaction(s)" in out.stderr and "Put the store file back" in out.stderr
    sheet = folder / "sheet.json"
    sheet.write_text("{}", encoding="utf-8")
    for args in (["runs"], ["report", "-o", str(folder / "x.html")], ["review", "import", str(sheet)],
                 ["review", "export", "-o", str(folder / "sheets")], ["store", "recover"]):
        out = cli(*args, "--db", str(db))
        assert out.returncode == 2 and "store file missing" in out.stderr, (args, out.stderr)
    assert wal.read_bytes() == before and not db.exists(), "the WAL must be kept, and no empty store made"
    kept.rename(db)  # put back, the rows are all there
    from harness.store.db import Store

    with Store(db, read_only=True) as s:
        assert int(s.query("SELECT count(*) AS n FROM examples WHERE variant_id = 'walonly'")["n"][0]) == 10


def _two_stores(tmp_path: Path) -> tuple[Path, Path]:
    """Store `b` with the WAL of store `a` beside it (holding committed rows of a)."""
    for name, die in (("a", "kill-after"), ("b", "clean")):
        (tmp_path / name).mkdir()
        out = write_variant_then(tmp_path / name / "r.duckdb", f"v-{name}", 50, die)
        assert "committed" in out.stdout, out.stderr
    shutil.copyfile(tmp_path / "a" / "r.duckdb.wal", tmp_path / "b" / "r.duckdb.wal")
    return tmp_path / "b" / "r.duckdb", tmp_path / "b" / "r.duckdb.wal"


def _files(folder: Path) -> dict[str, str]:
    """Every file in the folder with its digest (the sweep lock file, which any sweep leaves, aside)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()
            if p.is_file() and not p.name.endswith(".lock")} | {p.name + "/": "" for p in folder.iterdir() if p.is_dir()}


def test_item04_a_failed_recover_changes_nothing(tmp_path: Path) -> None:
    db, wal = _two_stores(tmp_path)
    before = _files(db.parent)
    out = harness("store", "recover", "--db", str(db), cwd=tmp_path)
    assert _files(db.parent) == before, "recover cut or moved something although it could not succeed"
    assert out.returncode == 2, out.stdout
    assert "belongs to another database file" in out.stderr and "Nothing was changed" in out.stderr, out.stderr


def test_item04_recover_names_every_file_it_wrote(finished: dict[str, Any], tmp_path: Path) -> None:
    db = copy_store(finished, tmp_path)
    out = write_variant_then(db, "walonly", 2000, "kill-after")
    assert "committed" in out.stdout, out.stderr
    wal = tmp_path / "r.duckdb.wal"
    data = bytearray(wal.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    wal.write_bytes(bytes(data))
    old = {"r.duckdb": db.read_bytes(), "r.duckdb.wal": bytes(data)}
    before = set(_files(tmp_path))
    out = cli("store", "recover", "--db", str(db))
    assert out.returncode == 0, out.stderr
    new = set(_files(tmp_path)) - before
    assert new and all(name in out.stdout for name in new), (new, out.stdout)
    assert f"wrote {db}" in out.stdout
    backups = {p.name: p.read_bytes() for p in tmp_path.glob("r.duckdb*.bak-*")}
    assert sorted(backups.values()) == sorted(old.values()), "the store and WAL as they were are both kept"
    assert not list(tmp_path.glob("*.recover-*")), "the working copies are removed"
    assert cli("runs", "--db", str(db)).returncode == 0


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs (root only), to fill or to run out of room on."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder: Path) -> None:
    try:
        with (folder / "filler").open("wb") as f:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def test_item04_recover_without_room_for_its_copies_changes_nothing(finished: dict[str, Any], tmp_path: Path,
                                                                    tiny_disk: Path) -> None:
    src = copy_store(finished, tmp_path / "exp")
    out = write_variant_then(src, "walonly", 200, "kill-after")
    assert "committed" in out.stdout, out.stderr
    for name in ("r.duckdb", "r.duckdb.wal"):  # the store fits, a copy of it does not
        shutil.copyfile(tmp_path / "exp" / name, tiny_disk / name)
    db = tiny_disk / "r.duckdb"
    before = _files(tiny_disk)
    out = cli("store", "recover", "--db", str(db))
    assert out.returncode == 2, out.stdout
    assert "no space left" in out.stderr.lower() or "No space" in out.stderr, out.stderr
    assert "Nothing was changed" in out.stderr and _files(tiny_disk) == before, out.stderr


def _outputs(db: Path, folder: Path, full: Path) -> dict[str, tuple[list[str], Path]]:
    return {"report": (["report", "--db", str(db), "-o", str(full / "rep.html")], full / "rep.html"),
            "baseline": (["baseline", "save", "--db", str(db), "--variant", VARIANT, "-o", str(full / "b.json")],
                         full / "b.json"),
            "junit": (["gate", "--db", str(db), "--baseline", str(folder / "base.json"), "--variant", VARIANT,
                       "--junit", str(full / "gate.xml")], full / "gate.xml"),
            "summary": (["gate", "--db", str(db), "--baseline", str(folder / "base.json"), "--variant", VARIANT,
                         "--summary", str(full / "summary.md")], full / "summary.md"),
            "review export": (["review", "export", "--db", str(db), "-o", str(full / "sheets")], full / "sheets")}


def test_item05_an_output_file_on_a_full_disk_is_named_and_never_half_written(
        finished: dict[str, Any], tmp_path: Path, tiny_disk: Path) -> None:
    db = copy_store(finished, tmp_path / "exp")
    old = b"the report from before\n"
    (tiny_disk / "rep.html").write_bytes(old)  # an earlier file at the same path stays as it was
    _fill(tiny_disk)
    for name, (args, path) in _outputs(db, tmp_path / "exp", tiny_disk).items():
        out = harness(*args, cwd=tmp_path) if name == "report" else cli(*args)
        assert out.returncode == 2, (name, out.stderr)
        assert "Traceback" not in out.stderr and "no space left on device" in out.stderr, (name, out.stderr)
        named = path if path.suffix else path / "tiny-"
        assert f"cannot write {named}" in out.stderr and f"cannot write {db}" not in out.stderr, (name, out.stderr)
    leftovers = sorted(p.relative_to(tiny_disk).as_posix() for p in tiny_disk.rglob("*") if p.is_file())
    assert leftovers == ["filler", "rep.html"], leftovers
    assert (tiny_disk / "rep.html").read_bytes() == old
