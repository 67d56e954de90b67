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
    rc = stsub.add_parser("recover", help="read every table of the store; after a crash or a damaged WAL keep "
                          "every complete transaction (the store and WAL as they were are kept as .bak files)",
                          description="Read every block of the store (every row of every table) and say what it "
                          "found. A torn or corrupt write-ahead log is repaired on copies, which replace the store "
                          "only once they read in full (the originals are kept, and named). A store whose own file "
                          "is damaged is exit 2 with what still reads; --salvage copies that into a new store.")
    rc.add_argument("--db", default="results.duckdb", help=DB_HELP)
    rc.add_argument("--salvage", default=None, metavar="NEW.duckdb",
                    help="copy every row that still reads into this new store (must not exist); the damaged store "
                    "is left as it is")
    rc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.store.recover import recover

    for line in recover(args.db, args.salvage):
        print(line)
    return 0
