"""The sweep driver: spec -> plan -> (train + score each variant) -> store, with resume and a summary table."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from harness import __version__
from harness.data.chat import DataBundle, load_bundle
from harness.data.suites import Suite, resolve_suites
from harness.errors import HarnessInputError, Terminated
from harness.models.resolve import ModelRef, _folder_fingerprint, check_hub, resolve_model
from harness.progress import Progress
from harness.spec.plan import Variant, make_plan, select
from harness.spec.schema import ExperimentSpec, load_spec
from harness.store.db import Store, VariantResult
from harness.store.lock import mark_stale_runs, sweep_lock
from harness.sweep.checks import model_location, preflight
from harness.sweep.execute import VariantTask
from harness.sweep.signals import deferred_interrupts, terminate_as_interrupt

LOCAL_METHODS = ("base", "lora", "qlora", "full", "given")


def git_state(where: Path | None = None) -> tuple[str | None, bool | None]:
    """(sha, dirty) of the git checkout holding `where` (the spec's folder), if any."""
    try:
        sha = subprocess.run(["git", "-C", str(where or Path.cwd()), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        if sha.returncode:
            return None, None
        dirty = subprocess.run(["git", "-C", str(where or Path.cwd()), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, check=False)
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "trl", "bitsandbytes", "duckdb", "openai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _checkpoints(spec: ExperimentSpec) -> tuple[dict[str, str], dict[str, str]]:
    """For `given`: checkpoint -> identity (folder fingerprint or model id), checkpoint -> resolved path."""
    ids, paths = {}, {}
    for i, ckpt in enumerate(spec.sweep.checkpoint):
        if ckpt.startswith(("openai:", "openai-compatible:")):
            ids[ckpt] = ckpt
            continue
        path = spec.resolve_path(ckpt, f"sweep.checkpoint[{i}]")
        if not path.is_dir():
            raise HarnessInputError(f"{spec.source_path}: key 'sweep.checkpoint[{i}]': no folder {path}")
        ids[ckpt] = f"{ckpt}@{_folder_fingerprint(path)}"
        paths[ckpt] = str(path)
    return ids, paths


class Sweep:
    """A prepared sweep: validated spec, resolved model and suites, loaded data, the plan."""

    def __init__(self, spec_path: str | Path, *, only: list[str] | None = None):
        self.spec = load_spec(spec_path)
        self.warnings: list[str] = []
        problems: list[str] = []
        model_ok = False
        try:
            self.model: ModelRef = resolve_model(model_location(self.spec))
            check_hub(self.model)
            model_ok = True
        except HarnessInputError as exc:
            problems += [f"{self.spec.source_path}: key 'model': {p}" for p in exc.problems]
        try:
            self.suites: list[Suite] = resolve_suites(self.spec)
        except HarnessInputError as exc:
            problems += exc.problems
        try:
            from harness.verdicts.findings import settings

            settings(self.spec.findings)
        except HarnessInputError as exc:
            problems += [f"{self.spec.source_path}: {p}" for p in exc.problems]
        need_train = any(m in ("lora", "qlora", "full", "openai") for m in self.spec.sweep.method)
        try:
            self.data: DataBundle = load_bundle(self.spec, need_train=need_train)
        except HarnessInputError as exc:
            problems += exc.problems
        try:
            self.checkpoint_ids, self.checkpoint_paths = _checkpoints(self.spec)
        except HarnessInputError as exc:
            problems += exc.problems
        # what training would trip over, found now rather than after the first variant (with whatever resolved)
        found, self.warnings = preflight(self.spec, self.model if model_ok else None, getattr(self, "suites", []),
                                         getattr(self, "data", None))
        problems += found
        if problems:
            raise HarnessInputError(problems, title=f"cannot run {spec_path}")
        suites = [s.identity() for s in self.suites]
        self.all_variants = make_plan(self.spec, self.model.identity, self.data.fingerprints, suites,
                                      self.checkpoint_ids)
        self.variants = select(self.all_variants, only)
        if only and len(self.variants) == 1 and len(self.all_variants) > 1:
            names = ", ".join(f"{v.name} ({v.variant_id})" for v in self.all_variants[1:])
            raise HarnessInputError(f"--only {' '.join(only)} matches no variant. The plan has: {names}")

    def task(self, v: Variant, out_dir: Path) -> VariantTask:
        variant = v.to_dict()
        if v.checkpoint:
            variant["checkpoint_path"] = self.checkpoint_paths.get(v.checkpoint)
        return VariantTask(variant, self.model, self.spec.train.model_dump(mode="json"), self.data, self.suites,
                           str(out_dir), self.spec.base_url)

    def estimate_tokens(self) -> dict[str, int]:
        """Training tokens per variant (examples' chat-templated length x epochs)."""
        per_epoch = self._train_tokens_per_epoch()
        return {v.variant_id: per_epoch * (v.epochs or 0) if v.trains else 0 for v in self.variants}

    def _train_tokens_per_epoch(self) -> int:
        if not self.data.train:
            return 0
        if self.model.is_remote:
            from harness.openai.data import count_tokens

            return sum(count_tokens(e.messages, self.model.location) for e in self.data.train)
        from harness.models.resolve import load_tokenizer

        tok = load_tokenizer(self.model)
        texts = [tok.apply_chat_template(e.messages, tokenize=False) for e in self.data.train]
        lengths = [min(len(x), self.spec.train.max_seq_length) for x in tok(texts, add_special_tokens=False)["input_ids"]]
        return int(sum(lengths))


def print_plan(sweep: Sweep, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    est = sweep.estimate_tokens()
    table = Table(title=f"plan for {sweep.spec.name}: {len(sweep.variants)} variants ({sweep.model.name})")
    for col in ("variant_id", "name", "method", "rank", "epochs", "lr", "seed", "est. train tokens"):
        table.add_column(col)
    for v in sweep.variants:
        table.add_row(v.variant_id, v.name, v.method, _s(v.rank), _s(v.epochs),
                      "" if v.learning_rate is None else f"{v.learning_rate:g}", _s(v.seed), f"{est[v.variant_id]:,}")
    Console(file=out, width=140).print(table)
    print(f"estimated training tokens in all: {sum(est.values()):,}", file=out)
    if any(v.method == "openai" for v in sweep.variants):
        from harness.train.openai import cost_estimate

        print("\n".join(cost_estimate(sweep).lines()), file=out)  # type: ignore[union-attr]


def _s(x: Any) -> str:
    return "" if x is None else str(x)


def run_sweep(spec_path: str | Path, db: str | Path = "results.duckdb", *, executor: str = "local",
              only: list[str] | None = None, dry_run: bool = False, progress: Progress | None = None,
              out: TextIO | None = None) -> str | None:
    """Run (or resume) a sweep; returns the run id (None for --dry-run)."""
    with contextlib.ExitStack() as guard:
        if not dry_run:  # SIGTERM is handled like Ctrl-C; one sweep per store, refused before loading anything
            guard.enter_context(terminate_as_interrupt())
            guard.enter_context(sweep_lock(Path(db)))
        return _run_sweep(spec_path, db, executor=executor, only=only, dry_run=dry_run,
                          progress=progress or Progress(), out=out or sys.stdout)


def _run_sweep(spec_path: str | Path, db: str | Path, *, executor: str, only: list[str] | None, dry_run: bool,
               progress: Progress, out: TextIO) -> str | None:
    sweep = Sweep(spec_path, only=only)
    for warning in sweep.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if dry_run:
        print_plan(sweep, out)
        return None
    if executor not in ("local", "ray"):
        raise HarnessInputError(f"--executor {executor!r}: choose 'local' or 'ray'")
    db = Path(db)
    out_dir = db.resolve().parent / "runs"
    sha, dirty = git_state(sweep.spec.spec_dir)
    # The store is open only while reading or committing, so `harness runs` and `report` can read it in between.
    with Store(db, hold=False) as store:
        stale = mark_stale_runs(store)
        if stale:
            progress.info(f"marked {len(stale)} earlier run(s) whose process is gone as interrupted: {', '.join(stale)}")
        ids = [v.variant_id for v in sweep.variants]
        done = store.finished_variant_ids(ids)
        run_id = store.start_run({
            "name": sweep.spec.name, "spec": sweep.spec.source_text, "spec_hash": sweep.spec.spec_hash(),
            "harness_version": __version__, "git_sha": sha, "git_dirty": dirty,
            "spec_path": str(Path(spec_path).resolve()), "model": sweep.model.name,
            "model_fingerprint": sweep.model.identity, "data_fingerprints": sweep.data.fingerprints,
            "suites": [s.identity() for s in sweep.suites], "library_versions": library_versions(),
        })
        store.link_variants(run_id, ids, [i in done for i in ids])
        todo = [v for v in sweep.variants if v.variant_id not in done]
        progress.info(f"run {run_id}: {len(sweep.variants)} variants, {len(done)} already stored, "
                      f"{len(todo)} to do (store: {db})")
        if not todo:
            progress.info("every variant is already stored; nothing to train or score")
        status = "finished"
        try:
            results = _execute(sweep, todo, out_dir, executor, progress, store=store, run_id=run_id)
            for v, result in results:
                _store_result(store, run_id, sweep, v, result, progress)
                store.release()  # closed (and checkpointed) while the next variant trains, so readers get in
        except KeyboardInterrupt as exc:
            status = "interrupted"
            progress.info(f"{'terminated (SIGTERM)' if isinstance(exc, Terminated) else 'interrupted'}: "
                          f"marking run {run_id} interrupted; the variant in progress is not stored")
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            with deferred_interrupts():
                store.finish_run(run_id, status)
        print_summary(store, run_id, out)
    return run_id


def _execute(sweep: Sweep, todo: list[Variant], out_dir: Path, executor: str, progress: Progress,  # type: ignore[no-untyped-def]
             store: Store | None = None, run_id: str | None = None):
    """Yield (variant, result) as each finishes; local variants run one after another."""
    remote = [v for v in todo if v.method == "openai" or (v.method == "given" and (v.checkpoint or "").startswith("openai"))
              or sweep.model.is_remote]
    local = [v for v in todo if v not in remote]
    if remote:
        from harness.train.openai import execute_remote  # submits every job first, then follows them together

        yield from execute_remote(sweep, remote, out_dir, progress, then_local=local, store=store, run_id=run_id)
        return
    if executor == "ray":
        from harness.sweep.ray_executor import execute_ray

        yield from execute_ray(sweep, local, out_dir, progress)
        return
    from harness.sweep.execute import execute_variant

    for i, v in enumerate(local, start=1):
        progress.variant_start(i, len(local), v.name, "training and scoring" if v.trains else "scoring")
        yield v, execute_variant(sweep.task(v, out_dir), progress)


def _frames(result: VariantResult) -> dict[str, pd.DataFrame]:
    return {t: pd.DataFrame(getattr(result, t)) for t in ("scores", "examples", "train_log")}


def _store_result(store: Store, run_id: str, sweep: Sweep, v: Variant, result: VariantResult, progress: Progress) -> None:
    from harness.verdicts import findings

    if result.variant.get("status") == "finished":
        base_id = sweep.all_variants[0].variant_id
        base_rows = None
        if v.method != "base":
            base_rows = {t: store.query(f"SELECT * FROM {t} WHERE variant_id = ?", [base_id])
                         for t in ("scores", "examples", "train_log")}
        result.findings += findings.derive(result.variant, _frames(result), base_rows, sweep.spec.findings)
    result.variant["run_id"] = run_id
    store.write_variant(result)
    if result.variant.get("status") == "finished":
        progress.info(f"stored {v.name} ({v.variant_id}): {len(result.scores)} scores, "
                      f"{len(result.examples)} examples, {len(result.findings)} findings")
    else:
        progress.info(f"FAILED {v.name} ({v.variant_id}): {result.variant.get('error')}")


def summary_frame(store: Store, run_id: str) -> pd.DataFrame:
    variants = store.run_table(run_id, "variants")
    scores = store.run_table(run_id, "scores")
    log = store.run_table(run_id, "train_log")
    rows = []
    for _, v in variants.iterrows():
        vid = v["variant_id"]
        row: dict[str, Any] = {"variant": v["name"], "id": vid, "method": v["method"], "rank": v["rank"],
                               "epochs": v["epochs"], "status": v["status"] + (" (reused)" if v["reused"] else "")}
        row["train s"] = v["train_seconds"]
        row["tok/s"] = v["tokens_per_second"]
        for split in ("train", "validation"):
            part = log[(log["variant_id"] == vid) & (log["split"] == split)] if not log.empty else log
            row[f"{split[:5]} loss"] = part.sort_values("step")["loss"].iloc[-1] if len(part) else None
        s = scores[(scores["variant_id"] == vid) & (scores["suite"] == "heldout")] if not scores.empty else scores
        for _, sc in s.iterrows():
            if sc["metric"] in ("exact_match", "field_accuracy", "rougeL", "chrf"):
                row[sc["metric"]] = f"{sc['value']:.3f} [{sc['ci_low']:.3f}, {sc['ci_high']:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def print_summary(store: Store, run_id: str, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    df = summary_frame(store, run_id)
    table = Table(title=f"run {run_id}")
    for col in df.columns:
        table.add_column(col, overflow="fold")
    for _, r in df.iterrows():
        table.add_row(*[_cell(x) for x in r])
    console = Console(file=out, width=max(160, os.get_terminal_size().columns if out.isatty() else 200))
    console.print(table)
    f = store.run_table(run_id, "findings")
    if not f.empty:
        names = dict(zip(store.run_table(run_id, "variants")["variant_id"], store.run_table(run_id, "variants")["name"]))
        console.print("findings:")
        for _, row in f.iterrows():
            console.print(f"  [{row['severity']}] {names.get(row['variant_id'], row['variant_id'])} "
                          f"{row['check']}: {row['message']}", markup=False)
    console.print(f"results stored in {store.path.resolve()} (run {run_id}); "
                  f"`harness report {run_id}` builds the HTML report", markup=False)


def _cell(x: Any) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)) or x is pd.NA:
        return ""
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)
