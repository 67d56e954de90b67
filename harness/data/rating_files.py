"""Filled rating sheets coming back: the JSON a sheet saves, or its CSV filled in a spreadsheet, read and checked
against the stored sheet, then un-blinded (label -> variant) into one row per rating. Every problem names the file
and the item."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from harness.errors import HarnessInputError
from harness.scores import JSONValue
from harness.spec.review import Criterion
from harness.textfiles import read_text

FORMAT = "finetune-harness-ratings"
FORMAT_VERSION = 1
COMMENT = "comment"  # the criterion of a row that holds only a comment (no value)
PREFERRED = "preferred"  # the criterion under which a preference is stored: 1 for the chosen output, 0 for the others
TIE = "none"  # a preference of "no preference": every output of the item stored as 0
_MARK = ("x", "yes", "1", "true", "preferred")


@dataclass
class Entry:
    """One item as the rater left it (labels as shown on the sheet; values as written)."""

    example_id: str
    where: str  # "item <id>" or "line <n>": for messages
    scores: dict[str, dict[str, JSONValue]] = field(default_factory=dict)  # label -> criterion -> raw value
    comments: dict[str, str] = field(default_factory=dict)
    preferred: str | None = None  # a label, TIE, or None (not answered)
    rated_at: datetime | None = None


@dataclass
class RatingFile:
    path: Path
    sheet_id: str
    rater: str
    entries: list[Entry]


class Rating(TypedDict):
    """One row of the `ratings` table: a rater's value of one criterion for one variant's output of one item (the
    `comment` criterion holds a comment only; `preferred` 1 for the chosen output, 0 for the others)."""

    sheet_id: str
    rater: str
    example_id: str
    variant_id: str
    criterion: str
    value: float | None
    comment: str | None
    rated_at: datetime | None
    label: str


def _when(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def read_rating_file(path: str | Path) -> RatingFile:
    """Read a saved sheet (.json) or a filled CSV (.csv); a file that is neither is bad input naming the file."""
    path = Path(path)
    if not path.is_file():
        raise HarnessInputError(f"{path}: no such file; give the JSON a sheet saved, or its filled CSV")
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    try:
        data = json.loads(read_text(path, encoding="utf-8-sig"), object_pairs_hook=_unique_keys(path))
    except json.JSONDecodeError as exc:
        raise HarnessInputError(f"{path}: not a ratings JSON file ({exc}); give the file the sheet's Save button "
                                "wrote, or the sheet's CSV (.csv)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HarnessInputError(f"{path}: not a finetune-harness ratings file (key 'format' is not {FORMAT!r})")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        raise HarnessInputError(f"{path}: key 'format_version' is {data.get('format_version')!r}; this harness reads "
                                f"up to {FORMAT_VERSION}. Upgrade finetune-harness.")
    problems = [f"{path}: key {k!r} must be a non-empty string" for k in ("sheet_id", "rater")
                if not isinstance(data.get(k), str) or not data[k].strip()]
    if not isinstance(data.get("items"), list):
        problems.append(f"{path}: key 'items' must be a list")
    if problems:
        raise HarnessInputError(problems, title=f"ratings file {path} is invalid")
    # an item without its own time takes the file's (saved_at, else its modification time): never the import's,
    # so that importing the same file again changes nothing
    saved = _when(data.get("saved_at")) or datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)
    entries: list[Entry] = []
    first: dict[str, tuple[int, Entry]] = {}  # example id -> (position in items, its entry)
    for i, it in enumerate(data["items"]):
        eid = it.get("example_id") if isinstance(it, dict) else None
        if not isinstance(eid, str):
            raise HarnessInputError(f"{path}: key 'items[{i}]' needs an 'example_id' string")
        scores, comments = it.get("scores") or {}, it.get("comments") or {}
        if not isinstance(scores, dict) or not all(isinstance(s, dict) for s in scores.values()):
            raise HarnessInputError(f"{path}: item {eid}: 'scores' must map each label to {{criterion: value}}")
        if not isinstance(comments, dict):
            raise HarnessInputError(f"{path}: item {eid}: 'comments' must map labels to text")
        preferred = it.get("preferred")
        entry = Entry(eid, f"item {eid}", {str(k): dict(v) for k, v in scores.items()},
                      {str(k): str(v) for k, v in comments.items() if v is not None and str(v).strip()},
                      None if preferred in (None, "") else str(preferred), _when(it.get("rated_at")) or saved)
        if eid in first:  # the same item again: one copy is kept when they agree, else the file contradicts itself
            j, earlier = first[eid]
            if _differences(earlier, entry):
                problems.append(f"{path}: item {eid}: listed twice (items[{j}] and items[{i}]) with different ratings "
                                f"({_differences(earlier, entry)}); keep the one you mean and remove the other")
            continue
        first[eid] = (i, entry)
        entries.append(entry)
    if problems:
        raise HarnessInputError(problems, title=f"ratings file {path} contradicts itself")
    return RatingFile(path, data["sheet_id"].strip(), data["rater"].strip(), entries)


def _unique_keys(path: Path) -> Callable[[list[tuple[str, JSONValue]]], dict[str, JSONValue]]:
    """A json object_pairs_hook that refuses a key written twice in one object (JSON would keep the last silently)."""
    def pairs(items: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {}
        for k, v in items:
            if k in out and out[k] != v:
                raise HarnessInputError(f"{path}: key {k!r} is written twice in one object, with {out[k]!r} and "
                                        f"{v!r}; keep the one you mean")
            out[k] = v
        return out
    return pairs


def _differences(a: Entry, b: Entry) -> str:
    """What two ratings of one item disagree on ('output A accuracy: 3 vs 5; preferred: A vs B'), '' if nothing."""
    diffs = []
    for label in sorted(set(a.scores) | set(b.scores)):
        sa, sb = a.scores.get(label, {}), b.scores.get(label, {})
        diffs += [f"output {label} {c}: {sa.get(c)!r} vs {sb.get(c)!r}" for c in sorted(set(sa) | set(sb))
                  if sa.get(c) != sb.get(c)]
    diffs += [f"output {label} comment: {a.comments.get(label)!r} vs {b.comments.get(label)!r}"
              for label in sorted(set(a.comments) | set(b.comments)) if a.comments.get(label) != b.comments.get(label)]
    if a.preferred != b.preferred:
        diffs.append(f"preferred: {a.preferred!r} vs {b.preferred!r}")
    return "; ".join(diffs)


def _column(header: str) -> str:
    """'accuracy [1-5]' -> 'accuracy'."""
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", header.strip()).strip().lower()


def _uncell(text: str) -> str:
    """Undo the sheet's formula guard: a leading apostrophe before =, +, -, @."""
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r" else text


