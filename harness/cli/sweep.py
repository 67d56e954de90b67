"""`harness sweep SPEC.yaml`: train and score every variant of a spec (resumes by default)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    s = sub.add_parser("sweep", help="train and score every variant of a spec (resumes by default)",
                       description="Train every variant of SPEC, score it and the base model on the spec's suites, "
                       "store everything in --db. Variants already stored as finished are reused, not redone.")
    s.add_argument("spec", metavar="SPEC.yaml")
    s.add_argument("--db", default="results.duckdb", help=DB_HELP)
    s.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: one variant after another here; ray: each variant a Ray task (RAY_ADDRESS)")
    s.add_argument("--only", nargs="+", metavar="VARIANT_ID", help="run only these variants (ids, id prefixes or names)")
    s.add_argument("--dry-run", action="store_true", help="print the plan and estimated training tokens; train nothing")
    s.add_argument("--strict", action="store_true",
                   help="data-quality warnings (near-duplicates between train and test or validation, answers cut "
                   "by max_seq_length, inconsistent answer format, answer-length outliers, fewer than 100 training "
                   "examples, personal data) become errors: exit 2, nothing trained, every problem listed")
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.cli.common import quiet_libraries
    from harness.commands import sweep_exit_code
    from harness.sweep.runner import run_sweep

    quiet_libraries()
    run_id = run_sweep(args.spec, args.db, executor=args.executor, only=args.only, dry_run=args.dry_run,
                       strict=args.strict)
    return sweep_exit_code(args.db, run_id)
