"""What the command modules share: the --db help, the type of the subcommand registry, quieting libraries."""

from __future__ import annotations

import argparse
import logging

DB_HELP = "the DuckDB results file (default: results.duckdb in the working directory)"
Subparsers = argparse._SubParsersAction  # noqa: SLF001 - argparse's own type for add_subparsers()' result


def quiet_libraries() -> None:
    """Library chatter off for long work (tokenizer parallelism, telemetry, advisory warnings)."""
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)