def _read_csv(path: Path) -> RatingFile:
    try:
        rows = list(csv.reader(io.StringIO(read_text(path, encoding="utf-8-sig"), newline="")))
    except csv.Error as exc:
        raise HarnessInputError(f"{path}: not a readable CSV ({exc}); save it as CSV UTF-8") from None
    if not rows:
        raise HarnessInputError(f"{path}: empty; give the sheet's CSV with the ratings filled in")
    header = [_column(h) for h in rows[0]]
    missing = [c for c in ("sheet_id", "rater", "example_id", "label") if c not in header]
    if missing:
        raise HarnessInputError(f"{path}: line 1: the header lacks {', '.join(missing)}; start from the CSV that "
                                "`harness review export` wrote")
    fixed = {"sheet_id", "rater", "item", "example_id", "label", "prompt", "reference", "output", "preferred", "comment"}
    criteria = [h for h in header if h not in fixed and h]
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)  # a spreadsheet keeps no times
    sheets, raters, problems = set(), set(), []
    entries: dict[str, Entry] = {}
    seen: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}  # (item, label) -> (its first line, the row)
    for n, raw in enumerate(rows[1:], start=2):
        if not any(x.strip() for x in raw):
            continue
        r = {h: _uncell(raw[i].strip()) if i < len(raw) else "" for i, h in enumerate(header)}
        key = (r["example_id"], r["label"])
        if key in seen:  # a row repeated: once is enough when it agrees, else the file contradicts itself
            m, earlier = seen[key]
            diff = [f"{c}: {earlier.get(c, '')!r} vs {r.get(c, '')!r}" for c in [*criteria, "preferred", "comment"]
                    if earlier.get(c, "") != r.get(c, "")]
            if diff:
                problems.append(f"{path}: lines {m} and {n} (item {key[0]}, output {key[1]}): rated twice, "
                                f"differently ({'; '.join(diff)}); keep one row per item and output")
            continue
        seen[key] = (n, r)
        sheets.add(r["sheet_id"])
        if r["rater"]:
            raters.add(r["rater"])
        e = entries.setdefault(r["example_id"], Entry(r["example_id"], f"line {n} (item {r['example_id']})",
                                                      rated_at=when))
        label = r["label"]
        values: dict[str, JSONValue] = {c: r[c] for c in criteria if r.get(c)}
        if values:
            e.scores[label] = values
        if r.get("comment"):
            e.comments[label] = r["comment"]
        mark = (r.get("preferred") or "").lower()
        if mark in _MARK:
            if e.preferred not in (None, TIE):
                problems.append(f"{path}: line {n} (item {r['example_id']}): more than one output marked preferred "
                                f"({e.preferred} and {label}); mark one, or write 'tie'")
            e.preferred = label
        elif mark in ("tie", TIE, "no preference"):
            e.preferred = e.preferred or TIE
        elif mark:
            problems.append(f"{path}: line {n} (item {r['example_id']}): preferred {mark!r}: write x on the preferred "
                            "output's row, 'tie' for no preference, or leave it empty")
    if len(sheets) != 1:
        problems.append(f"{path}: column sheet_id holds {len(sheets)} different sheet ids; one file is one sheet")
    if len(raters) != 1:
        problems.append(f"{path}: column rater holds {sorted(raters) or 'no name'}; fill in one rater's name on "
                        "every row")
    if problems:
        raise HarnessInputError(problems, title=f"ratings file {path} is invalid")
    return RatingFile(path, sheets.pop(), raters.pop(), list(entries.values()))


