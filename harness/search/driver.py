"""A searched sweep's trials: drawn (Optuna) or read off the grid, trained whole one after another or rung by rung
(successive halving on the validation loss), each stored like any variant; the store's results replayed first.

Rung-synchronous: every live trial trains to the rung's epoch, then the rung keeps the best 1/reduction_factor and
the rest are stored as `stopped`; survivors continue from their checkpoints with their full-length schedule. The
decisions read only validation losses, from the store, the trials' checkpoints on disk, or fresh training, so a rerun
after a kill makes the same ones and trains nothing twice.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from harness.progress import Progress
from harness.results import LogPoint, RunParts, VariantResult, failed_result, finish_row
from harness.scores import SuiteResult
from harness.search import rung_train
from harness.search.rungs import decide, rung_epochs, sort_key
from harness.search.space import new_study, space, trial_variant
from harness.spec.plan import Variant
from harness.spec.schema import ExperimentSpec
from harness.store.db import Store
from harness.sweep.execute import PreparedSweep, VariantTask, worker
from harness.sweep.scheduler import Finished, schedule

if TYPE_CHECKING:
    from optuna import Study
    from optuna.trial import Trial

STOPPED = "stopped"
TRAINED = ("finished", "incomplete")  # trained to the end (an incomplete one's failed suites are scored again)
StoreResult = Callable[[Variant, VariantResult], None]


@dataclass
class SearchRun:
    """One searched sweep in progress: where results go and what the run lists so far."""

    sweep: PreparedSweep
    store: Store
    run_id: str
    out_dir: Path
    executor: str
    progress: Progress
    store_result: StoreResult
    linked: list[str]  # the run's variant ids so far (base first), in order
    reused: list[bool]
    plan: list[Variant]  # a grid search's trials (the plan's training variants)
    identity: tuple[str, dict[str, str], Sequence[Mapping[str, object]]]  # model identity, data fingerprints, suites

    def link(self, v: Variant, reused: bool) -> None:
        if v.variant_id not in self.linked:
            self.linked.append(v.variant_id)
            self.reused.append(reused)
            self.store.link_variants(self.run_id, self.linked, self.reused)
            self.store.release()

    def stored(self, vid: str) -> tuple[str | None, list[LogPoint], int | None]:
        """(status, train log, scored step) of a stored variant; (None, [], None) when it is not stored."""
        row = self.store.variant_table(vid, "variant_results")
        if row.empty:
            self.store.release()
            return None, [], None
        log = self.store.variant_table(vid, "train_log")
        self.store.release()
        points = [LogPoint(int(r.step), None if pd.isna(r.epoch) else float(r.epoch), str(r.split), float(r.loss))
                  for r in log.itertuples()]
        step = row.iloc[0]["scored_step"]
        return str(row.iloc[0]["status"]), points, None if pd.isna(step) else int(step)

    def task(self, v: Variant) -> VariantTask:
        return self.sweep.task(v, self.out_dir)


def final_value(log: list[LogPoint], scored_step: int | None) -> float:
    """A finished trial's objective: the validation loss of its scored checkpoint (else its last validation pass)."""
    val = sorted((r for r in log if r.split == "validation"), key=lambda r: r.step)
    at = [r.loss for r in val if r.step == scored_step]
    value = at[-1] if at else (val[-1].loss if val else math.nan)
    return sort_key(value)


def run_search(run: SearchRun) -> None:
    """Run (or continue) the spec's search; every trial ends stored, finished, failed or stopped."""
    search = run.sweep.spec.search
    assert search is not None
    if search.scheduler is None:
        _sequential(run)
    else:
        _rungs(run)


def _ask(run: SearchRun, study: Study | None, k: int) -> tuple[Variant, Trial | None]:
    if study is None:
        return run.plan[k], None
    trial = study.ask(space(run.sweep.spec))
    model_identity, fingerprints, suites = run.identity
    return trial_variant(run.sweep.spec, trial.params, model_identity, fingerprints, suites), trial


def _trials(run: SearchRun) -> int:
    search = run.sweep.spec.search
    assert search is not None
    return len(run.plan) if not search.samples else int(search.trials or 0)


def _train_whole(run: SearchRun, v: Variant) -> VariantResult:
    """Train (or finish training) and score one trial through the sweep's scheduler; store it."""
    return _train_all(run, [v])[v.variant_id]


