"""`harness runs`: list the runs in the store."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    r = sub.add_parser("runs", help="list the runs in the store")
    r.add_argument("--db", default="results.duckdb", help=DB_HELP)
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.commands import show_runs

    return show_runs(args.db)
