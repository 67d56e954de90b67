"""Managed fine-tuning (OpenAI, Azure OpenAI) and API-scored models: check data and estimate cost -> upload ->
create one job per variant -> follow every job together -> score the fine-tuned models (and `base` or `given`
model ids) through chat completions.

Everything provider-specific goes through the `ManagedBackend` protocol (harness/managed/backend.py); this file
only schedules. Every outcome is an event on one queue (an info line, a job row to store, or a finished variant's
result) that the sweep's scheduler drains; nothing here touches the store. A restarted harness re-attaches to the
job ids it is handed (`stored_jobs`, read from the store by the runner).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError
from harness.managed import jobs as jobs_api
from harness.managed.backend import JobRequest, ManagedBackend, ManagedSettings, ScoringUnavailable
from harness.managed.client import OpenAIChatModel, describe_error, make_client, scrub
from harness.managed.data import write_upload
from harness.managed.lifecycle import refusal_detail
from harness.managed.providers import make_backend
from harness.models.judge_model import open_judge
from harness.models.prompted import for_variant
from harness.models.resolve import MANAGED_KINDS, ModelRef
from harness.progress import Quiet
from harness.results import (
    LogPoint,
    RemoteOutcome,
    RemoteRecord,
    RunParts,
    VariantResult,
    VariantRow,
    failed_result,
    planned_row,
    scored_result,
)
from harness.scorers.run import base_references, score_suites
from harness.scores import JSONDict
from harness.spec.plan import Variant
from harness.spec.schema import AzureSpec
from harness.train.remote_types import Done, FollowedJob, Info, JobUpdate, RemoteEvent, RemoteInputs

if TYPE_CHECKING:
    from harness.managed.backend import FineTuningJob
    from harness.managed.client import OpenAI  # the openai-compatible client (only harness.managed imports openai)

MAX_POLL_ERRORS = 30  # consecutive failed polls (with backoff, about half an hour) before a variant gives up


def remote_model(model: ModelRef, v: Variant) -> tuple[str, str]:
    """(model kind, model id) a variant is scored through, before any training: a `given` checkpoint's own prefix
    (openai, azure-openai, openai-compatible), else the spec's model."""
    if v.method == "given" and v.checkpoint and v.is_remote:
        kind, _, name = v.checkpoint.partition(":")
        return kind, name
    return model.kind, model.location


class _Forward(Quiet):
    """Progress for worker threads: each message becomes an Info event."""

    def __init__(self, q: queue.Queue[RemoteEvent]):
        super().__init__()
        self.q = q

    def info(self, msg: str) -> None:
        self.q.put(Info(scrub(msg)))


