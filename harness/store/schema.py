"""The store's schema: each table's DDL in the contract's column order, the `variants` view, JSON columns, row frames."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import pandas as pd

SCHEMA_VERSION = 5  # 2: variant_results gains device, dtype, real_token_share
# 3: variant_results gains prompt/output tokens and seconds per request, shots (method prompt); runs gains data_checks (the data-quality
#    warnings found before the sweep); variant_results gains scored_epoch, scored_step, stop_reason (the checkpoint
#    scored, and why training stopped early)
# 4: review_sheets, review_items and ratings (human rating sheets, their blind label -> variant mapping, the ratings
#    imported back); older files gain the empty tables when opened for writing (_migrate)
# 5: sample_scores (one row per example and per-example metric: the values paired comparisons read, which earlier
#    versions kept inside examples.detail) and examples.cluster; older files gain both, filled from their
#    examples.detail (_backfill_samples), when opened for writing; detail itself is left as it was

# Column order is the contract's order; more columns may follow in later versions.
TABLES: dict[str, str] = {
    "meta": "key VARCHAR PRIMARY KEY, value VARCHAR",
    "runs": """
        run_id VARCHAR PRIMARY KEY, name VARCHAR, spec VARCHAR, spec_hash VARCHAR, status VARCHAR,
        started_at TIMESTAMP, finished_at TIMESTAMP, harness_version VARCHAR, git_sha VARCHAR,
        git_dirty BOOLEAN, spec_path VARCHAR, model VARCHAR, model_fingerprint VARCHAR,
        data_fingerprints JSON, suites JSON, library_versions JSON, store_path VARCHAR, pid INTEGER, host VARCHAR,
        data_checks JSON""",
    "run_variants": """
        run_id VARCHAR, variant_id VARCHAR, position INTEGER, reused BOOLEAN,
        PRIMARY KEY (run_id, variant_id)""",
    # One row per variant result, whichever run produced it; the `variants` view lists them per run.
    "variant_results": """
        variant_id VARCHAR PRIMARY KEY, run_id VARCHAR, name VARCHAR, method VARCHAR, rank INTEGER,
        epochs INTEGER, learning_rate DOUBLE, seed INTEGER, base_model VARCHAR, status VARCHAR,
        train_seconds DOUBLE, train_tokens BIGINT, tokens_per_second DOUBLE, trainable_params BIGINT,
        total_params BIGINT, peak_memory_mb DOUBLE, artifact VARCHAR, error VARCHAR,
        artifact_bytes BIGINT, score_seconds DOUBLE, config JSON, finished_at TIMESTAMP,
        device VARCHAR, dtype VARCHAR, real_token_share DOUBLE, prompt_tokens_per_request DOUBLE,
        output_tokens_per_request DOUBLE, seconds_per_request DOUBLE, shots INTEGER, scored_epoch DOUBLE,
        scored_step INTEGER, stop_reason VARCHAR, processes INTEGER, strategy VARCHAR, devices VARCHAR,
        node VARCHAR""",
    "train_log": "variant_id VARCHAR, step INTEGER, epoch DOUBLE, split VARCHAR, loss DOUBLE",
    "scores": """
        variant_id VARCHAR, suite VARCHAR, metric VARCHAR, value DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
        n INTEGER, suite_version VARCHAR, scorer JSON""",
    "examples": """
        variant_id VARCHAR, suite VARCHAR, example_id VARCHAR, prompt VARCHAR, reference VARCHAR,
        output VARCHAR, passed BOOLEAN, detail JSON, cluster VARCHAR""",
    # The per-example value of each per-example metric (the stored score is their mean): what every paired
    # comparison, the gate's baseline snapshot and the report's per-example views read.
    "sample_scores": "variant_id VARCHAR, suite VARCHAR, example_id VARCHAR, metric VARCHAR, value DOUBLE",
    "findings": "variant_id VARCHAR, \"check\" VARCHAR, severity VARCHAR, message VARCHAR, evidence JSON",
    "jobs": """
        variant_id VARCHAR PRIMARY KEY, provider VARCHAR, job_id VARCHAR, status VARCHAR,
        fine_tuned_model VARCHAR, detail JSON, updated_at TIMESTAMP""",
    # Human review (harness/store/review.py): a blind sheet, each item's label -> variant mapping (kept here, never
    # in the sheet), and one row per rating (sheet, rater, example, variant, criterion: one value, updated in place).
    "review_sheets": """
        sheet_id VARCHAR PRIMARY KEY, run_id VARCHAR, suite VARCHAR, created_at TIMESTAMP, seed INTEGER,
        sample INTEGER, stratify VARCHAR, reference BOOLEAN, rubric JSON, variant_ids JSON, raters JSON,
        harness_version VARCHAR""",
    "review_items": "sheet_id VARCHAR, position INTEGER, example_id VARCHAR, label VARCHAR, variant_id VARCHAR",
    "ratings": """
        sheet_id VARCHAR, rater VARCHAR, example_id VARCHAR, variant_id VARCHAR, criterion VARCHAR, value DOUBLE,
        comment VARCHAR, rated_at TIMESTAMP, label VARCHAR""",
}

# `variants` (a contract): one row per variant of a run, reused ones included, results referenced not copied.
# run_id is the run that lists the variant; produced_by_run the run that trained and scored it.
VARIANTS_VIEW = """
    CREATE OR REPLACE VIEW variants AS
    SELECT vr.variant_id, rv.run_id, vr.* EXCLUDE (variant_id, run_id), vr.run_id AS produced_by_run,
           rv.reused, rv.position
    FROM run_variants rv JOIN variant_results vr USING (variant_id)
"""

# Tables written per variant, in the order they are written.
VARIANT_TABLES = ("train_log", "scores", "examples", "sample_scores", "findings")


def column_types(table: str) -> dict[str, str]:
    """Column -> SQL type, in the table's order, from its DDL."""
    cols: dict[str, str] = {}
    for part in TABLES[table].split(","):
        part = part.strip()
        if not part or part.startswith("PRIMARY KEY") or part.endswith(")"):
            continue
        name, sql_type = part.split()[:2]
        cols[name.strip('"')] = sql_type
    return cols


def columns(table: str) -> list[str]:
    """A table's column names, in order."""
    return list(column_types(table))


JSON_COLUMNS = ("detail", "evidence", "scorer", "config", "data_fingerprints", "suites", "library_versions",
                "data_checks")


def decode_json(df: pd.DataFrame) -> pd.DataFrame:
    """JSON columns of a read as Python objects (dicts and lists; NULL -> None)."""
    for c in JSON_COLUMNS:
        if c in df.columns:
            df[c] = [json.loads(v) if isinstance(v, str) else None for v in df[c]]
    return df


def frame(table: str, rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly the table's columns; dicts/lists in JSON columns are dumped."""
    cols = columns(table)
    df = pd.DataFrame(list(rows), columns=cols)
    for c in cols:
        if c in JSON_COLUMNS:
            df[c] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v if isinstance(v, str)
                     else json.dumps(v, default=str) for v in df[c]]
    return df
