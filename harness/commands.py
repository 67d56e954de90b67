"""Small commands: `runs`, `models`, `data check`, `selftest`, `review export` and `review import`. None of them
imports torch."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.errors import HarnessInputError

if TYPE_CHECKING:
    import pandas as pd

    from harness.data.sources import DataLocation
    from harness.spec.review import Criterion
    from harness.store.db import Store
    from harness.store.reads import RunData


def show_runs(db: str) -> int:
    from harness.store.db import Store

    with Store(db, read_only=True) as store:
        df = store.runs()
        running = store.runs_with_status("running")
    df["status"] = [_live_status(r.status, r.run_id, running)
                    + "".join(f" ({n} {what})" for n, what in ((r.failed, "failed"), (r.incomplete, "incomplete")) if n)
                    for r in df.itertuples()]  # an incomplete variant: some suites failed; a rerun scores them
    df = df.drop(columns=["failed", "incomplete"])
    if df.empty:
        print(f"{db}: no runs yet")
        return 0
    table = Table(title=f"runs in {db}")
    for col in ("run_id", "name", "status", "variants", "reused", "started_at", "finished_at"):
        table.add_column(col)
    for _, r in df.iterrows():
        table.add_row(*["" if v is None or str(v) in ("NaT", "nan") else str(v)[:19] if "_at" in c else str(v)
                        for c, v in r.items()])
    Console(width=140).print(table)
    return 0


def _live_status(status: str, run_id: str, running: pd.DataFrame) -> str:
    """A 'running' run whose process is gone shows as interrupted (stale); one on another host says where."""
    if status != "running" or "pid" not in running.columns:
        return str(status)
    from harness.store.lock import liveness

    r = running[running["run_id"] == run_id].iloc[0]
    import pandas as pd

    pid = None if pd.isna(r["pid"]) else int(r["pid"])
    state = liveness(pid, r["host"], r["started_at"])
    if state == "gone" or pid is None:
        return "interrupted (stale: its process is gone)" if pid else "interrupted (stale)"
    return "running" if state == "alive" else f"running (on {r['host']})"


def show_models() -> int:
    from harness.models.resolve import available_models

    table = Table(title="models")
    for col in ("name", "kind", "status", "description"):
        table.add_column(col, overflow="fold")
    for m in available_models():
        table.add_row(m["name"], m["kind"], m["status"], m["description"])
    Console(width=160).print(table)
    return 0


def _tokenizer(model: str | None):  # type: ignore[no-untyped-def]
    if model == "none":
        return None
    from harness.models.resolve import SMOLLM2, resolve_model

    ref = resolve_model(model or SMOLLM2)
    import sys

    for notice in ref.notices:
        print(f"warning: {notice}", file=sys.stderr)
    if ref.is_remote:
        return None
    from transformers import AutoTokenizer

    from harness.models.resolve import ensure_smollm2_tokenizer

    folder = ensure_smollm2_tokenizer() if ref.kind in ("embedded", "tiny") else ref.location
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise HarnessInputError(f"--model {model}: its tokenizer needs custom code, and the harness never runs code "
                                "shipped with a model (trust_remote_code is never set).") from None


def _data_sources(file: str, against: list[str], fmt: str, column: list[str]
                  ) -> tuple[list[DataLocation], dict[str, str]]:
    """FILE and the --against sources as data locations, and --column FIELD=COLUMN as a mapping; bad ones raise."""
    from harness.data.sources import parse_location
    from harness.spec.formats import column_problems

    problems: list[str] = []
    locs = []
    for value in [file, *against]:
        try:
            loc = parse_location(value)
        except HarnessInputError as exc:
            problems += exc.problems
            continue
        if loc.path is not None and not loc.path.exists():
            problems.append(f"{value}: no such file")
        locs.append(loc)
    columns = dict(c.split("=", 1) for c in column if "=" in c)
    problems += [f"--column {c!r}: write FIELD=COLUMN, e.g. instruction=question" for c in column if "=" not in c]
    problems += [f"--column: {p}" for p in column_problems(columns, fmt)]
    if problems:
        raise HarnessInputError(problems)
    return locs, columns


def data_check(file: str, against: list[str], model: str | None, max_seq_length: int | None = 256, *,
               threshold: float = 0.8, strict: bool = False, fmt: str = "auto", column: list[str] | None = None
               ) -> int:
    """`harness data check`: 0 clean; 1 a check failed (exact or near-duplicate leakage into an --against file;
    with `strict`, any data-quality warning); bad input raises (exit 2)."""
    import sys

    from harness.data.quality import check_files, count
    from harness.data.similarity import RUN_WORDS

    locs, columns = _data_sources(file, against, fmt, column or [])
    if not 0.0 < threshold <= 1.0:
        raise HarnessInputError(f"--near-dup-threshold {threshold:g}: a Jaccard similarity in (0, 1], e.g. 0.8")
    report = check_files(locs[0], locs[1:], _tokenizer(model), max_seq_length, threshold=threshold, fmt=fmt,
                         columns=columns)
    if report.format is None and report.problems:  # nothing could be read: no table of zeros
        raise HarnessInputError(report.problems, title=f"data {file} cannot be read")
    # Wide when piped, so that FILE:LINE references stay on one line for grep and for the reader.
    console = Console(width=max(140, shutil.get_terminal_size((200, 24)).columns) if sys.stdout.isatty() else 200)
    table = Table(title=f"data check: {file}")
    table.add_column("check", no_wrap=True)
    table.add_column("result", overflow="fold")
    for name, info in [(report.file, report.format), *[(o.file, o.format) for o in report.against]]:
        if info is not None:
            table.add_row("read as", f"{info.describe()}; file {name}")
    table.add_row("valid examples", str(report.examples))
    from harness.stats import planning_note

    table.add_row("as a test set", planning_note(report.examples))
    table.add_row("messages by role", ", ".join(f"{k}: {v}" for k, v in report.messages_by_role.items()))
    if report.tokens is not None:
        t = report.tokens
        table.add_row("tokens (chat template)", f"total {t.total:,}, mean {t.mean:.1f}, p50 {t.p50:.0f}, "
                      f"p95 {t.p95:.0f}, max {t.max}")
    if report.truncation is not None:
        cut = report.truncation
        table.add_row(f"cut at {cut.max_len} tokens", f"{cut.share:.1%} of examples ({len(cut.partial)} answers cut "
                      f"in part, {len(cut.whole)} entirely)")
    if report.special_tokens is not None:
        marks = report.special_tokens
        table.add_row("special tokens in content", "none" if not marks else f"{len(marks)} (a sweep refuses them unless "
                      "the spec sets data.allow_special_tokens): " + "; ".join(marks[:20]))
    dups = report.duplicates
    unit = report.unit
    table.add_row("exact duplicates in file", "none" if not dups else "; ".join(
        f"{unit}s " + ", ".join(map(str, d)) for d in dups[:20]))
    checks = report.checks
    for other in report.against:  # one row per file: exact copies and near-duplicates, never "none" alone
        exact, theirs = other.exact, other.unit
        near = next((c for c in checks if c.check == "near_duplicates" and c.file == other.file), None)
        table.add_row(f"leakage vs {other.file}", (
            "exact copies: " + ("none" if not exact else f"{len(exact)} (" + ", ".join(
                f"{unit} {a} = {theirs} {b}" for a, b in exact[:20]) + (", ..." if len(exact) > 20 else "") + ")")
            + "; near-duplicates: " + (f"none at Jaccard similarity >= {threshold:g} or sharing a run of "
                                       f"{RUN_WORDS} words" if near is None else
                                       f"{count(len(near.lines), 'example')} (below"
                                       + (", the exact copies among them)" if exact else ")"))))
        same = other.same_prompt
        table.add_row(f"same prompt vs {other.file}", "none" if not same else f"{len(same)}: "
                      + ", ".join(f"{unit} {a} = {theirs} {b}" for a, b in same[:20]))
    for c in checks:
        table.add_row(Text(f"{c.severity}: {c.check.replace('_', ' ')}", style="bold"), Text(c.message))
    if not checks:
        table.add_row("data-quality warnings", "none (size, answer format, length outliers, personal data"
                      + (", near-duplicates" if against else "") + ")")
    console.print(table)
    if report.problems:
        raise HarnessInputError(report.problems, title=f"data file {file} is invalid")
    failed = [f"leakage: {len(o.exact)} examples identical to {o.file}" for o in report.against if o.exact]
    failed += [f"near-duplicate leakage: {c.message}" for c in checks if c.check == "near_duplicates"]
    if strict:
        failed += [f"--strict: {c.message}" for c in checks if c.check != "near_duplicates"]
    for line in failed:
        print(f"check failed: {line}", file=sys.stderr)
    return 1 if failed else 0


def sweep_exit_code(db: str, run_id: str | None) -> int:
    """3 when a variant of the run failed or is incomplete (some suites failed; the rest of it and the other
    variants are stored), else 0."""
    if run_id is None:
        return 0
    import sys

    from harness.store.db import Store

    with Store(db, read_only=True) as store:
        variants = store.run_table(run_id, "variants")
    failed = variants[variants["status"].isin(["failed", "incomplete"])]
    if failed.empty:
        return 0
    print(f"{len(failed)} variant(s) of run {run_id} failed or are incomplete; the rest is stored, and running the "
          "sweep again redoes only what is missing:", file=sys.stderr)
    for r in failed.itertuples():
        print(f"  {r.name} ({r.variant_id}) {r.status}: {str(r.error)[:300]}", file=sys.stderr)
    return 3



def selftest_command(db: str, run: str | None, variant: str | None, repetitions: int, train: bool) -> int:
    """`harness selftest`: power and false alarms of the run's verdicts at its own size; 0 when they hold."""
    from harness.gate.baseline import resolve_variant
    from harness.store.db import Store
    from harness.store.reads import load_run
    from harness.verdicts.selftest import DEFECTS, selftest

    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        variant_id, how = resolve_variant(store, run_id, variant)
        data = load_run(store, run_id)
    result = selftest(data, variant_id, repetitions=repetitions)
    table = Table(title=f"selftest of run {run_id}: defects planted into {result.variant}'s outcomes, "
                        f"{repetitions} repetitions each")
    for col in ("defect", "suite", "size", "MDE (80% power)", "detected", "verdict"):
        table.add_column(col)
    for r in result.rows:
        if not r.repetitions:
            table.add_row(r.defect, r.suite, f"{r.size:.2f}", f"{r.mde:.3f}", "n/a", "too few outcomes can move")
            continue
        ok = "ok" if r.size < r.mde or r.power >= 0.8 else "MISSED"
        note = "" if r.size >= r.mde else " (below MDE)"
        table.add_row(r.defect, r.suite, f"{r.size:.2f}", f"{r.mde:.3f}", f"{r.power:.0%}{note}", ok)
    Console(width=160).print(table)
    if result.nulls == 0:
        print(f"false alarms: nothing to check ({result.variant} has no per-example outcomes of a suite whose "
              "findings compare it with base)")
    else:
        print(f"false alarms on {result.nulls} null copies (noise only): {result.false_alarm_rate:.1%} "
              "(at most 5% allowed)")
    if result.untested:
        print(f"not tested at or above the MDE (too few outcomes can move that far): {'; '.join(result.untested)}")
    if result.unchecked:
        print(f"not checked (no such suite with per-example outcomes on {result.variant}): "
              f"{', '.join(result.unchecked)}")
    print(f"candidate: {how}")
    code = 0 if result.passed else 1
    if train:
        from harness.sweep.selftest_train import train_selftest

        code = max(code, train_selftest(db, run_id))
    if result.nothing_to_check:
        print(f"selftest NOTHING TO CHECK: no defect could be planted into {result.variant}'s outcomes at or above "
              f"its MDE (suites of kind {', '.join(k for k, *_ in DEFECTS)} with per-example outcomes are what it "
              "plants into), so no finding of this run was tested; this proves nothing and is not a pass (exit 1). "
              "Add such a suite, or more items, to the spec, or choose a run that has them")
    else:
        print("selftest PASSED" if code == 0 else "selftest FAILED: a defect the data should detect was missed, "
              "or noise raised findings too often")
    return code


