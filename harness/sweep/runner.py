"""The sweep driver: spec -> plan -> (train + score each variant) -> store, with resume and a summary table."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from harness import __version__
from harness.data.chat import DataBundle, load_bundle
from harness.data.quality import DataCheck
from harness.data.suites import Suite, resolve_suites, with_free_checks
from harness.errors import HarnessInputError, Terminated
from harness.models.resolve import ModelRef, check_hub, folder_fingerprint, resolve_model
from harness.progress import Progress
from harness.results import INCOMPLETE, VariantResult
from harness.scorers import check_suites
from harness.scorers.run import base_references
from harness.spec.plan import Variant, make_plan, select
from harness.spec.schema import API_PREFIXES, TRAINING_METHODS, ExperimentSpec, load_spec
from harness.stats import planning_note
from harness.store.db import Store
from harness.store.lock import sweep_lock
from harness.store.reads import variant_rows
from harness.sweep.checks import model_location, preflight
from harness.sweep.execute import Rescore, VariantTask, rescores
from harness.sweep.provenance import git_state, library_versions
from harness.sweep.scheduler import JobRow, schedule
from harness.sweep.signals import deferred_interrupts, terminate_as_interrupt
from harness.sweep.summary import findings_line, print_summary

if TYPE_CHECKING:
    from harness.managed.backend import ManagedBackend

LOCAL_METHODS = ("base", "lora", "qlora", "full", "given", "prompt")


def _checkpoints(spec: ExperimentSpec) -> tuple[dict[str, str], dict[str, str]]:
    """For `given`: checkpoint -> identity (folder fingerprint or model id), checkpoint -> resolved path."""
    ids, paths = {}, {}
    for i, ckpt in enumerate(spec.sweep.checkpoint):
        if ckpt.startswith(API_PREFIXES):
            ids[ckpt] = ckpt
            continue
        path = spec.resolve_path(ckpt, f"sweep.checkpoint[{i}]")
        if not path.is_dir():
            raise HarnessInputError(f"{spec.source_path}: key 'sweep.checkpoint[{i}]': no folder {path}")
        ids[ckpt] = f"{ckpt}@{folder_fingerprint(path)}"
        paths[ckpt] = str(path)
    return ids, paths


@dataclass(frozen=True)
class TokenEstimate:
    """Estimated training tokens: each variant's training (for an `epochs_from_one_run` variant, the one run its
    group shares), which variants share a run, and the total with each shared run counted once."""

    per_variant: dict[str, int]
    groups: dict[str, list[Variant]]  # train_group -> its variants in this plan (they train once, together)
    total: int


class Sweep:
    """A prepared sweep: validated spec, resolved model and suites, loaded data, the plan."""

    def __init__(self, spec_path: str | Path, *, only: list[str] | None = None, strict: bool = False):
        self.spec = load_spec(spec_path)
        self.warnings: list[DataCheck] = []
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
            check_suites(self.suites)
        except HarnessInputError as exc:
            problems += exc.problems
        if "gate" in self.spec.model_fields_set and hasattr(self, "suites"):  # rules against their metrics' direction
            problems += gate_direction_problems(self.spec, self.suites)
        try:
            from harness.scorers import declared_findings
            from harness.spec.findings import settings

            settings(self.spec.findings, declared=declared_findings())
        except HarnessInputError as exc:
            problems += [f"{self.spec.source_path}: {p}" for p in exc.problems]
        need_train = any(m in TRAINING_METHODS for m in self.spec.sweep.method) or (
            "prompt" in self.spec.sweep.method and any(self.spec.sweep.shots))  # few-shot turns come from train
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
        if strict:  # every warning listed with the rest, none trained on
            problems += [f"{w.message} (a warning; an error under --strict)" for w in self.warnings]
        if problems:
            raise HarnessInputError(problems, title=f"cannot run {spec_path}")
        self.suites = with_free_checks(self.suites, self.spec)
        suites = [s.identity() for s in self.suites]
        self.all_variants = make_plan(self.spec, self.model.identity, self.data.fingerprints, suites,
                                      self.checkpoint_ids, self.checkpoint_paths)
        self.variants = select(self.all_variants, only)
        # base's outputs for suites that compare with them (pairwise judges): filled once base is stored
        self.base_outputs: dict[str, dict[str, str]] = {}
        self.rescore: dict[str, Rescore] = {}  # incomplete variants stored earlier: only their failed suites run
        if only and len(self.variants) == 1 and len(self.all_variants) > 1:
            names = ", ".join(f"{v.name} ({v.variant_id})" for v in self.all_variants[1:])
            raise HarnessInputError(f"--only {' '.join(only)} matches no variant. The plan has: {names}")
        # what resolving the model ignored, provider cutoffs and retirements: warnings, not data checks
        self.notices: list[str] = [*self.model.notices, *self.managed_notices()]

    def managed(self) -> ManagedBackend | None:
        """The managed fine-tuning provider of the spec's model (harness.managed.backend), or None for other models."""
        if not self.model.is_managed:
            return None
        from harness.managed.backend import ManagedSettings
        from harness.managed.providers import make_backend

        settings = ManagedSettings(self.model.location, self.spec.train.openai, self.spec.azure, self.spec.name,
                                   str(self.spec.source_path))
        return make_backend(self.model.kind, settings)

    def managed_notices(self) -> list[str]:
        """Announced cutoffs for managed jobs and reported retirements of `given` OpenAI fine-tunes (no API call)."""
        from harness.managed.lifecycle import plan_notices

        trainees = [(v.name, v.variant_id) for v in self.variants if v.method == "openai"]
        given = [c.removeprefix("openai:") for c in (v.checkpoint for v in self.variants if v.method == "given")
                 if c and c.startswith("openai:")]
        backend = self.managed() if trainees else None
        return (backend.notices(trainees) if backend is not None else []) + plan_notices("openai", 0, given)

    def task(self, v: Variant, out_dir: Path) -> VariantTask:
        rescore = self.rescore.get(v.variant_id)
        suites = [s for s in self.suites if rescore is None or s.name in rescore.suites]
        return VariantTask(v, self.model, self.spec.train, self.data, suites,
                           str(out_dir), self.spec.base_url, self.base_outputs, rescore,
                           storage=self.spec.storage)

    def estimate_tokens(self) -> TokenEstimate:
        """Training tokens (examples' chat-templated length x epochs); an `epochs_from_one_run` group trains once,
        for its largest epoch count."""
        per_epoch = self._train_tokens_per_epoch()
        per: dict[str, int] = {}
        groups: dict[str, list[Variant]] = {}
        for v in self.variants:
            per[v.variant_id] = per_epoch * (max(v.one_run) if v.one_run else v.epochs or 0) if v.trains else 0
            if v.trains and v.one_run and v.train_group:
                groups.setdefault(v.train_group, []).append(v)
        grouped = {v.variant_id for vs in groups.values() for v in vs}
        total = sum(n for vid, n in per.items() if vid not in grouped) + sum(per[vs[0].variant_id]
                                                                             for vs in groups.values())
        return TokenEstimate(per, groups, total)

    def _train_tokens_per_epoch(self) -> int:
        if not self.data.train:
            return 0
        if self.model.is_remote:
            from harness.managed.data import count_tokens

            return sum(count_tokens(e.messages, self.model.location) for e in self.data.train)
        from harness.models.resolve import load_tokenizer

        tok = load_tokenizer(self.model)
        texts = [tok.apply_chat_template(e.messages, tokenize=False) for e in self.data.train]
        lengths = [min(len(x), self.spec.train.max_seq_length) for x in tok(texts, add_special_tokens=False)["input_ids"]]
        return int(sum(lengths))


