"""Reads for the report's example explorer, over every example row of a run in SQL: counts, how much variants
disagree on each example, one row of each failure kind, the recommended-vs-base order, and the rows picked."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from harness.store.db import Store
from harness.store.schema import decode_json

_RUN = "SELECT variant_id, position FROM run_variants WHERE run_id = ?"


def examples_sql(run_id: str) -> str:
    """The SQL that returns every example row of a run, as the report tells its reader to run it."""
    quoted = run_id.replace("'", "''")
    return ("SELECT e.* FROM examples e JOIN run_variants rv USING (variant_id)\n"
            f"WHERE rv.run_id = '{quoted}' ORDER BY rv.position, e.suite, e.example_id;")


def example_counts(store: Store, run_id: str) -> pd.DataFrame:
    """Per suite: example rows, distinct examples and the UTF-8 bytes of their texts (suite, rows, examples,
    text_bytes)."""
    return store.query(f"""
        SELECT e.suite, count(*) AS rows, count(DISTINCT e.example_id) AS examples,
               sum(coalesce(strlen(e.prompt), 0) + coalesce(strlen(e.reference), 0)
                   + coalesce(strlen(e.output), 0) + coalesce(strlen(e.detail::VARCHAR), 0))
                   AS text_bytes
        FROM examples e JOIN ({_RUN}) rv USING (variant_id) GROUP BY e.suite ORDER BY e.suite""", [run_id])


def agreement(store: Store, run_id: str) -> pd.DataFrame:
    """Per (suite, example_id) over every variant of the run: rows, rows passed, rows judged, the variance of
    `passed` across variants and the largest spread of a per-example metric (its across-variant standard deviation
    over the metric's own, so metrics of any scale compare); most disagreement first."""
    return store.query(f"""
        WITH rv AS ({_RUN}),
        ex AS (
            SELECT e.suite, e.example_id, count(*) AS n, count(*) FILTER (WHERE e.passed) AS n_pass,
                   count(e.passed) AS n_judged, var_pop(e.passed::DOUBLE) AS pass_var
            FROM examples e JOIN rv USING (variant_id) GROUP BY ALL),
        ss AS (SELECT s.suite, s.example_id, s.metric, s.value FROM sample_scores s JOIN rv USING (variant_id)
               WHERE isfinite(s.value)),
        scale AS (SELECT suite, metric, stddev_pop(value) AS sd FROM ss GROUP BY ALL HAVING stddev_pop(value) > 0),
        spread AS (
            SELECT x.suite, x.example_id, max(x.sd / scale.sd) AS spread
            FROM (SELECT suite, example_id, metric, stddev_pop(value) AS sd FROM ss GROUP BY ALL) x
            JOIN scale USING (suite, metric) GROUP BY ALL)
        SELECT ex.*, spread.spread FROM ex LEFT JOIN spread USING (suite, example_id)
        ORDER BY ex.pass_var DESC NULLS LAST, spread.spread DESC NULLS LAST, ex.suite, ex.example_id""", [run_id])


def outcome_rows(store: Store, run_id: str, prefer: Sequence[str]) -> pd.DataFrame:
    """One row (variant_id, example_id) for each (suite, metric, value) of every 0/1 per-example metric of the run,
    and for each suite with a row not passed (metric 'passed', value 0); variants in `prefer` first, then plan order."""
    order = "CASE " + " ".join(f"WHEN x.variant_id = ${i + 2} THEN {i}" for i in range(len(prefer))) + \
        f" ELSE {len(prefer)} END" if prefer else "0"
    return store.query(f"""
        WITH rv AS (SELECT variant_id, position FROM run_variants WHERE run_id = $1),
        ss AS (SELECT s.* FROM sample_scores s JOIN rv USING (variant_id)),
        bin AS (SELECT suite, metric FROM ss GROUP BY ALL HAVING bool_and(value IN (0, 1))),
        x AS (
            SELECT ss.suite, ss.metric, ss.value, ss.variant_id, ss.example_id FROM ss SEMI JOIN bin USING (suite, metric)
            UNION ALL
            SELECT e.suite, 'passed', 0.0, e.variant_id, e.example_id FROM examples e JOIN rv USING (variant_id)
            WHERE NOT e.passed)
        SELECT suite, metric, value, pick.v AS variant_id, pick.e AS example_id FROM (
            SELECT x.suite, x.metric, x.value,
                   min(struct_pack(p := {order}, pos := rv.position, e := x.example_id, v := x.variant_id)) AS pick
            FROM x JOIN rv USING (variant_id) GROUP BY ALL)
        ORDER BY suite, metric, value""", [run_id, *prefer])


def paired_order(store: Store, a: str, b: str, limit: int) -> pd.DataFrame:
    """(suite, example_id) that variants `a` and `b` both have, those where `passed` differs first, then those
    where the output differs, each taken round-robin across suites; at most `limit`."""
    return store.query("""
        SELECT suite, example_id, differs FROM (
            SELECT *, row_number() OVER (PARTITION BY suite, differs ORDER BY example_id) AS k FROM (
                SELECT x.suite, x.example_id,
                       CASE WHEN x.passed IS DISTINCT FROM y.passed THEN 2
                            WHEN x.output IS DISTINCT FROM y.output THEN 1 ELSE 0 END AS differs
                FROM examples x JOIN examples y USING (suite, example_id)
                WHERE x.variant_id = ? AND y.variant_id = ?))
        ORDER BY differs DESC, k, suite LIMIT ?""", [a, b, limit])


def picked_rows(store: Store, picks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `examples` rows (JSON decoded, with `text_bytes`: their texts' UTF-8 size) and the `sample_scores` rows
    of the picked (variant_id, suite, example_id)."""
    keys = picks[["variant_id", "suite", "example_id"]].drop_duplicates()
    params = [keys[c].astype(str).tolist() for c in ("variant_id", "suite", "example_id")]
    picked = "(SELECT unnest(?) AS variant_id, unnest(?) AS suite, unnest(?) AS example_id)"
    rows = store.query(f"""
        SELECT e.*, coalesce(strlen(e.prompt), 0) + coalesce(strlen(e.reference), 0)
                    + coalesce(strlen(e.output), 0) + coalesce(strlen(e.detail::VARCHAR), 0)
                    AS text_bytes
        FROM examples e SEMI JOIN {picked} USING (variant_id, suite, example_id)""", params)
    samples = store.query(f"SELECT s.* FROM sample_scores s SEMI JOIN {picked} USING (variant_id, suite, example_id)",
                          params)
    return decode_json(rows), samples


def copied_rows(store: Store, run_id: str, suites: Sequence[str]) -> pd.DataFrame:
    """The run's example rows of these suites whose detail records a copied span (`detail.copied`), JSON decoded."""
    if not suites:
        return store.empty_table("examples")
    return decode_json(store.query(f"""
        SELECT e.* FROM examples e JOIN ({_RUN}) rv USING (variant_id)
        WHERE e.suite IN (SELECT unnest(?)) AND json_extract(e.detail, '$.copied') IS NOT NULL
        ORDER BY rv.position, e.example_id""", [run_id, list(suites)]))


def run_samples(store: Store, run_id: str, only: dict[str, list[str]]) -> pd.DataFrame:
    """The run's `sample_scores` rows, where a suite in `only` keeps only the metrics listed for it (the per-example
    values the report's paired comparisons read, without the rest of a large held-out suite)."""
    keep = [f"{suite}\x1f{m}" for suite, metrics in only.items() for m in metrics]
    return store.query("""
        SELECT s.* FROM sample_scores s JOIN run_variants rv USING (variant_id)
        WHERE rv.run_id = ? AND (s.suite NOT IN (SELECT unnest(?)) OR s.suite || chr(31) || s.metric IN
                                 (SELECT unnest(?)))""", [run_id, list(only), keep])
