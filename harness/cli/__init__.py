"""The `harness` command line: one module per command (harness/cli/<command>.py), each registering its parser with
`set_defaults(func=...)`; adding a command is a module and one entry in COMMANDS. The modules parse arguments and call
the stage functions.

Exit codes: 0 ok (gate passed); 1 a check failed (gate, data check leakage or --strict, selftest, also when it has
nothing to check); 2 bad input (spec, data, arguments, a corrupt, locked or unwritable store, a full disk); 3 a sweep
finished but some variant failed; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM); anything else is a crash and a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.cli import baseline, data, export, gate, init, models, report, review, runs, selftest, store, sweep
from harness.cli.common import DB_HELP
from harness.errors import HarnessInputError, Terminated

__all__ = ["DB_HELP", "COMMANDS", "main"]

# The commands in the order `harness --help` lists them.
COMMANDS = (init, sweep, runs, report, gate, baseline, data, store, selftest, review, export, models)
EXIT_CODES = ("Exit codes: 0 ok (gate passed); 1 a check failed (gate, data check leakage or --strict, selftest, also "
              "when it has nothing to check); 2 bad input (spec, data, "
              "arguments, a corrupt, locked or unwritable store, a full disk); 3 a sweep finished but some variant "
              "failed; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness",
        description="Train every variant of a fine-tuning sweep, score it against the untouched base model, "
        "store everything in DuckDB, and turn it into an HTML report and a CI release gate.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--version", action="version", version=f"finetune-harness {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log library messages too")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("harness").setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except HarnessInputError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"{what}: finished variants are stored and the run is marked interrupted; run the same command again "
              "to resume", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a store or file error (corrupt, locked, full disk, read-only) is bad input, not a crash
        translated = _as_input_error(exc, getattr(args, "db", None))
        if translated is None:
            raise
        print(f"error: {translated.render()}", file=sys.stderr)
        return 2


def _as_input_error(exc: Exception, db: str | None) -> HarnessInputError | None:
    from pathlib import Path

    from harness.store.guard import as_input_error

    return as_input_error(exc, Path(db) if db else None)


if __name__ == "__main__":
    raise SystemExit(main())
