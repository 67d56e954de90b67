"""`harness review export|import`: blind human rating sheets out, filled ones back in."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    rv = sub.add_parser("review", help="blind human rating sheets: export one, import the filled ones")
    rvsub = rv.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    ex = rvsub.add_parser("export", help="write a blind rating sheet (HTML and CSV) for a run's outputs",
                          description="Sample test items (seeded), show each item's prompt, reference and the chosen "
                          "variants' outputs in a shuffled order under labels A, B, C; the label -> variant mapping "
                          "is kept in the store, never in the files. Rubric: the spec's review.rubric (docs/review.md).")
    ex.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    ex.add_argument("--variants", nargs="+", metavar="ID", help="variants to rate (ids, id prefixes, names; "
                    "default: base, the recommended variant, those tied with it and the best prompt variant)")
    ex.add_argument("--no-base", dest="base", action="store_false", help="leave base out (it is included by default)")
    ex.add_argument("--sample", type=int, default=None, metavar="N", help="items per sheet (default review.sample, 30)")
    ex.add_argument("--seed", type=int, default=None, help="seed of the sample and the label order (default review.seed)")
    ex.add_argument("--stratify", choices=["none", "disagreement"], default="none",
                    help="disagreement: the items on which the outputs differ most (default: a uniform sample)")
    ex.add_argument("--calibrate", dest="stratify", action="store_const", const="calibrate",
                    help="the items where the run's judge suite and the raters most likely disagree (rated items: "
                    "the judge's distance from the raters; unrated: the judge's scores nearest mid-scale), to "
                    "check the judge where it matters (docs/judge.md)")
    ex.add_argument("--raters", nargs="+", default=[], metavar="NAME", help="one copy of the sheet per rater, "
                    "with the name filled in")
    ex.add_argument("--reference", action=argparse.BooleanOptionalAction, default=None,
                    help="show the reference answer (default review.reference, true)")
    ex.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the sheet's files")
    ex.add_argument("--db", default="results.duckdb", help=DB_HELP)
    im = rvsub.add_parser("import", help="store filled sheets (the JSON a sheet saved, or its filled CSV)",
                          description="Check each file against its stored sheet (exit 2 naming the file and item on "
                          "an unknown sheet, item or label, or a value off the scale; then nothing is stored), "
                          "un-blind it and store one row per rating in the table ratings. Importing a file again "
                          "changes nothing; a newer file of the same rater replaces the items it rates.")
    im.add_argument("files", nargs="+", metavar="FILE")
    im.add_argument("--db", default="results.duckdb", help=DB_HELP)
    ex.set_defaults(func=run_export)
    im.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    from harness.commands import review_export

    return review_export(args.db, args.run, variants=args.variants, base=args.base, sample=args.sample,
                         seed=args.seed, stratify=args.stratify, raters=args.raters, reference=args.reference,
                         output=args.output)


def run_import(args: argparse.Namespace) -> int:
    from harness.commands import review_import

    return review_import(args.db, args.files)