def _calibration_priority(store: Store, data: RunData, rubric: list[Criterion]) -> dict[str, float]:
    """example id -> how likely the judge and the raters disagree on it (verdicts.calibration.disagreements), for
    `review export --calibrate`; the run needs a judge suite."""
    from harness.store.review import run_ratings
    from harness.verdicts.calibration import disagreements, judge_scores

    judge = judge_scores(data.samples)
    if judge.empty:
        raise HarnessInputError(f"--calibrate: run {data.run.get('run_id')} has no judge scores; add a suite of kind "
                                "judge to the spec (docs/judge.md), run the sweep, then export again")
    ranked = disagreements(judge, run_ratings(store, str(data.run["run_id"])), rubric=rubric, by="example")
    return {str(e): float(x) for e, x in zip(ranked["example_id"], ranked["score"], strict=True)}


def review_export(db: str, run: str | None, *, variants: list[str] | None, base: bool = True, sample: int | None = None,
                  seed: int | None = None, stratify: str = "none", raters: list[str] | None = None,
                  reference: bool | None = None, output: str) -> int:
    """`harness review export`: plan a blind sheet, keep its label -> variant mapping in the store, write the files."""
    from harness.gate.baseline import resolve_variant
    from harness.report.sheet import write_sheet
    from harness.report.sheet_plan import default_variants, plan_sheet
    from harness.spec.review import review_from_text
    from harness.store.db import Store
    from harness.store.reads import load_run
    from harness.store.review import save_sheet

    if sample is not None and sample < 1:
        raise HarnessInputError(f"--sample {sample}: give at least 1 item (default: the spec's review.sample, 30)")
    with Store(db) as store:
        run_id = store.resolve_run(run)
        data = load_run(store, run_id)
        review = review_from_text(data.run.get("spec"), f"the spec stored with run {run_id}")
        if variants:
            ids = [resolve_variant(store, run_id, v)[0] for v in variants]
            why = "variants chosen with --variants"
            if base and data.base_id:
                ids, why = [data.base_id, *ids], why + ", and base"
        else:
            ids, why = default_variants(data)
        ids = [v for v in dict.fromkeys(ids) if base or v != data.base_id]
        priority = _calibration_priority(store, data, review.rubric) if stratify == "calibrate" else None
        sheet = plan_sheet(data, ids, review.rubric, sample=sample or review.sample,
                           seed=review.seed if seed is None else seed,
                           stratify=stratify if stratify in ("disagreement", "calibrate") else "none",  # type: ignore[arg-type]
                           reference=review.reference if reference is None else reference,
                           raters=list(dict.fromkeys(raters or [])), why=why, priority=priority)
        save_sheet(store, *sheet.store_rows())
    paths = write_sheet(sheet, output)
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    print(f"sheet {sheet.sheet_id}: {len(sheet.items)} items of suite {sheet.suite} (run {run_id}), "
          f"{len(ids)} outputs each under labels shuffled per item (seed {sheet.seed}"
          f"{', the items the outputs disagree on most' if sheet.stratify == 'disagreement' else ''}"
          f"{', the items where the judge and the raters most likely disagree' if sheet.stratify == 'calibrate' else ''}"
          "); rubric: "
          + ", ".join(f"{c.name} ({c.scale})" for c in sheet.rubric))
    print(f"variants: {', '.join(str(names.get(v, v)) for v in ids)} ({why})")
    print(f"the label -> variant mapping is kept in {db} (review_items), never in the files:")
    for p in paths:
        print(f"  {p}")
    print("send the HTML (or the CSV) to the raters; import what they send back with `harness review import FILE ...`")
    return 0