def parse_value(c: Criterion, raw: object) -> float | None:
    """A rater's value as stored (a scale point, or 1 for yes and 0 for no); None when it is not allowed."""
    if c.yes_no:
        text = str(raw).strip().lower()
        return 1.0 if text in ("yes", "y", "true", "1") else 0.0 if text in ("no", "n", "false", "0") else None
    if isinstance(raw, bool):
        return None
    try:
        x = float(str(raw).strip())
    except ValueError:
        return None
    return x if math.isfinite(x) and x.is_integer() and int(x) in c.values else None


def unblind(file: RatingFile, items: dict[str, dict[str, str]], rubric: list[Criterion]) -> list[Rating]:
    """The file's ratings as `ratings` rows (label -> variant through the stored mapping `items`:
    {example_id: {label: variant_id}}); every unknown item, label or criterion and every out-of-range value is
    reported together, each with the file and the item."""
    by_name = {c.name: c for c in rubric}
    rows: list[Rating] = []
    problems: list[str] = []

    def row(e: Entry, label: str, criterion: str, value: float | None) -> Rating:
        return {"sheet_id": file.sheet_id, "rater": file.rater, "example_id": e.example_id,
                "variant_id": items[e.example_id][label], "criterion": criterion, "value": value,
                "comment": e.comments.get(label), "rated_at": e.rated_at, "label": label}

    for e in file.entries:
        at = f"{file.path}: {e.where}"
        labels = items.get(e.example_id)
        if labels is None:
            problems.append(f"{at}: no item {e.example_id!r} on sheet {file.sheet_id}")
            continue
        shown = set(e.scores) | set(e.comments) | ({e.preferred} if e.preferred not in (None, TIE) else set())
        for label in sorted(str(x) for x in shown):
            if label not in labels:
                problems.append(f"{at}: no output labelled {label!r} (this item has {', '.join(sorted(labels))})")
        for label, scores in e.scores.items():
            for name, raw in scores.items():
                c = by_name.get(name)
                value = None if c is None else parse_value(c, raw)
                if c is None:
                    problems.append(f"{at}: output {label}: unknown criterion {name!r} (the sheet's rubric: "
                                    f"{', '.join(by_name)})")
                elif value is None:
                    allowed = "yes or no" if c.yes_no else f"a whole number from {c.values[0]} to {c.values[-1]}"
                    problems.append(f"{at}: output {label}: {name} = {raw!r} is out of range ({allowed})")
                elif label in labels:
                    rows.append(row(e, label, name, value))
        for label in set(e.comments) - set(e.scores):  # a comment on an output with no score is kept too
            if label in labels:
                rows.append(row(e, label, COMMENT, None))
        if e.preferred is not None and (e.preferred == TIE or e.preferred in labels):
            rows += [row(e, label, PREFERRED, 1.0 if label == e.preferred else 0.0) for label in sorted(labels)]
    if problems:
        raise HarnessInputError(problems, title=f"ratings file {file.path} does not match sheet {file.sheet_id}")
    return rows
