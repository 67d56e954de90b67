"""The store's connection: held for a Store's life, or (hold=False) opened only while in use and checkpointed and
closed after, so other processes can read the file between a sweep's commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import duckdb

from harness.store.guard import as_input_error, connect


class Connection:
    """A DuckDB connection to `path` that opens on first use; the outermost use of a hold=False one closes it."""

    def __init__(self, path: Path, *, read_only: bool, hold: bool):
        self.path = path
        self.read_only = read_only
        self.hold = hold
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The open connection (opened on first use; a hold=False store closes it again after each use)."""
        if self._con is None:
            self._con = connect(self.path, read_only=self.read_only)
        return self._con

    @contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Use the connection; the outermost use of a hold=False store checkpoints and closes it afterwards. A DuckDB
        error met on the way (a damaged block found by a read, a full disk) becomes exit 2 naming the file."""
        self._depth += 1
        try:
            yield self.con
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0 and not self.hold:
                self.release(quiet=True)
            if isinstance(exc, duckdb.Error):
                raise as_input_error(exc, self.path) or exc from None
            raise
        self._depth -= 1
        if self._depth == 0 and not self.hold:
            self.release()

    def release(self, *, quiet: bool = False) -> None:
        """Checkpoint (so the main file holds every commit and the WAL is empty) and close the connection."""
        con, self._con = self._con, None
        if con is None:
            return
        try:
            if not self.read_only:
                con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            if not quiet:
                raise as_input_error(exc, self.path) or exc from None
        finally:
            con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release(quiet=exc[0] is not None)

    def close(self) -> None:
        self.release()