def review_import(db: str, files: list[str]) -> int:
    """`harness review import`: check every file against its stored sheet, then store them all (or nothing)."""
    from harness.data.rating_files import read_rating_file, unblind
    from harness.spec.review import Criterion
    from harness.store.db import Store
    from harness.store.review import load_sheet, sheet_ids, store_ratings

    with Store(db) as store:
        ready, problems = [], []
        for f in files:
            try:
                rf = read_rating_file(f)
                sheet = load_sheet(store, rf.sheet_id)
                if sheet is None:
                    known = sheet_ids(store)
                    problems.append(f"{f}: unknown sheet {rf.sheet_id!r}: it was not exported from {db} (sheets here: "
                                    f"{', '.join(known[:8]) or 'none'}); import it into the store it came from "
                                    "with --db PATH")
                    continue
                rubric = [Criterion.model_validate(c) for c in sheet["rubric"]]
                ready.append((rf, unblind(rf, sheet["items"], rubric)))
            except HarnessInputError as exc:
                problems += exc.problems
        if problems:
            raise HarnessInputError(problems, title="ratings not imported (nothing was stored)")
        for rf, rows in ready:
            n = store_ratings(store, rf.sheet_id, rf.rater, rows)
            print(f"{rf.path}: sheet {rf.sheet_id}, rater {rf.rater}: {len(rows)} ratings on {len(rf.entries)} items "
                  f"({n.new} new, {n.changed} changed, {n.unchanged} unchanged, {n.removed} removed)")
    print(f"stored in {db} (table ratings); `harness report` shows them")
    return 0
