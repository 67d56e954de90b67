"""Case 1: a corrupt, truncated or deleted WAL and a truncated store file are exit 2 naming the file, never a
traceback or exit 1; the WAL is never deleted or replayed away without `harness store recover`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faultlib import cli, copy_store, write_variant_then

pytestmark = pytest.mark.faults


def _with_wal(finished: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the finished store with one more variant committed only to the WAL (the writer was SIGKILLed)."""
    db = copy_store(finished, tmp_path)
    out = write_variant_then(db, "walonly", 2000, "kill-after")
    assert "committed" in out.stdout, out.stderr
    assert (tmp_path / "r.duckdb.wal").stat().st_size > 10_000
    return db


def _commands(db: Path, folder: Path) -> dict[str, list[str]]:
    return {"runs": ["runs", "--db", str(db)],
            "report": ["report", "--db", str(db), "-o", str(folder / "x.html")],
            "gate": ["gate", "--db", str(db), "--baseline", str(folder / "base.json"), "--variant", "lora-r2-e1"],
            "sweep": ["sweep", str(folder / "spec.yaml"), "--db", str(db)]}


def _no_traceback(out: Any) -> None:
    assert "Traceback" not in out.stderr and "_duckdb" not in out.stderr, out.stderr


def test_corrupt_wal_is_exit_2_everywhere_and_the_wal_is_kept(finished: dict[str, Any], tmp_path: Path) -> None:
    db = _with_wal(finished, tmp_path)
    wal = tmp_path / "r.duckdb.wal"
    data = bytearray(wal.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    wal.write_bytes(bytes(data))
    for name, args in _commands(db, tmp_path).items():
        out = cli(*args)
        assert out.returncode == 2, (name, out.stderr)
        _no_traceback(out)
        assert "r.duckdb.wal" in out.stderr and "corrupt" in out.stderr and "harness store recover" in out.stderr
        assert wal.read_bytes() == bytes(data), f"{name} changed the WAL"
    out = cli("store", "recover", "--db", str(db))
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.glob("r.duckdb.wal.bak-*")), "recover keeps a copy of the WAL"
    out = cli("runs", "--db", str(db))
    assert out.returncode == 0 and "tiny" in out.stdout, out.stderr  # everything checkpointed before is intact


def test_truncated_wal_is_refused_for_writing_and_recovered_on_request(finished: dict[str, Any], tmp_path: Path) -> None:
    db = _with_wal(finished, tmp_path)
    wal = tmp_path / "r.duckdb.wal"
    cut = wal.read_bytes()[: wal.stat().st_size // 2]
    wal.write_bytes(cut)
    out = cli(*_commands(db, tmp_path)["sweep"])
    assert out.returncode == 2, out.stderr
    _no_traceback(out)
    assert "r.duckdb.wal ends in the middle of a transaction" in out.stderr and "harness store recover" in out.stderr
    assert wal.read_bytes() == cut, "the sweep must not replay away the WAL"
    out = cli("runs", "--db", str(db))  # reading changes nothing and shows what is committed
    assert out.returncode == 0, out.stderr
    assert wal.read_bytes() == cut
    out = cli("store", "recover", "--db", str(db))
    assert out.returncode == 0 and "set aside" in out.stdout, out.stderr
    backups = list(tmp_path.glob("r.duckdb.wal.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == cut
    out = cli("runs", "--db", str(db))
    assert out.returncode == 0 and "tiny" in out.stdout


def test_deleted_wal_is_not_called_a_foreign_file(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    out = write_variant_then(db, "v", 10, "kill-after")  # a new store whose every row is still in the WAL
    assert "committed" in out.stdout, out.stderr
    (tmp_path / "r.duckdb.wal").unlink()
    out = cli("runs", "--db", str(db))
    assert out.returncode == 2
    _no_traceback(out)
    assert "r.duckdb.wal" in out.stderr and "not a finetune-harness store" not in out.stderr


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_truncated_or_garbage_store_file_is_exit_2(finished: dict[str, Any], tmp_path: Path, keep: float) -> None:
    db = copy_store(finished, tmp_path)
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep)])
    for name, args in _commands(db, tmp_path).items():
        out = cli(*args)
        assert out.returncode == 2, (name, out.stderr)
        _no_traceback(out)
        assert str(db) in out.stderr and ("truncated" in out.stderr or "not a DuckDB database" in out.stderr)


def test_damage_duckdb_names_no_position_for_is_cut_back_a_transaction_at_a_time(
        finished: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some damage (e.g. bytes in a column's statistics) makes DuckDB refuse the WAL without a byte position:
    recover then cuts whole transactions from the end until the rest replays, keeping a backup."""
    from harness.store import recover as rec
    from harness.store.wal import transaction_ends, wal_path

    db = _with_wal(finished, tmp_path)
    wal = tmp_path / "r.duckdb.wal"
    ends = transaction_ends(wal)
    assert len(ends) >= 3 and ends[-1] == wal.stat().st_size
    good = ends[-2]  # pretend the last transaction holds the damage
    real = rec._replay_error
    monkeypatch.setattr(rec, "_replay_error", lambda d: real(d) if wal_path(d).stat().st_size <= good else
                        'Invalid Input Error: Failure while replaying WAL file: Invalid unicode detected in segment')
    done = rec.recover(db)
    assert not wal.exists() or wal.stat().st_size in (0, good)  # cut to `good`, then checkpointed away
    assert any("does not replay" in d for d in done) and list(tmp_path.glob("r.duckdb.wal.bak-*"))
    out = cli("runs", "--db", str(db))
    assert out.returncode == 0 and "tiny" in out.stdout, out.stderr