def gate_direction_problems(spec: ExperimentSpec, suites: list[Suite]) -> list[str]:
    """The spec's gate rules checked against the declared direction of the metrics they name."""
    from harness.gate.rules import plan_direction_problems
    from harness.scorers import make_scorer

    kinds = {}  # the kind whose declarations apply (a `python` suite's is the user's scorer's)
    for s in suites:
        try:
            kinds[s.name] = str(make_scorer(s.kind, s.options, suite=s)[1]["kind"])
        except HarnessInputError:
            continue  # reported by check_suites
    return plan_direction_problems(spec.gate, kinds, str(spec.source_path))


def print_plan(sweep: Sweep, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    est = sweep.estimate_tokens()
    table = Table(title=f"plan for {sweep.spec.name}: {len(sweep.variants)} variants ({sweep.model.name})")
    for col in ("variant_id", "name", "method", "rank", "epochs", "lr", "seed", "est. train tokens"):
        table.add_column(col)
    shared = {v.variant_id: g for g, vs in est.groups.items() for v in vs}
    for v in sweep.variants:
        tokens = f"{est.per_variant[v.variant_id]:,}" + (f" shared ({shared[v.variant_id]})" if v.variant_id in shared
                                                        else "")
        table.add_row(v.variant_id, v.name, v.method, _s(v.rank), _s(v.epochs),
                      "" if v.learning_rate is None else f"{v.learning_rate:g}", _s(v.seed), tokens)
    Console(file=out, width=140).print(table)
    for split, info in sweep.data.formats.items():  # how each split was read (docs/data.md)
        print(f"data {split}: {info.examples} examples from {info.source} as {info.describe()}", file=out)
    print(f"estimated training tokens in all: {est.total:,}"
          + (" (each shared run counted once)" if est.groups else ""), file=out)
    if sweep.spec.search is not None:  # its space, trials and rungs (harness.search)
        from harness.search.view import search_lines

        print("\n".join(search_lines(sweep.spec, sum(v.trains for v in sweep.variants))), file=out)
    for group, vs in est.groups.items():  # train.epochs_from_one_run: one training, scored at several epochs
        print(f"  shared run {group}: {', '.join(v.name for v in vs)} are checkpoints of one {max(vs[0].one_run or ())}"
              f"-epoch training of {est.per_variant[vs[0].variant_id]:,} tokens", file=out)
    print("what each suite's size can detect (per comparison; a gate or a run with several comparisons corrects "
          "for them and detects a little less):", file=out)
    for suite, n in suite_sizes(sweep).items():
        print(f"  {suite}: {planning_note(n)}", file=out)
    trainees = [v for v in sweep.variants if v.method == "openai"]
    backend = sweep.managed() if trainees else None
    if backend is not None:
        cost = backend.estimate(sweep.data.train, trainees)
        print("\n".join(cost.lines()), file=out)


def suite_sizes(sweep: Sweep) -> dict[str, int]:
    """How many items each suite scores: the test set for suites without items of their own, the suite's items (or
    its seeded `sample` of them) otherwise."""
    sizes = {}
    for s in sweep.suites:
        if s.kind == "divergence":
            continue
        # suites without items of their own (heldout, memorization, evaluate, judge) score the test set
        from_test = s.kind == "heldout" or s.options.get("source") == "heldout" or not s.items_file
        n = len(sweep.data.test) if from_test else len(s.items())
        sample = s.options.get("sample")
        sizes[s.name] = min(n, int(sample)) if isinstance(sample, int) and sample > 0 else n
    return sizes


def _s(x: object) -> str:
    return "" if x is None else str(x)


def run_sweep(spec_path: str | Path, db: str | Path = "results.duckdb", *, executor: str = "local",
              only: list[str] | None = None, dry_run: bool = False, progress: Progress | None = None,
              out: TextIO | None = None, strict: bool = False) -> str | None:
    """Run (or resume) a sweep; returns the run id (None for --dry-run). `strict`: data-quality warnings are
    errors (nothing is trained)."""
    with contextlib.ExitStack() as guard:
        if not dry_run:  # SIGTERM is handled like Ctrl-C; one sweep per store, refused before loading anything
            guard.enter_context(terminate_as_interrupt())
            guard.enter_context(sweep_lock(Path(db)))
        return _run_sweep(spec_path, db, executor=executor, only=only, dry_run=dry_run,
                          progress=progress or Progress(), out=out or sys.stdout, strict=strict)


def _run_sweep(spec_path: str | Path, db: str | Path, *, executor: str, only: list[str] | None, dry_run: bool,
               progress: Progress, out: TextIO, strict: bool = False) -> str | None:
    sweep = Sweep(spec_path, only=only, strict=strict)
    for warning in sweep.warnings:
        print(f"warning: {warning.message}", file=sys.stderr)
    for notice in sweep.notices:
        print(f"warning: {notice}", file=sys.stderr)
    if dry_run:
        print_plan(sweep, out)
        return None
    if executor not in ("local", "ray"):
        raise HarnessInputError(f"--executor {executor!r}: choose 'local' or 'ray'")
    from harness.search.driver import searched, start_search

    trials = searched(sweep.spec, sweep.variants)  # a driven search's trials run below, through harness.search
    db = Path(db)
    out_dir = db.resolve().parent / "runs"
    sha, dirty = git_state(sweep.spec.spec_dir)
    # The store is open only while reading or committing, so `harness runs` and `report` can read it in between.
    with Store(db, hold=False) as store:
        stale = store.mark_stale_runs()
        if stale:
            progress.info(f"marked {len(stale)} earlier run(s) whose process is gone as interrupted: {', '.join(stale)}")
        ids = [v.variant_id for v in sweep.variants if v not in trials]
        done = store.finished_variant_ids(ids)
        run_id = store.start_run({
            "name": sweep.spec.name, "spec": sweep.spec.source_text, "spec_hash": sweep.spec.spec_hash(),
            "harness_version": __version__, "git_sha": sha, "git_dirty": dirty,
            "spec_path": str(Path(spec_path).resolve()), "model": sweep.model.name,
            "model_fingerprint": sweep.model.identity, "data_fingerprints": sweep.data.fingerprints,
            "suites": [s.identity() for s in sweep.suites], "library_versions": library_versions(),
            "data_checks": [w.to_dict() for w in sweep.warnings] + sweep.data.format_records(),
        })
        store.link_variants(run_id, ids, [i in done for i in ids])
        todo = [v for v in sweep.variants if v.variant_id not in done and v not in trials]
        sweep.rescore = rescores([*todo, *trials], sweep.suites, sweep.model.is_remote,
                                 store.incomplete_variants([v.variant_id for v in [*todo, *trials]]))
        base = next((v for v in sweep.variants if v.method == "base"), None)
        if base is not None and base.variant_id in {*done, *sweep.rescore} and any(
                s.options.get("pairwise_against") for s in sweep.suites):
            sweep.base_outputs.update(base_references(sweep.suites, store.variant_table(base.variant_id, "examples")))
        progress.info(f"run {run_id}: {len(sweep.variants)} variants, {len(done)} already stored, "
                      f"{len(todo)} to do (store: {db})")
        for vid, r in sweep.rescore.items():
            progress.info(f"{vid} is incomplete: scoring only its failed suite(s) {', '.join(r.suites)}")
        if not todo:
            progress.info("every variant is already stored; nothing to train or score")
        status = "finished"
        try:
            stored_jobs = store.jobs([v.variant_id for v in todo])
            store.release()
            for event in schedule(sweep, todo, out_dir, executor, progress, stored_jobs=stored_jobs, run_id=run_id):
                if isinstance(event, JobRow):
                    store.upsert_job(event.row)
                else:
                    _store(store, run_id, event.variant, event.result, progress)
                    if event.variant.method == "base":  # later variants' pairwise judges compare with its outputs
                        sweep.base_outputs.update(base_references(sweep.suites, event.result.suites))
                store.release()  # closed (and checkpointed) while the next variant trains, so readers get in
            if sweep.spec.search is not None and sweep.spec.search.drives:
                start_search(sweep, trials, store, run_id, out_dir, executor, progress,
                             lambda v, r: _store(store, run_id, v, r, progress), ids, [i in done for i in ids])
            derive_findings(store, run_id, sweep.spec.findings)
            progress.info(findings_line(store.run_table(run_id, "findings")) + ", listed with the summary "
                          "(comparisons against base are corrected together across the run)")
            store.release()
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
    if sweep.spec.tracking.trackers():  # the store holds everything; a tracker that fails is only a warning
        from harness.tracking.export import export_after_sweep

        export_after_sweep(db, run_id, sweep.spec.tracking)
    return run_id


def _store(store: Store, run_id: str, v: Variant, result: VariantResult, progress: Progress) -> None:
    """Write one variant (its rows and its scorers' findings) in one transaction."""
    result.variant = replace(result.variant, run_id=run_id)
    store.write_variant(result)
    if result.finished:
        progress.info(f"stored {v.name} ({v.variant_id}): {result.n_scores} scores, {result.n_samples} examples"
                      + (f" (rescored {', '.join(result.rescored)})" if result.rescored else ""))
    elif result.variant.status == INCOMPLETE:
        progress.info(f"INCOMPLETE {v.name} ({v.variant_id}): stored {result.n_scores} scores, {result.n_samples} "
                      f"examples; {result.variant.error} (a rerun of the spec scores only the failed suites)")
    elif result.variant.stop_reason and result.variant.status == "stopped":  # a search stopped it (harness.search)
        progress.info(f"stored {v.name} ({v.variant_id}): {result.variant.stop_reason}")
    else:
        progress.info(f"FAILED {v.name} ({v.variant_id}): {result.variant.error}")


def derive_findings(store: Store, run_id: str, spec_findings: dict[str, object] | None) -> int:
    """The run's findings against base, all variants' comparisons corrected together as one family (the stored
    variants of the run, reused ones included); replaces what earlier derivations stored. Returns how many."""
    from harness.verdicts import findings

    variants = [v for v in store.run_table(run_id, "variants").to_dict("records") if v["status"] == "finished"]
    base = next((v for v in variants if v["method"] == "base"), None)
    base_rows = variant_rows(store, base["variant_id"]) if base else None
    rows = findings.derive_run([(v, variant_rows(store, v["variant_id"])) for v in variants], base_rows,
                               spec_findings)
    store.replace_findings([v["variant_id"] for v in variants], sorted({*findings.checks(), *(r["check"] for r in rows)}),
                           [dict(r) for r in rows])
    return len(rows)
