"""`harness selftest`: plant defects into a run's stored outcomes and count how often the verdicts find them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP
from harness.errors import HarnessInputError

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    se = sub.add_parser("selftest", help="prove the verdicts work at this run's size: plant defects, count how "
                        "often they are found and how often noise alarms (exit 0 ok, 1 not, or nothing to check)",
                        description="Plant defects of known sizes (a format-compliance drop, a fabrication rise, a "
                        "general-accuracy drop, a rising validation curve) into copies of a variant's stored "
                        "per-example outcomes, make null copies with noise alone, run the real findings code on each "
                        "many times and print power and false alarms beside the minimum detectable effects. No model "
                        "is called unless --train is given.")
    se.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    se.add_argument("--variant", default=None, help="the variant whose outcomes are copied (default: the recommended)")
    se.add_argument("--repetitions", type=int, default=40, help="repetitions per defect and size (default 40)")
    se.add_argument("--train", action="store_true", help="also plant real defects by training (a destructive "
                    "learning rate; many epochs on a small subset) and check the findings they raise")
    se.add_argument("--db", default="results.duckdb", help=DB_HELP)
    se.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.commands import selftest_command

    if args.repetitions < 5:
        raise HarnessInputError(f"--repetitions {args.repetitions}: use at least 5 (default 40)")
    return selftest_command(args.db, args.run, args.variant, args.repetitions, args.train)