def _train_all(run: SearchRun, todo: list[Variant]) -> dict[str, VariantResult]:
    """Train (or finish training) and score trials through the sweep's scheduler (one after another here, at once
    as Ray tasks under --executor ray); each is stored as it comes back."""
    results: dict[str, VariantResult] = {}
    for event in schedule(run.sweep, todo, run.out_dir, run.executor, run.progress, run_id=run.run_id):
        if not isinstance(event, Finished):
            continue
        v, result = event.variant, event.result
        earlier = rung_train.earlier_seconds(run.task(v))
        if earlier and result.variant.train_seconds is not None:  # the rungs before this call trained too
            result.variant = replace(result.variant, train_seconds=result.variant.train_seconds + earlier)
        run.store_result(v, result)
        results[v.variant_id] = result
    return results


def _sequential(run: SearchRun) -> None:
    """Each trial trained and scored whole before the next is asked (TPE learns from every result)."""
    search = run.sweep.spec.search
    assert search is not None
    study = new_study(search) if search.samples else None
    values: dict[str, float] = {}
    for k in range(_trials(run)):
        v, trial = _ask(run, study, k)
        if v.variant_id not in values:
            status, log, step = run.stored(v.variant_id)
            run.link(v, status == "finished")
            if status != "finished":
                run.progress.info(f"search trial {k + 1}/{_trials(run)}: {v.name} ({v.variant_id})")
                result = _train_whole(run, v)
                log, step, status = result.train_log, result.variant.scored_step, result.variant.status
            values[v.variant_id] = final_value(log, step) if status in TRAINED else math.nan
        if study is not None and trial is not None:
            _tell(study, trial, values[v.variant_id])


def _tell(study: Study, trial: Trial, value: float, pruned_at: int | None = None) -> None:
    from optuna.trial import TrialState

    if pruned_at is not None:
        if not math.isnan(value):
            trial.report(value, pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
    elif math.isnan(value) or math.isinf(value):
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)


def _rungs(run: SearchRun) -> None:
    """Every trial drawn first (a bracket), then trained rung by rung; each rung stops all but the best share."""
    search, spec = run.sweep.spec.search, run.sweep.spec
    assert search is not None
    study = new_study(search) if search.samples else None
    asked = [_ask(run, study, k) for k in range(_trials(run))]
    trials: dict[str, Variant] = {}
    for v, _ in asked:
        trials.setdefault(v.variant_id, v)
    stored = {vid: run.stored(vid) for vid in trials}
    for vid, v in trials.items():
        run.link(v, stored[vid][0] in ("finished", STOPPED))
    max_epochs = int(spec.sweep.values("epochs")[0])
    alive, pruned_at = list(trials), dict[str, int]()
    values: dict[str, dict[int, float | None]] = {vid: {} for vid in trials}
    for i, epoch in enumerate(rung_epochs(search.grace_period, search.reduction_factor, max_epochs), start=1):
        for vid, value in _rung_values(run, [trials[vid] for vid in alive], stored, epoch, i).items():
            values[vid][epoch] = value
        alive = [vid for vid in alive if values[vid][epoch] is not None]  # a failed trial is stored as failed
        if not alive:
            return
        decision = decide(epoch, i, {vid: _value(values[vid][epoch]) for vid in alive}, search.reduction_factor)
        run.progress.info(f"rung {i} (epoch {epoch}): kept {', '.join(trials[v].name for v in decision.kept)}")
        for vid, reason in decision.stopped.items():
            pruned_at[vid] = epoch
            if stored[vid][0] not in (STOPPED, *TRAINED):  # a trained result of an earlier run stays as it is
                _store_stopped(run, trials[vid], epoch, reason)
        alive = decision.kept
    todo = [trials[vid] for vid in alive if stored[vid][0] != "finished"]
    for v in todo:
        run.progress.info(f"search: training {v.name} ({v.variant_id}) to epoch {max_epochs}")
    done = _train_all(run, todo) if todo else {}
    finals: dict[str, float] = {}
    for vid in alive:
        status, log, step = stored[vid]
        if vid in done:
            run.store.set_link_reused(run.run_id, vid, False)
            run.store.release()
            result = done[vid]
            log, step, status = result.train_log, result.variant.scored_step, result.variant.status
        finals[vid] = final_value(log, step) if status in TRAINED else math.nan
    if study is not None:
        for v, trial in asked:
            assert trial is not None
            vid = v.variant_id
            at = pruned_at.get(vid)
            value = values[vid].get(at) if at is not None else finals.get(vid)
            _tell(study, trial, _value(value), at)


