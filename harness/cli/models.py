"""`harness models`: the models the harness can resolve, embedded ones first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    sub.add_parser("models", help="list the models the harness can resolve, embedded ones first").set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.commands import show_models

    return show_models()
