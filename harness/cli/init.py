"""`harness init`: write a starter experiment to edit, runnable as written on the embedded model."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    it = sub.add_parser("init", help="write a starter experiment to edit: a commented spec.yaml, a small data set, "
                        "a README", description="Write spec.yaml (every section, commented), data/train.jsonl, "
                        "data/test.jsonl and README.md into DIR; `harness sweep DIR/spec.yaml` runs it as written on "
                        "the embedded model. Existing files are never overwritten without --force (exit 2).")
    it.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where to write (default: here)")
    it.add_argument("--force", action="store_true", help="replace files that already exist")
    it.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.spec.starter import next_steps, write_starter

    write_starter(Path(args.dir), force=args.force)
    print("\n".join(next_steps(Path(args.dir))))
    return 0