def _rung_values(run: SearchRun, live: list[Variant], stored: Mapping[str, tuple[str | None, list[LogPoint], int | None]],
                 epoch: int, rung: int) -> dict[str, float | None]:
    """The live trials' validation losses at the end of `epoch`: from a stored log, a checkpoint, or by training
    (one after another here, or all at once as Ray tasks under --executor ray); None where training failed (then the
    trial is stored as failed, with the error)."""
    out: dict[str, float | None] = {}
    todo = []
    for v in live:
        status, log, _ = stored[v.variant_id]
        value = rung_train.value_at(log, epoch) if status in (*TRAINED, STOPPED) else None
        if value is not None:
            out[v.variant_id] = value
        else:
            todo.append(v)
    if run.executor == "ray" and todo:
        from harness.sweep.ray_executor import map_shared

        run.progress.info(f"rung {rung}: training {len(todo)} trials to epoch {epoch} as Ray tasks")
        calls = [(v, partial(rung_train.train_to, run.task(v), epoch)) for v in todo]
        for v, back in map_shared(run.sweep, calls, run.out_dir, run.progress):
            out[v.variant_id] = _landed(run, v, back, epoch)
        return out
    for v in todo:
        run.progress.info(f"rung {rung}: training {v.name} ({v.variant_id}) to epoch {epoch}")
        try:
            got: list[LogPoint] | BaseException = rung_train.train_to(run.task(v), epoch, run.progress)
        except Exception as exc:  # noqa: BLE001 - one trial's failure must not end the search
            got = exc
        out[v.variant_id] = _landed(run, v, got, epoch)
    return out


def _landed(run: SearchRun, v: Variant, got: list[LogPoint] | BaseException, epoch: int) -> float | None:
    """A trial's rung training as it came back: its validation loss at `epoch`, or None after storing it failed."""
    if not isinstance(got, BaseException):
        return _value(rung_train.value_at(got, epoch))
    if not isinstance(got, Exception):
        raise got  # KeyboardInterrupt, SystemExit: the search stops here
    trace = "".join(traceback.format_exception(got, limit=3))
    run.store_result(v, failed_result(run.task(v).planned(), f"{got.__class__.__name__}: {got}",
                                      RunParts(worker=worker(), traceback=trace)))
    return None


def _value(x: float | None) -> float:
    return math.nan if x is None else x


def _store_stopped(run: SearchRun, v: Variant, epoch: int, reason: str) -> None:
    """A stopped trial: its train log up to the rung, its stop_reason, the seconds it trained, and its scores on the
    suites that read no test data (divergence: its losses up to the rung), unless search.score_stopped is false.
    No suite reads the test set for a variant the search stopped."""
    task = run.task(v)
    log = [r for r in rung_train.disk_log(task) if r.epoch is None or r.epoch <= epoch + 1e-3]
    row = finish_row(task.planned(), RunParts(worker=worker()), STOPPED)
    row = replace(row, stop_reason=reason, train_seconds=rung_train.earlier_seconds(task))
    run.store_result(v, VariantResult(row, log, stopped_scores(run.sweep.spec, task, log, run.progress)))
    rung_train.discard(task, keep=run.sweep.spec.train.keep_checkpoints == "all")


def stopped_scores(spec: ExperimentSpec, task: VariantTask, log: list[LogPoint], progress: Progress
                   ) -> list[SuiteResult]:
    """A stopped variant's validation-only suites (no model is loaded: they read its train log)."""
    from harness.scorers.registry import validation_only
    from harness.scorers.run import score_suites

    search = spec.search
    suites = [s for s in task.suites if validation_only(s.kind)]
    if search is None or not search.score_stopped or not suites:
        return []
    return score_suites(None, task.variant, suites, [], log, progress)  # type: ignore[arg-type]  # reads no model


def start_search(sweep: PreparedSweep, plan: list[Variant], store: Store, run_id: str, out_dir: Path, executor: str,
                 progress: Progress, store_result: StoreResult, linked: list[str], reused: list[bool]) -> None:
    """Run the search of a prepared sweep whose plain variants (base) the runner has handled; plan: a grid search's
    trials (`searched`)."""
    identity = (sweep.model.identity, sweep.data.fingerprints, [s.identity() for s in sweep.suites])
    run_search(SearchRun(sweep, store, run_id, out_dir, executor, progress, store_result, list(linked), list(reused),
                         plan, identity))


def searched(spec: ExperimentSpec, variants: list[Variant]) -> list[Variant]:
    """The plan's variants the search runs (a grid search's trials); none for a sweep without a driven search."""
    return [v for v in variants if v.trains] if spec.search is not None and spec.search.drives else []
