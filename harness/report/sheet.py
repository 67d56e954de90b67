"""A blind rating sheet as files: one self-contained HTML page (the report's safety: autoescaped text, data for the
page's script as escaped JSON, a CSP that allows only the script's hash, no network) and a CSV for spreadsheets.

Neither file holds a variant id, name or model: only the items, the outputs under labels A, B, C, the rubric and
the sheet id, which `harness review import` uses to find the mapping in the store.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from markupsafe import Markup

from harness import __version__
from harness.errors import HarnessInputError
from harness.output_file import write_output
from harness.report.build import content_security_policy, environment, script_json, static_text
from harness.report.sheet_plan import Sheet
from harness.scores import JSONDict
from harness.spec.review import Criterion

RATINGS_FORMAT = "finetune-harness-ratings"  # the JSON file the sheet saves
RATINGS_FORMAT_VERSION = 1
CSV_FIXED = ("sheet_id", "rater", "item", "example_id", "label", "prompt", "reference", "output")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_header(c: Criterion) -> str:
    """The CSV column of a criterion: its name and scale, e.g. 'accuracy [1-5]' (import accepts the bare name too)."""
    return f"{c.name} [{c.scale}]"


def _criterion_view(c: Criterion) -> JSONDict:
    values = ["yes", "no"] if c.yes_no else [str(v) for v in c.values]
    return {"name": c.name, "scale": c.scale, "help": c.help, "values": values, "yes_no": c.yes_no}


def render_html(sheet: Sheet, rater: str | None = None) -> str:
    """The sheet page; `rater` pre-fills the rater's name (they may change it)."""
    script = static_text("sheet.js")
    config = {"format": RATINGS_FORMAT, "format_version": RATINGS_FORMAT_VERSION, "sheet_id": sheet.sheet_id,
              "rater": rater or "", "criteria": [_criterion_view(c) for c in sheet.rubric],
              "labels": {it.example_id: [o.label for o in it.outputs] for it in sheet.items}}
    items = [{"position": it.position, "example_id": it.example_id, "prompt": it.prompt,
              "reference": it.reference if sheet.reference else None,
              "outputs": [{"label": o.label, "text": o.text} for o in it.outputs]} for it in sheet.items]
    return environment().get_template("sheet.html.j2").render(
        sheet_id=sheet.sheet_id, name=sheet.run_name, rater=rater or "", items=items,
        criteria=[_criterion_view(c) for c in sheet.rubric], n_outputs=len(sheet.variant_ids),
        version=__version__, csp=content_security_policy([script]), css=Markup(static_text("sheet.css")),
        script=Markup(script), data_json=script_json(config))


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading =, +, -, @ (a formula) gets a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA) else text


def render_csv(sheet: Sheet, rater: str | None = None) -> str:
    """The sheet as CSV: one row per item and output; the rater fills the criteria columns, marks the preferred
    output with x (or 'tie' on any row of the item) and may comment."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([c for c in CSV_FIXED if c != "reference" or sheet.reference]
               + [csv_header(c) for c in sheet.rubric] + ["preferred", "comment"])
    for it in sheet.items:
        for o in it.outputs:
            fixed = [sheet.sheet_id, rater or "", str(it.position), it.example_id, o.label, it.prompt,
                     it.reference, o.text]
            if not sheet.reference:
                del fixed[CSV_FIXED.index("reference")]
            w.writerow([_cell(x) for x in fixed] + [""] * len(sheet.rubric) + ["", ""])
    return out.getvalue()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "rater"


def write_sheet(sheet: Sheet, folder: str | Path) -> list[Path]:
    """Write the HTML and CSV files (one pair per rater when raters are named) into `folder`; returns the paths."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HarnessInputError(f"-o {folder}: is a file; give a folder for the sheet's files")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{_safe(sheet.run_name or 'sheet')}-{sheet.sheet_id}"
    paths = []
    raters: list[str | None] = list(sheet.raters) or [None]
    for rater in raters:
        base = folder / (stem + (f"-{_safe(rater)}" if rater else ""))
        html, table = base.with_suffix(".html"), base.with_suffix(".csv")
        write_output(html, render_html(sheet, rater))
        write_output(table, render_csv(sheet, rater), encoding="utf-8-sig")  # the BOM: Excel reads it as UTF-8
        paths += [html, table]
    return paths
