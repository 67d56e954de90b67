"""`harness report`: the HTML comparison report, built from the store alone."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    rep = sub.add_parser("report", help="build the HTML comparison report from the store")
    rep.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    rep.add_argument("--compare", nargs="+", default=[], metavar="RUN_ID", help="other runs to compare against")
    rep.add_argument("-o", "--output", default=None, help="output HTML (default reports/<name>-<run>.html)")
    rep.add_argument("--db", default="results.duckdb", help=DB_HELP)
    rep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.build import build_report

    path = build_report(args.db, args.run, compare=args.compare, output=args.output)
    print(f"report written to {path}")
    return 0
