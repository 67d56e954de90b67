"""`harness gate`: pass or fail a variant against a baseline under the spec's rules (exit 0, 1, 2)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    g = sub.add_parser("gate", help="pass/fail a variant against a baseline (exit 0 pass, 1 fail, 2 bad input)")
    g.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    g.add_argument("--baseline", required=True, help="baselines/NAME.json, written by `harness baseline save`")
    g.add_argument("--variant", default=None, help="the candidate variant (id or name); default: the recommended one")
    g.add_argument("--junit", default=None, metavar="PATH", help="also write JUnit XML, one testcase per rule")
    g.add_argument("--summary", default=None, metavar="PATH", help="also write a markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    g.add_argument("--spec", default=None, help="take gate rules from this spec instead of the run's stored spec")
    g.add_argument("--db", default="results.duckdb", help=DB_HELP)
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.gate.run import run_gate

    return run_gate(args.db, args.run, baseline=args.baseline, variant=args.variant, junit=args.junit,
                    summary=args.summary, spec=args.spec)
