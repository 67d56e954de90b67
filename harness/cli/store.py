"""`harness store recover`: look after a results store after a crash or a damaged WAL."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    st = sub.add_parser("store", help="look after a results store")
    stsub = st.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    rc = stsub.add_parser("recover", help="after a crash or a damaged WAL: keep every complete transaction, "
                          "set aside the rest (a copy of the WAL is kept)")
    rc.add_argument("--db", default="results.duckdb", help=DB_HELP)
    rc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.store.recover import recover

    for line in recover(args.db):
        print(line)
    return 0
