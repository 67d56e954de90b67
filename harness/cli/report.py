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
    rep.add_argument("--examples", default=None, metavar="N|all",
                     help="example rows the explorer embeds: a sample of at most N (default 10000) chosen to be "
                          "useful, or 'all' (every row: the file grows with the sweep)")
    rep.add_argument("--db", default="results.duckdb", help=DB_HELP)
    rep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from harness.errors import HarnessInputError
    from harness.report.build import build_report
    from harness.report.sample import parse_limit

    try:
        examples = parse_limit(args.examples)
    except ValueError as exc:
        raise HarnessInputError(str(exc)) from None
    path = build_report(args.db, args.run, compare=args.compare, output=args.output, examples=examples)
    if examples is None:
        size = path.stat().st_size / 1e6
        print(f"warning: --examples all embedded every example row: {path} is {size:.1f} MB; a browser and a CI "
              "artifact store handle tens of MB at most (the default sample keeps the file small)", file=sys.stderr)
    print(f"report written to {path}")
    return 0
