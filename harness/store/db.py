"""The DuckDB store: the only module that talks to DuckDB. One transaction per finished variant."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from harness.errors import HarnessInputError
from harness.results import LogPoint, VariantResult
from harness.scores import SUITE_FAILED
from harness.store.bulk import append_batches
from harness.store.check import refuse_truncated
from harness.store.connection import Connection
from harness.store.guard import as_input_error, check_orphan_wal
from harness.store.rows import Row, RunRow, result_rows, run_row_of, stored_variant
from harness.store.schema import (
    JSON_COLUMNS,
    SCHEMA_VERSION,
    TABLES,
    VARIANT_TABLES,
    VARIANTS_VIEW,
    column_types,
    decode_json,
    frame,
)

__all__ = ["JSON_COLUMNS", "SCHEMA_VERSION", "TABLES", "VARIANT_TABLES", "VARIANTS_VIEW", "Row", "RunRow", "Store",
           "VariantResult", "decode_json", "result_rows", "stored_variant"]

_column_types = column_types  # the name the schema tests import

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Incomplete:
    """A stored incomplete variant: the suites that failed on it, the artifact it was scored at, its train log."""

    suites: list[str]
    artifact: str | None
    train_log: list[LogPoint]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Store(Connection):
    """A DuckDB results file: `with Store(path) as s: ...`.

    hold=False (what a sweep uses) opens the file only while it reads or commits and checkpoints after each
    commit, so other processes can read the store between commits; a lock held by a reader is waited out.
    """

    def __init__(self, path: str | Path = "results.duckdb", *, read_only: bool = False, hold: bool = True):
        super().__init__(Path(path), read_only=read_only, hold=hold)
        if read_only and not self.path.exists():
            check_orphan_wal(self.path)
            raise HarnessInputError(
                f"{self.path}: no results store here. Run `harness sweep SPEC.yaml` first, or pass --db PATH."
            )
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise as_input_error(exc, self.path) or exc from None
        try:
            with self._session():
                if not read_only:
                    self._migrate()
                else:
                    refuse_truncated(self.con, self.path)
                    self._check_version()
        except BaseException:
            self.release(quiet=True)
            raise

    # -- schema ------------------------------------------------------------------------------
    def _stored_version(self) -> int | None:
        has_meta = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()
        if not has_meta or not has_meta[0]:
            return None
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else None

    def _check_version(self) -> None:
        version = self._stored_version()
        if version is None:
            n_tables = self.con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
            if n_tables and n_tables[0]:
                raise HarnessInputError(f"{self.path}: not a finetune-harness store (no schema version).")
            raise HarnessInputError(
                f"{self.path}: holds no tables at all. Rows that were never checkpointed live in the write-ahead "
                f"log {self.path.name}.wal beside it, which is not there: if it was deleted or left behind when the "
                "store was copied, put it back next to the file. Otherwise point --db at your results store.",
                title="empty store")
        if version > SCHEMA_VERSION:
            raise HarnessInputError(
                f"{self.path}: schema version {version} is newer than this harness understands "
                f"({SCHEMA_VERSION}). Upgrade finetune-harness."
            )

    def _migrate(self) -> None:
        version = self._stored_version()
        if version is not None and version > SCHEMA_VERSION:
            self._check_version()
        n_tables = self.con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
        if version is None and n_tables and n_tables[0]:
            raise HarnessInputError(
                f"{self.path}: this DuckDB file holds other tables and no finetune-harness schema; "
                "point --db at a new file."
            )
        # Create what is missing; an older file (version 1) gains the columns later versions added, as NULLs.
        for table, ddl in TABLES.items():
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")
        if version is not None:  # columns appended without a version bump reach files of the same version too
            self._add_missing_columns()
        if version is not None and version < SCHEMA_VERSION:
            if version < 5:
                self._backfill_samples()
        for column, kind in (("pid", "INTEGER"), ("host", "VARCHAR")):  # added without a version bump: optional
            self.con.execute(f"ALTER TABLE runs ADD COLUMN IF NOT EXISTS {column} {kind}")
        self.con.execute(VARIANTS_VIEW)
        self.con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )

    def _add_missing_columns(self) -> None:
        have = self.con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
        existing = {(t, c) for t, c in have}
        for table in TABLES:
            for col, sql_type in column_types(table).items():
                if (table, col) not in existing:
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "{col}" {sql_type}')

    def _backfill_samples(self) -> None:
        """Stores before version 5 kept each per-example value in examples.detail under its metric's name (and the
        item's cluster under `cluster`): copy them into sample_scores and examples.cluster, for every metric the
        suite has a score of. Readers then pair old and new results alike; detail keeps what it held."""
        self.con.execute("""
            INSERT INTO sample_scores
            SELECT e.variant_id, e.suite, e.example_id, s.metric,
                   CASE json_type(json_extract(e.detail, '$."' || replace(s.metric, '"', '') || '"'))
                       WHEN 'BOOLEAN' THEN CAST(json_extract_string(e.detail, '$."' || replace(s.metric, '"', '')
                                                || '"') = 'true' AS DOUBLE)
                       ELSE TRY_CAST(json_extract_string(e.detail, '$."' || replace(s.metric, '"', '') || '"')
                                     AS DOUBLE) END AS value
            FROM examples e JOIN (SELECT DISTINCT variant_id, suite, metric FROM scores) s
                 USING (variant_id, suite)
            WHERE e.detail IS NOT NULL
              AND json_type(json_extract(e.detail, '$."' || replace(s.metric, '"', '') || '"'))
                  IN ('DOUBLE', 'UBIGINT', 'BIGINT', 'BOOLEAN')
              AND NOT EXISTS (SELECT 1 FROM sample_scores x WHERE x.variant_id = e.variant_id)
        """)
        self.con.execute("""
            UPDATE examples SET cluster = json_extract_string(detail, '$.cluster')
            WHERE cluster IS NULL AND detail IS NOT NULL AND json_extract(detail, '$.cluster') IS NOT NULL
        """)

    # -- writes ------------------------------------------------------------------------------
    def mark_stale_runs(self) -> list[str]:
        """Mark this store's 'running' runs whose process is gone (or that predate pids) as 'interrupted'; returns
        their ids. Call it holding the sweep lock: then no other sweep on this store can be running."""
        from harness.store.lock import liveness

        with self.transaction():
            df = self.query("SELECT run_id, pid, host, started_at FROM runs WHERE status = 'running'")
            stale = [str(r.run_id) for r in df.itertuples()
                     if pd.isna(r.pid) or liveness(int(r.pid), r.host, r.started_at) == "gone"]
            for run_id in stale:
                self.con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = ?", [run_id])
        return stale

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._session() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # a failed commit (full disk) has rolled back already; keep the original error
                raise
            con.execute("COMMIT")

    def _insert(self, table: str, rows: Sequence[Mapping[str, object]]) -> None:
        if not rows:
            return
        df = frame(table, rows)
        cols = ", ".join(f'"{c}"' for c in df.columns)
        self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM df")

    def start_run(self, run: Mapping[str, object]) -> str:
        """Create a run row (status 'running') from `runs` columns and return its id."""
        row = dict(run)
        row.setdefault("run_id", _new_run_id())
        row.setdefault("status", "running")
        row.setdefault("started_at", _now())
        row["store_path"] = str(self.path)
        from harness.store.lock import this_process

        for key, value in this_process().items():
            row.setdefault(key, value)
        with self.transaction():
            self._insert("runs", [row])
        return str(row["run_id"])

    def link_variants(self, run_id: str, variant_ids: Sequence[str], reused: Sequence[bool]) -> None:
        rows = [
            {"run_id": run_id, "variant_id": v, "position": i, "reused": r}
            for i, (v, r) in enumerate(zip(variant_ids, reused, strict=True))
        ]
        with self.transaction():
            self.con.execute("DELETE FROM run_variants WHERE run_id = ?", [run_id])
            self._insert("run_variants", rows)

    def set_link_reused(self, run_id: str, variant_id: str, reused: bool) -> None:
        with self._session() as con:
            con.execute(
                "UPDATE run_variants SET reused = ? WHERE run_id = ? AND variant_id = ?", [reused, run_id, variant_id]
            )

    def finish_run(self, run_id: str, status: str, at: datetime | None = None) -> None:
        """Set a run's final status and when it finished (now, unless `at` says otherwise)."""
        with self._session() as con:
            con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, at or _now(), run_id])

    def write_variant(self, result: VariantResult) -> None:
        """Store a finished (or failed, or incomplete) variant and all its rows in one transaction, replacing an
        older try; a result that rescored some suites of a stored incomplete variant (`rescored`) replaces only
        those suites' rows and the variant's status, keeping its other suites and its train log."""
        vid = result.variant_id
        variant = stored_variant(result.variant)
        if variant["finished_at"] is None:
            variant["finished_at"] = _now()
        if result.rescored is not None:
            self._write_rescored(result, variant)
            return
        with self.transaction():
            for table in ("variant_results", *VARIANT_TABLES):
                self.con.execute(f"DELETE FROM {table} WHERE variant_id = ?", [vid])
            self._insert("variant_results", [variant])
            for table, rows in result_rows(result).items():
                self._insert(table, rows)

    def _write_rescored(self, result: VariantResult, variant: Row) -> None:
        vid, suites = result.variant_id, list(result.rescored or [])
        with self.transaction():
            for table in ("scores", "examples", "sample_scores"):
                self.con.execute(f"DELETE FROM {table} WHERE variant_id = ? AND suite IN (SELECT unnest(?))",
                                 [vid, suites])
            self.con.execute("""DELETE FROM findings WHERE variant_id = ? AND (json_extract_string(evidence, '$.suite')
                                IN (SELECT unnest(?)) OR "check" = ?)""", [vid, suites, SUITE_FAILED])
            self.con.execute("UPDATE variant_results SET status = ?, error = ?, run_id = ?, finished_at = ? "
                             "WHERE variant_id = ?", [variant["status"], variant["error"], variant["run_id"],
                                                      variant["finished_at"], vid])
            for table, rows in result_rows(result).items():
                if table != "train_log":  # the stored training's log stays; nothing was trained again
                    self._insert(table, rows)

    def replace_findings(self, variant_ids: Sequence[str], checks: Sequence[str],
                         rows: Sequence[Mapping[str, object]]) -> None:
        """In one transaction: drop these variants' findings of these checks, insert `rows` (each with variant_id)."""
        with self.transaction():
            self.con.execute('DELETE FROM findings WHERE variant_id IN (SELECT unnest(?)) AND "check" IN '
                             "(SELECT unnest(?))", [list(variant_ids), list(checks)])
            self._insert("findings", list(rows))

    def append_batches(self, table: str, batches: Iterable[pa.RecordBatch], *, memory_mb: int = 512) -> int:
        """Append Arrow record batches to a table in one transaction, streaming (memory bounded by a batch and
        `memory_mb` of DuckDB cache); returns the rows appended. For ingesting results made elsewhere."""
        with self.transaction():
            return append_batches(self.con, table, batches, memory_mb=memory_mb)

    def upsert_job(self, job: Mapping[str, object]) -> None:
        """Store a managed fine-tuning job's `jobs` row (replacing the variant's earlier one), stamped now."""
        row = {**job, "updated_at": _now()}
        with self.transaction():
            self.con.execute("DELETE FROM jobs WHERE variant_id = ?", [row["variant_id"]])
            self._insert("jobs", [row])

    # -- reads -------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        """Run a read query and return a DataFrame (the way report, gate and users read the store)."""
        with self._session() as con:
            return con.execute(sql, list(params or [])).df()

    def finished_variant_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        df = self.query(
            "SELECT variant_id FROM variant_results WHERE status = 'finished' AND variant_id IN (SELECT unnest(?))",
            [list(ids)],
        )
        return set(df["variant_id"])

    def incomplete_variants(self, ids: Sequence[str]) -> dict[str, Incomplete]:
        """The stored incomplete variants among `ids`: the suites that failed on each (its `suite_failed` findings),
        its artifact and its train log, for a rerun that scores only those suites."""
        if not ids:
            return {}
        rows = self.query("""SELECT v.variant_id, v.artifact, json_extract_string(f.evidence, '$.suite') AS suite
                             FROM variant_results v JOIN findings f USING (variant_id)
                             WHERE v.status = 'incomplete' AND f."check" = ? AND v.variant_id IN (SELECT unnest(?))
                             ORDER BY v.variant_id""", [SUITE_FAILED, list(ids)])
        out: dict[str, Incomplete] = {}
        for r in rows.itertuples():
            vid = str(r.variant_id)
            if vid not in out:
                log = self.query("SELECT step, epoch, split, loss FROM train_log WHERE variant_id = ? ORDER BY step",
                                 [vid])
                out[vid] = Incomplete([], None if pd.isna(r.artifact) else str(r.artifact),
                                      [LogPoint(int(x.step), None if pd.isna(x.epoch) else float(x.epoch), str(x.split),
                                                float(x.loss)) for x in log.itertuples()])
            if isinstance(r.suite, str) and r.suite not in out[vid].suites:
                out[vid].suites.append(r.suite)
        return out

    def resolve_run(self, run: str | None = "latest") -> str:
        """'latest' (or None) -> the newest run id; a prefix of an id -> that id; errors name the choices."""
        runs = self.query("SELECT run_id, name, started_at FROM runs ORDER BY started_at DESC")
        if runs.empty:
            raise HarnessInputError(f"{self.path}: holds no runs yet. Run `harness sweep SPEC.yaml` first.")
        if run in (None, "", "latest"):
            return str(runs.iloc[0]["run_id"])
        matches = [r for r in runs["run_id"] if r == run or r.startswith(str(run))]
        if len(matches) == 1:
            return str(matches[0])
        known = ", ".join(runs["run_id"].head(5))
        what = "is ambiguous" if matches else "is not in this store"
        raise HarnessInputError(f"{self.path}: run {run!r} {what}. Recent runs: {known} (or use 'latest').")

    def runs(self) -> pd.DataFrame:
        return self.query(
            """
            SELECT r.run_id, r.name, r.status, count(rv.variant_id) AS variants,
                   count(*) FILTER (WHERE rv.reused) AS reused, r.started_at, r.finished_at,
                   count(*) FILTER (WHERE vr.status = 'failed') AS failed,
                   count(*) FILTER (WHERE vr.status = 'incomplete') AS incomplete
            FROM runs r LEFT JOIN run_variants rv USING (run_id) LEFT JOIN variant_results vr USING (variant_id)
            GROUP BY ALL ORDER BY r.started_at DESC
            """
        )

    def runs_with_status(self, status: str) -> pd.DataFrame:
        """Rows of the runs in a status (e.g. 'running')."""
        return self.query("SELECT * FROM runs WHERE status = ?", [status])

    def run_row(self, run_id: str) -> RunRow:
        """The run's row, JSON columns decoded."""
        return run_row_of(decode_json(self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])).iloc[0].to_dict())

    def run_table(self, run_id: str, table: str) -> pd.DataFrame:
        """Rows of a per-variant table (or `variants` itself) for every variant listed by the run, JSON decoded."""
        if table == "variants":
            return decode_json(self.query("SELECT * FROM variants WHERE run_id = ? ORDER BY position", [run_id]))
        if table not in VARIANT_TABLES:
            raise ValueError(f"unknown per-variant table {table!r}")
        return decode_json(self.query(
            f"""SELECT t.* FROM {table} t JOIN run_variants rv USING (variant_id)
                WHERE rv.run_id = ? ORDER BY rv.position""",
            [run_id],
        ))

    def variant_table(self, variant_id: str, table: str) -> pd.DataFrame:
        """One variant's rows of a per-variant table (or its results row), JSON decoded."""
        if table not in (*VARIANT_TABLES, "variant_results"):
            raise ValueError(f"unknown per-variant table {table!r}")
        return decode_json(self.query(f"SELECT * FROM {table} WHERE variant_id = ?", [variant_id]))

    def empty_table(self, table: str) -> pd.DataFrame:
        """A table's columns with no rows."""
        return self.query(f"SELECT * FROM {table} LIMIT 0")

    def jobs(self, variant_ids: Sequence[str]) -> dict[str, Row]:
        """Stored managed fine-tuning jobs (`jobs` rows, detail decoded) by variant id."""
        if not variant_ids:
            return {}
        df = decode_json(self.query("SELECT * FROM jobs WHERE variant_id IN (SELECT unnest(?))", [list(variant_ids)]))
        return {str(r["variant_id"]): r for r in df.to_dict("records")}


def _new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
