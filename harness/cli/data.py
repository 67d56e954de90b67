"""`harness data check`: validate data and look for leakage and data-quality problems before training."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.cli.common import Subparsers


def register(sub: Subparsers) -> None:
    d = sub.add_parser("data", help="check training or test data (chat JSONL, prompt/completion, Alpaca, ShareGPT; "
                       "JSONL, JSON, Parquet, CSV, a datasets folder, hf:owner/name)")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dc = dsub.add_parser("check", help="validate a file; counts, token lengths, duplicates, train/test leakage and "
                         "data-quality warnings (exit 1 on leakage, or on any warning with --strict)",
                         description="Check FILE as training data: validation, counts, token lengths, answers cut by "
                         "--max-seq-length, special tokens, duplicates, fewer than 100 examples, answer format "
                         "consistency, answer-length outliers, personal data; with --against, exact and near-duplicate "
                         "leakage into those files (exit 1). FILE (and OTHER) is a JSONL, JSON, Parquet or CSV file, a "
                         "folder written by datasets' save_to_disk (FOLDER:split picks a split; else FILE's train "
                         "split and OTHER's test split), or hf:owner/name[:split]; its format is detected or named "
                         "with --format (docs/data.md).")
    dc.add_argument("file", metavar="FILE")
    dc.add_argument("--against", nargs="+", default=[], metavar="OTHER", help="data to check for overlap")
    dc.add_argument("--format", default="auto", choices=["auto", "chat", "prompt-completion", "alpaca", "sharegpt"],
                    help="the data's format, as the spec's data.format (default auto: detected from the fields)")
    dc.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                    help="read the format's FIELD from COLUMN, as the spec's data.columns (repeat for each field)")
    dc.add_argument("--model", default=None, help="tokenizer for token counts (default smollm2-135m-instruct; 'none' to skip)")
    dc.add_argument("--max-seq-length", type=int, default=256, metavar="N",
                    help="the spec's train.max_seq_length: report examples it would cut (default 256)")
    dc.add_argument("--near-dup-threshold", type=float, default=0.8, metavar="J",
                    help="Jaccard similarity of 3-word shingles at which an --against example counts as a "
                    "near-duplicate of one in FILE (default 0.8, as the spec's data.near_duplicate_threshold)")
    dc.add_argument("--strict", action="store_true", help="data-quality warnings fail the check too (exit 1)")
    dc.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.commands import data_check

    return data_check(args.file, args.against, args.model, args.max_seq_length,
                      threshold=args.near_dup_threshold, strict=args.strict, fmt=args.format, column=args.column)
