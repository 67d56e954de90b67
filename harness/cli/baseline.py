"""`harness baseline save`: a stored variant's results as a baseline file for the gate."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    b = sub.add_parser("baseline", help="save a variant's results as a baseline for the gate")
    bsub = b.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    bs = bsub.add_parser("save", help="write baselines/NAME.json from a stored variant")
    bs.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    bs.add_argument("--variant", required=True, help="variant id or name")
    bs.add_argument("-o", "--output", required=True, help="baselines/NAME.json")
    bs.add_argument("--db", default="results.duckdb", help=DB_HELP)
    bs.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.gate.baseline import save_baseline

    path = save_baseline(args.db, args.run, variant=args.variant, output=args.output)
    print(f"baseline written to {path}")
    return 0
