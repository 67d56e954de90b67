"""The `harness` command line: parses arguments and calls the stage functions.

Exit codes: 0 ok (gate passed); 1 a check failed (gate, data check leakage or --strict, selftest); 2 bad input (spec, data,
arguments, a corrupt, locked or unwritable store, a full disk); 3 a sweep finished but some variant failed;
130 interrupted (Ctrl-C); 143 terminated (SIGTERM); anything else is a crash and a bug.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import HarnessInputError, Terminated

DB_HELP = "the DuckDB results file (default: results.duckdb in the working directory)"
EXIT_CODES = ("Exit codes: 0 ok (gate passed); 1 a check failed (gate, data check leakage or --strict, selftest); 2 bad input (spec, data, "
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

    r = sub.add_parser("runs", help="list the runs in the store")
    r.add_argument("--db", default="results.duckdb", help=DB_HELP)

    rep = sub.add_parser("report", help="build the HTML comparison report from the store")
    rep.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    rep.add_argument("--compare", nargs="+", default=[], metavar="RUN_ID", help="other runs to compare against")
    rep.add_argument("-o", "--output", default=None, help="output HTML (default reports/<name>-<run>.html)")
    rep.add_argument("--db", default="results.duckdb", help=DB_HELP)

    g = sub.add_parser("gate", help="pass/fail a variant against a baseline (exit 0 pass, 1 fail, 2 bad input)")
    g.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    g.add_argument("--baseline", required=True, help="baselines/NAME.json, written by `harness baseline save`")
    g.add_argument("--variant", default=None, help="the candidate variant (id or name); default: the recommended one")
    g.add_argument("--junit", default=None, metavar="PATH", help="also write JUnit XML, one testcase per rule")
    g.add_argument("--summary", default=None, metavar="PATH", help="also write a markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    g.add_argument("--spec", default=None, help="take gate rules from this spec instead of the run's stored spec")
    g.add_argument("--db", default="results.duckdb", help=DB_HELP)

    b = sub.add_parser("baseline", help="save a variant's results as a baseline for the gate")
    bsub = b.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    bs = bsub.add_parser("save", help="write baselines/NAME.json from a stored variant")
    bs.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    bs.add_argument("--variant", required=True, help="variant id or name")
    bs.add_argument("-o", "--output", required=True, help="baselines/NAME.json")
    bs.add_argument("--db", default="results.duckdb", help=DB_HELP)

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

    st = sub.add_parser("store", help="look after a results store")
    stsub = st.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    rc = stsub.add_parser("recover", help="after a crash or a damaged WAL: keep every complete transaction, "
                          "set aside the rest (a copy of the WAL is kept)")
    rc.add_argument("--db", default="results.duckdb", help=DB_HELP)

    se = sub.add_parser("selftest", help="prove the verdicts work at this run's size: plant defects, count how "
                        "often they are found and how often noise alarms (exit 0 ok, 1 not)",
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

    rv = sub.add_parser("review", help="blind human rating sheets: export one, import the filled ones")
    rvsub = rv.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    ex = rvsub.add_parser("export", help="write a blind rating sheet (HTML and CSV) for a run's outputs",
                          description="Sample test items (seeded), show each item's prompt, reference and the chosen "
                          "variants' outputs in a shuffled order under labels A, B, C; the label -> variant mapping "
                          "is kept in the store, never in the files. Rubric: the spec's review.rubric (docs/review.md).")
    ex.add_argument("run", nargs="?", default="latest", metavar="RUN_ID|latest")
    ex.add_argument("--variants", nargs="+", metavar="ID", help="variants to rate (ids, id prefixes, names; "
                    "default: base, the recommended variant, those tied with it and the best prompt variant)")
    ex.add_argument("--no-base", dest="base", action="store_false", help="leave base out (it is included by default)")
    ex.add_argument("--sample", type=int, default=None, metavar="N", help="items per sheet (default review.sample, 30)")
    ex.add_argument("--seed", type=int, default=None, help="seed of the sample and the label order (default review.seed)")
    ex.add_argument("--stratify", choices=["none", "disagreement"], default="none",
                    help="disagreement: the items on which the outputs differ most (default: a uniform sample)")
    ex.add_argument("--calibrate", dest="stratify", action="store_const", const="calibrate",
                    help="the items where the run's judge suite and the raters most likely disagree (rated items: "
                    "the judge's distance from the raters; unrated: the judge's scores nearest mid-scale), to "
                    "check the judge where it matters (docs/judge.md)")
    ex.add_argument("--raters", nargs="+", default=[], metavar="NAME", help="one copy of the sheet per rater, "
                    "with the name filled in")
    ex.add_argument("--reference", action=argparse.BooleanOptionalAction, default=None,
                    help="show the reference answer (default review.reference, true)")
    ex.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the sheet's files")
    ex.add_argument("--db", default="results.duckdb", help=DB_HELP)
    im = rvsub.add_parser("import", help="store filled sheets (the JSON a sheet saved, or its filled CSV)",
                          description="Check each file against its stored sheet (exit 2 naming the file and item on "
                          "an unknown sheet, item or label, or a value off the scale; then nothing is stored), "
                          "un-blind it and store one row per rating in the table ratings. Importing a file again "
                          "changes nothing; a newer file of the same rater replaces the items it rates.")
    im.add_argument("files", nargs="+", metavar="FILE")
    im.add_argument("--db", default="results.duckdb", help=DB_HELP)

    sub.add_parser("models", help="list the models the harness can resolve, embedded ones first")

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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("harness").setLevel(logging.INFO)
    try:
        return _dispatch(args)
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


def _dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "sweep":
        _quiet_libraries()
        from harness.commands import sweep_exit_code
        from harness.sweep.runner import run_sweep

        run_id = run_sweep(args.spec, args.db, executor=args.executor, only=args.only, dry_run=args.dry_run,
                           strict=args.strict)
        return sweep_exit_code(args.db, run_id)
    if cmd == "runs":
        from harness.commands import show_runs

        return show_runs(args.db)
    if cmd == "models":
        from harness.commands import show_models

        return show_models()
    if cmd == "data":
        from harness.commands import data_check

        return data_check(args.file, args.against, args.model, args.max_seq_length,
                          threshold=args.near_dup_threshold, strict=args.strict, fmt=args.format, column=args.column)
    if cmd == "store":
        from harness.store.recover import recover

        for line in recover(args.db):
            print(line)
        return 0
    if cmd == "selftest":
        from harness.commands import selftest_command

        if args.repetitions < 5:
            raise HarnessInputError(f"--repetitions {args.repetitions}: use at least 5 (default 40)")
        return selftest_command(args.db, args.run, args.variant, args.repetitions, args.train)
    if cmd == "review":
        from harness.commands import review_export, review_import

        if args.review_command == "import":
            return review_import(args.db, args.files)
        return review_export(args.db, args.run, variants=args.variants, base=args.base, sample=args.sample,
                             seed=args.seed, stratify=args.stratify, raters=args.raters, reference=args.reference,
                             output=args.output)
    if cmd == "report":
        from harness.report.build import build_report

        path = build_report(args.db, args.run, compare=args.compare, output=args.output)
        print(f"report written to {path}")
        return 0
    if cmd == "gate":
        from harness.gate.run import run_gate

        return run_gate(args.db, args.run, baseline=args.baseline, variant=args.variant, junit=args.junit,
                        summary=args.summary, spec=args.spec)
    if cmd == "baseline":
        from harness.gate.baseline import save_baseline

        path = save_baseline(args.db, args.run, variant=args.variant, output=args.output)
        print(f"baseline written to {path}")
        return 0
    if cmd == "export":
        from harness.tracking.export import export_run

        delivery = export_run(args.db, args.run, args.tracker, spec=args.spec, baseline=args.baseline)
        print(f"exported: {delivery.line()}")
        return 0
    raise HarnessInputError(f"unknown command {cmd!r}")


def _quiet_libraries() -> None:
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    logging.getLogger("transformers").setLevel(logging.ERROR)


if __name__ == "__main__":
    raise SystemExit(main())
