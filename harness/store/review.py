"""Human review in the store: rating sheets, their blind label -> variant mapping, and the ratings imported back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.store.db import Store

RATING_COLUMNS = ("sheet_id", "rater", "example_id", "variant_id", "criterion", "value", "comment", "rated_at", "label")
RATING_KEY = ("sheet_id", "rater", "example_id", "variant_id", "criterion")


@dataclass(frozen=True)
class ImportCounts:
    """What storing one file's ratings did: rows new, changed (value, comment or time), unchanged, and removed (a
    rating the rater has since cleared on an item the file rates again)."""

    new: int
    changed: int
    unchanged: int
    removed: int


def has_review_tables(store: Store) -> bool:
    """Whether the file has the review tables (a schema-3 file opened read-only does not; writing adds them)."""
    df = store.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'ratings'")
    return bool(df["n"].iloc[0])


def save_sheet(store: Store, sheet: dict[str, Any], items: Sequence[dict[str, Any]]) -> None:
    """Store a sheet and its items (one row per item and label), replacing an earlier export of the same sheet."""
    row = {**sheet, **{k: json.dumps(sheet[k]) for k in ("rubric", "variant_ids", "raters")}}
    sheets = pd.DataFrame([row])
    rows = pd.DataFrame(list(items), columns=["sheet_id", "position", "example_id", "label", "variant_id"])
    with store.transaction():
        store.con.execute("DELETE FROM review_items WHERE sheet_id = ?", [sheet["sheet_id"]])
        store.con.execute("DELETE FROM review_sheets WHERE sheet_id = ?", [sheet["sheet_id"]])
        _append(store, "review_sheets", sheets)
        _append(store, "review_items", rows)


def _append(store: Store, table: str, df: pd.DataFrame) -> None:
    """Insert a frame's rows by column name."""
    store.con.register("_review_rows", df)
    try:
        cols = ", ".join(f'"{c}"' for c in df.columns)
        store.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _review_rows")
    finally:
        store.con.unregister("_review_rows")


def load_sheet(store: Store, sheet_id: str) -> dict[str, Any] | None:
    """A stored sheet (JSON decoded) with `items`: {example_id: {label: variant_id}} in sheet order; None if unknown."""
    if not has_review_tables(store):
        return None
    df = store.query("SELECT * FROM review_sheets WHERE sheet_id = ?", [sheet_id])
    if df.empty:
        return None
    sheet = df.iloc[0].to_dict()
    for k in ("rubric", "variant_ids", "raters"):
        sheet[k] = json.loads(sheet[k]) if isinstance(sheet[k], str) else []
    items: dict[str, dict[str, str]] = {}
    rows = store.query("SELECT example_id, label, variant_id FROM review_items WHERE sheet_id = ? "
                       "ORDER BY position, label", [sheet_id])
    for eid, label, vid in rows.itertuples(index=False):
        items.setdefault(str(eid), {})[str(label)] = str(vid)
    sheet["items"] = items
    return sheet


def sheet_ids(store: Store) -> list[str]:
    """Every stored sheet, newest first."""
    if not has_review_tables(store):
        return []
    return [str(x) for x in store.query("SELECT sheet_id FROM review_sheets ORDER BY created_at DESC")["sheet_id"]]


def store_ratings(store: Store, sheet_id: str, rater: str, rows: Sequence[Mapping[str, object]]) -> ImportCounts:
    """Store one rater's ratings of a sheet, in one transaction: every item the rows rate is replaced by them
    (so importing the same file twice stores it once, and a later file of the same rater updates it)."""
    new = pd.DataFrame(list(rows), columns=list(RATING_COLUMNS))
    new["value"] = new["value"].astype(float)
    new["rated_at"] = pd.to_datetime(new["rated_at"])
    examples = sorted(set(new["example_id"]))
    with store.transaction():
        old = store.con.execute(
            "SELECT * FROM ratings WHERE sheet_id = ? AND rater = ? AND example_id IN (SELECT unnest(?))",
            [sheet_id, rater, examples]).df()
        counts = _diff(old, new)
        store.con.execute("DELETE FROM ratings WHERE sheet_id = ? AND rater = ? AND example_id IN (SELECT unnest(?))",
                          [sheet_id, rater, examples])
        _append(store, "ratings", new)
    return counts


def _diff(old: pd.DataFrame, new: pd.DataFrame) -> ImportCounts:
    def keyed(df: pd.DataFrame) -> dict[tuple[Any, ...], tuple[Any, ...]]:
        out = {}
        for r in df.to_dict("records"):
            value = None if pd.isna(r["value"]) else float(r["value"])
            when = None if pd.isna(r["rated_at"]) else pd.Timestamp(r["rated_at"]).isoformat()
            out[tuple(r[k] for k in RATING_KEY)] = (value, r["comment"] or "", when, r["label"])
        return out

    before, after = keyed(old), keyed(new)
    same = sum(1 for k, v in after.items() if before.get(k) == v)
    changed = sum(1 for k, v in after.items() if k in before and before[k] != v)
    return ImportCounts(len(set(after) - set(before)), changed, same, len(set(before) - set(after)))


def ratings_of(store: Store, variant_ids: Sequence[str]) -> pd.DataFrame:
    """Every stored rating of these variants (any sheet, any rater); empty with the table's columns if none."""
    if not variant_ids or not has_review_tables(store):
        return pd.DataFrame(columns=list(RATING_COLUMNS))
    return store.query("SELECT * FROM ratings WHERE variant_id IN (SELECT unnest(?)) "
                       "ORDER BY sheet_id, rater, example_id, variant_id, criterion", [list(variant_ids)])


def run_ratings(store: Store, run_id: str) -> pd.DataFrame:
    """The ratings of every variant a run lists (ratings follow a variant into the runs that reuse it)."""
    ids = list(store.run_table(run_id, "variants")["variant_id"])
    return ratings_of(store, ids)


def sheet_rubrics(store: Store, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """sheet_id -> its stored rubric (criteria as dicts), for these sheets."""
    if not ids or not has_review_tables(store):
        return {}
    df = store.query("SELECT sheet_id, rubric FROM review_sheets WHERE sheet_id IN (SELECT unnest(?)) "
                     "ORDER BY created_at", [list(ids)])
    return {str(k): json.loads(v) if isinstance(v, str) else [] for k, v in df.itertuples(index=False)}
