"""`harness export mlflow|wandb`: send a stored run to an experiment tracker (docs/tracking.md)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from harness.cli.common import DB_HELP

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    xp = sub.add_parser("export", help="send a stored run to MLflow or W&B (again: adds nothing; docs/tracking.md)",
                        description="Send a run (parent run, one child per variant with parameters, loss curves, "
                        "scores with CIs, findings, report and gate outcome) to a tracker, with the settings of the "
                        "spec's tracking: block as stored with the run (or --spec).")
    xp.add_argument("tracker", choices=["mlflow", "wandb"])
    xp.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    xp.add_argument("--baseline", default=None, help="also send the gate's outcome against this baseline file "
                    "(default: the spec's gate.baseline, where that file exists)")
    xp.add_argument("--spec", default=None, help="take the tracking: block from this spec instead of the stored one")
    xp.add_argument("--db", default="results.duckdb", help=DB_HELP)
    xp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.tracking.export import export_run

    delivery = export_run(args.db, args.run, args.tracker, spec=args.spec, baseline=args.baseline)
    print(f"exported: {delivery.line()}")
    return 0