class RemoteJobs:
    """Submit every remote variant first, then follow the jobs in a thread and score results on a small pool."""

    def __init__(self, inputs: RemoteInputs, stored_jobs: Mapping[str, Mapping[str, object]] | None = None):
        self.x = inputs
        self.opts = inputs.train.openai
        self.stored_jobs = stored_jobs or {}
        self.q: queue.Queue[RemoteEvent] = queue.Queue()
        self.fwd = _Forward(self.q)
        self.backends: dict[str, ManagedBackend] = {}
        self.compatible: OpenAI | None = None  # the openai-compatible server's client
        self.files: dict[str, str | None] = {}
        self.active: list[FollowedJob] = []
        self.pending: set[str] = set()  # variant ids whose result has not been handed out yet
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="harness-openai-score")
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._follow, name="harness-openai-follow", daemon=True)
        self.base_scored = threading.Event()  # set once base is scored, where suites compare with its outputs

    def backend(self, kind: str) -> ManagedBackend:
        """The provider of a managed model kind (the spec's own, or a `given` checkpoint's)."""
        if kind not in self.backends:
            x = self.x
            # base_url belongs to openai-compatible models; with an openai: model it is refused (never ignored)
            settings = ManagedSettings(x.model.location if x.model.kind == kind else "", x.train.openai,
                                       x.azure or AzureSpec(), x.spec_name, x.where,
                                       x.base_url if x.model.kind == kind == "openai" else None)
            self.backends[kind] = make_backend(kind, settings)
        return self.backends[kind]

    @property
    def trainer(self) -> ManagedBackend:
        """The provider that runs this sweep's fine-tuning jobs (the spec model's)."""
        return self.backend(self.x.model.kind)

    def connect(self, kind: str) -> None:
        """Make the client for a kind now, so configuration errors surface before any thread starts."""
        if kind in MANAGED_KINDS:
            self.backend(kind).connect()
        elif self.compatible is None:
            self.compatible = make_client(kind, self.x.base_url)

    def _planned(self, v: Variant) -> VariantRow:
        return planned_row(v, self.x.model.identity, self.x.train)

    # -- start (the scheduler's thread) --------------------------------------------------------------------
    def start(self, variants: list[Variant]) -> None:
        """Check the data, submit every fine-tuning job, queue scoring of model ids, start following."""
        self.pending = {v.variant_id for v in variants}
        if not (any(v.method == "base" for v in variants) and any(s.options.get("pairwise_against")
                                                                  for s in self.x.suites)):
            self.base_scored.set()  # nothing waits for base (base is queued first, so waiting never starves it)
        trainees = [v for v in variants if v.method == "openai"]
        estimates = self._estimates(trainees) if trainees else {}
        if trainees:
            self.connect(self.x.model.kind)
        for v in trainees:
            try:
                self.submit(v, estimates.get(v.variant_id, {}))
            except HarnessInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a refused job fails its variant; the sweep goes on
                self._refused(v, exc)
        for v in variants:
            if v.method != "openai":
                self.connect(remote_model(self.x.model, v)[0])  # configuration errors surface now, not in a thread
                self.pool.submit(self.score_only, v)
        if self.active:
            self.thread.start()

    def _estimates(self, trainees: list[Variant]) -> dict[str, JSONDict]:
        b = self.trainer
        problems = b.check_data(self.x.data.train, self.x.data.validation)
        if problems:
            raise HarnessInputError(problems, title=f"the training data breaks {b.label}'s fine-tuning rules "
                                    f"({self.x.model.location})")
        est = b.estimate(self.x.data.train, trainees)
        for line in est.lines():
            self.fwd.info(line)
        return {e.variant_id: e.to_json() for e in est.variants}

    def _refused(self, v: Variant, exc: Exception) -> None:
        """A job creation that failed: the clear refusal when the provider will not fine-tune, else the API error."""
        b = self.trainer
        clear = b.refusal(exc)
        error = clear or f"could not start the fine-tuning job: {describe_error(exc)}"
        record = RemoteRecord(provider=b.kind, refusal=refusal_detail(b.kind, exc) if clear else None)
        self.q.put(Done(v, failed_result(self._planned(v), scrub(error), RunParts(remote=RemoteOutcome(record)))))

    def submit(self, v: Variant, est: JSONDict) -> None:
        """Re-attach to this variant's stored job, or find the one made earlier, or upload and create it."""
        b = self.trainer
        stored = self.stored_jobs.get(v.variant_id)
        job, how = None, "created"
        if stored and stored.get("job_id") and stored.get("provider", b.kind) == b.kind:
            job = b.retrieve_job(str(stored["job_id"]))
            how = "re-attached to stored"
            if job is not None and job.status in jobs_api.FAILED:
                job = None  # a rerun retries a failed job
        if job is None:
            job = b.find_job(v.variant_id)
            how = "found earlier"
        if job is None:
            request = JobRequest(v.variant_id, v.name, v.epochs, v.seed, str(self._file("train")),
                                 self._file("validation") if self.x.data.validation else None, self.x.run_id)
            job, created = b.create_job(request, base_delay=max(0.5, self.opts.poll_seconds))
            how = "created" if created else "found (after a lost answer)"
        stored_detail = stored.get("detail") if stored and stored.get("job_id") == job.id else None
        detail: JSONDict = stored_detail if isinstance(stored_detail, dict) else \
            json.loads(stored_detail or "{}") if isinstance(stored_detail, str | None) else {}
        events = detail.get("events")
        state = FollowedJob(v, job.id, job.status, [e for e in events if isinstance(e, dict)] if isinstance(
            events, list) else [], est)
        self._save_job(state, job)
        self.fwd.info(f"{v.name} ({v.variant_id}): {how} fine-tuning job {job.id} on {self.trainer.label} ({job.status})")
        self.active.append(state)

    def _file(self, split: str) -> str | None:
        """Upload a split once per sweep (purpose fine-tune; the same content is one file); the sent JSONL is kept
        in the run folder."""
        if split not in self.files:
            fp = self.x.data.fingerprints.get(split, "")[:12]
            path = self.x.out_dir / "openai-upload" / f"{split}-{fp}.jsonl"
            write_upload(getattr(self.x.data, split), path)
            self.files[split] = self.trainer.upload(path)
            self.fwd.info(f"uploaded {split} data ({path.stat().st_size:,} bytes) as {self.files[split]}")
        return self.files[split]

    def _save_job(self, state: FollowedJob, job: FineTuningJob) -> None:
        """Hand the job's row to the scheduler (the runner stores it)."""
        detail = {"model": job.model, "suffix": getattr(job, "suffix", None), "metadata": job.metadata,
                  "training_file": job.training_file, "validation_file": job.validation_file,
                  "hyperparameters": job.hyperparameters.model_dump() if job.hyperparameters else None,
                  "trained_tokens": job.trained_tokens, "estimate": state.estimate, "events": state.events,
                  "error": jobs_api.job_error(job) if job.status in jobs_api.FAILED else None}
        self.q.put(JobUpdate({"variant_id": state.variant.variant_id, "provider": self.trainer.kind, "job_id": job.id,
                              "status": scrub(job.status), "fine_tuned_model": job.fine_tuned_model,
                              "detail": scrub(json.dumps(detail, default=str))}))

    # -- following (the follower thread) ---------------------------------------------------------------------
    def _follow(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                due = [s for s in self.active if s.next_poll <= time.monotonic()]
            for state in due:
                if self.stop.is_set():
                    return
                try:
                    self._poll(state)
                except Exception as exc:  # noqa: BLE001 - never leave the scheduler waiting on a dead thread
                    self._done_failed(state, f"following job {state.job_id} failed: "
                                      f"{exc.__class__.__name__}: {exc}", None)
            with self.lock:
                if not self.active:
                    return
                wake = min(s.next_poll for s in self.active)
            self.stop.wait(max(0.0, min(wake - time.monotonic(), 5.0)))

    def _poll(self, state: FollowedJob) -> None:
        v = state.variant
        b = self.trainer
        try:
            job = b.get_job(state.job_id)
            new = b.new_events(state.job_id, {str(e["id"]) for e in state.events})
        except Exception as exc:  # noqa: BLE001 - transient trouble backs off; anything else ends this variant
            self._poll_failed(state, exc)
            return
        state.errors = 0
        state.events += new
        if new or job.status != state.status:
            state.status = job.status
            self._save_job(state, job)
            progress = jobs_api.latest_metrics(state.events)
            self.fwd.info(f"{v.name}: job {job.id} {job.status}" + (f", {progress}" if progress else ""))
        if job.status == jobs_api.SUCCEEDED:
            self._retire(state)
            self.pool.submit(self._finish_trained, state, job)
        elif job.status in jobs_api.FAILED:
            err = jobs_api.job_error(job)
            self._retire(state)
            param = f" [param: {err['param']}]" if err["param"] else ""
            self._done_failed(state, f"fine-tuning job {job.id} {job.status}: {err['code']}: "
                              f"{err['message']}{param}", err, retire=False)
        else:
            if job.status not in b.active_statuses and job.status not in state.seen_unknown:
                state.seen_unknown.add(job.status)
                self.fwd.info(f"{v.name}: job {job.id} reports unknown status {job.status!r}; treated as running")
            state.next_poll = time.monotonic() + self.opts.poll_seconds

    def _poll_failed(self, state: FollowedJob, exc: Exception) -> None:
        state.errors += 1
        if not jobs_api.transient(exc) or state.errors >= MAX_POLL_ERRORS:
            self._done_failed(state, f"could not follow job {state.job_id}: {describe_error(exc)} "
                              "(the job id is stored; rerun the sweep to re-attach)", None)
            return
        delay = jobs_api.backoff(state.errors - 1, max(self.opts.poll_seconds, 0.5), exc, cap=60.0)
        self.fwd.info(f"{state.variant.name}: API trouble following {state.job_id} ({describe_error(exc)}); "
                      f"retrying in {delay:.1f}s")
        state.next_poll = time.monotonic() + delay

    def _retire(self, state: FollowedJob) -> None:
        with self.lock:
            if state in self.active:
                self.active.remove(state)

    def _done_failed(self, state: FollowedJob, error: str, job_error: JSONDict | None,
                     retire: bool = True) -> None:
        if retire:
            self._retire(state)
        record = RemoteRecord(job_id=state.job_id, error=job_error, estimate=state.estimate)
        self.q.put(Done(state.variant, failed_result(self._planned(state.variant), scrub(error),
                                                     RunParts(remote=RemoteOutcome(record)))))

    # -- scoring (the scoring pool) --------------------------------------------------------------------------
    def _finish_trained(self, state: FollowedJob, job: FineTuningJob) -> None:
        """Checkpoint metrics -> train_log, then score the fine-tuned model on every suite."""
        v = state.variant
        try:
            if not job.fine_tuned_model:
                raise RuntimeError(f"fine-tuning job {job.id} succeeded but names no fine-tuned model")
            checkpoints = self.trainer.checkpoints(job.id)
            hp = job.hyperparameters.model_dump() if job.hyperparameters else {}
            n_epochs = hp.get("n_epochs") if isinstance(hp.get("n_epochs"), int) else v.epochs
            log = jobs_api.train_log_rows(state.events, checkpoints, n_epochs)
            seconds, tokens = float((job.finished_at or time.time()) - job.created_at), job.trained_tokens
            record = RemoteRecord(job_id=job.id, hyperparameters=hp, training_file=job.training_file,
                                  validation_file=job.validation_file, estimate=state.estimate, events=len(state.events),
                                  checkpoints=[{"step": c.step, "model": c.model} for c in checkpoints])
            outcome = RemoteOutcome(record, job.fine_tuned_model, seconds, tokens,
                                    tokens / seconds if tokens and seconds > 0 else None)
            result = self._score(v, self.trainer.kind, job.fine_tuned_model, log, outcome)
        except Exception as exc:  # noqa: BLE001 - one variant's failure must not end the sweep
            result = failed_result(self._planned(v), scrub(f"{exc.__class__.__name__}: {exc}"))
        self.q.put(Done(v, result))

    def score_only(self, v: Variant) -> None:
        """base / given model ids: no training, only scoring."""
        kind, model = remote_model(self.x.model, v)
        try:
            result = self._score(v, kind, model, [], RemoteOutcome(RemoteRecord(model=model, endpoint=kind), model))
        except Exception as exc:  # noqa: BLE001
            result = failed_result(self._planned(v), scrub(f"{exc.__class__.__name__}: {exc}"))
        self.q.put(Done(v, result))

    def _chat_model(self, v: Variant, kind: str, model: str) -> tuple[OpenAIChatModel, str]:
        """The chat model a variant is scored through, and what its requests go to (a model id or a deployment)."""
        if kind in MANAGED_KINDS:
            b = self.backend(kind)
            target = b.target(v.method, (v.name, v.variant_id), model)
            return b.chat_model(target, v.name), target
        self.connect(kind)
        assert self.compatible is not None  # connect made it
        return OpenAIChatModel(self.compatible, model, name=v.name, compatible=True), model

    def _score(self, v: Variant, kind: str, model: str, log: list[LogPoint], outcome: RemoteOutcome) -> VariantResult:
        """Score a model id; suites that compare with base's outputs (pairwise judges) wait for base's scoring."""
        while v.method != "base" and not self.base_scored.wait(1.0):
            if self.stop.is_set():
                return failed_result(self._planned(v), "interrupted while waiting for base's outputs", train_log=log)
        try:
            return self._score_now(v, kind, model, log, outcome)
        finally:
            if v.method == "base":
                self.base_scored.set()

    def _score_now(self, v: Variant, kind: str, model: str, log: list[LogPoint], outcome: RemoteOutcome
                   ) -> VariantResult:
        planned, record = self._planned(v), replace(outcome.record, provider=kind)
        try:
            chat, target = self._chat_model(v, kind, model)
        except ScoringUnavailable as exc:  # trained (or configured) but nothing serves it yet: say what to do
            return failed_result(planned, scrub(str(exc)), RunParts(remote=replace(outcome, record=record)), train_log=log)
        parts = RunParts(remote=replace(outcome, record=replace(record, deployment=target if target != model else None)))
        self.fwd.info(f"{v.name}: scoring {model} through chat completions ({kind}"
                      + (f", deployment {target})" if target != model else ")"))
        t0 = time.perf_counter()
        try:
            lm, prompt = for_variant(chat, v, self.x.data.train)
            parts = replace(parts, prompt=prompt)
            suites = score_suites(lm, v, self.x.suites, self.x.data.test, log, self.fwd,
                                  train=self.x.data.train, open_judge=open_judge, base_outputs=self.x.base_outputs)
        except Exception as exc:  # noqa: BLE001
            return failed_result(planned, scrub(f"scoring {model} failed: {exc}"), parts, train_log=log)
        parts = replace(parts, usage=lm.usage.per_request(), score_seconds=time.perf_counter() - t0)
        for s in suites:
            for e in s.samples:
                e.output = scrub(e.output) or ""
        if v.method == "base" and self.x.base_outputs is not None:
            self.x.base_outputs.update(base_references(self.x.suites, suites))
        return scored_result(planned, parts, log, suites)  # incomplete where a suite failed; the others kept

    # -- handing out events (the scheduler's thread) ---------------------------------------------------------
    def events(self, *, block: bool) -> list[RemoteEvent]:
        """Queued events; with block, wait (in short slices) until at least one is there."""
        out: list[RemoteEvent] = []
        while True:
            try:
                out.append(self.q.get(timeout=1.0) if block and not out else self.q.get_nowait())
            except queue.Empty:
                if block and not out:
                    continue
                break
        for e in out:
            if isinstance(e, Done):
                self.pending.discard(e.variant.variant_id)
        return out

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
