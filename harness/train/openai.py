"""OpenAI backend: check data and estimate cost -> upload -> create one job per variant -> follow every job
together -> score the fine-tuned models (and base, and `given` model ids) through chat completions.

Local variants of the same sweep (`then_local`) train here, one at a time, while a follower thread polls the
remote jobs; results come back to this generator's thread, which alone touches the store (job rows) and
yields (variant, result) to the runner, which writes them. A restarted harness re-attaches to the job ids
stored in the `jobs` table.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.openai import jobs as jobs_api
from harness.errors import HarnessInputError
from harness.openai.data import CostEstimate, check_examples, estimate_cost, write_upload
from harness.openai.client import OpenAIChatModel, describe_error, make_client, scrub
from harness.spec.plan import Variant
from harness.progress import Progress, Quiet
from harness.store.db import VariantResult
from harness.sweep.execute import execute_variant, score_suites, variant_row

MAX_SUFFIX = 64  # the API's limit on a fine-tuned model name's suffix
MAX_POLL_ERRORS = 30  # consecutive failed polls (with backoff, about half an hour) before a variant gives up


def remote_model(sweep: Any, v: Variant) -> tuple[str, str]:
    """(client kind, model id) a variant is scored through, before any training."""
    if v.method == "given" and v.checkpoint and v.checkpoint.startswith(("openai:", "openai-compatible:")):
        kind, _, model = v.checkpoint.partition(":")
        return kind, model
    return sweep.model.kind, sweep.model.location


def cost_estimate(sweep: Any) -> CostEstimate | None:
    """The CostEstimate for the sweep's `openai` variants, or None when it trains none."""
    trainees = [v for v in sweep.variants if v.method == "openai"]
    if not trainees:
        return None
    return estimate_cost(sweep.model.location, sweep.data.train, [v.to_dict() for v in trainees],
                         sweep.spec.train.openai.price_per_million_tokens)


class _Forward(Quiet):
    """Progress for worker threads: messages go to the generator's thread, which prints them."""

    def __init__(self, q: queue.Queue[tuple[Any, ...]]):
        super().__init__()
        self.q = q

    def info(self, msg: str) -> None:
        self.q.put(("info", scrub(msg)))


class _Remote:
    """The remote half of a sweep: clients, submissions and the follower thread."""

    def __init__(self, sweep: Any, out_dir: Path, store: Any, run_id: str | None, progress: Progress):
        self.sweep, self.out_dir, self.store, self.run_id, self.progress = sweep, out_dir, store, run_id, progress
        self.opts = sweep.spec.train.openai
        self.q: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.fwd = _Forward(self.q)
        self.clients: dict[str, Any] = {}
        self.files: dict[str, str | None] = {}
        self.active: list[dict[str, Any]] = []  # followed jobs: variant, job_id, status, events, errors, next_poll
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="harness-openai-score")
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._follow, name="harness-openai-follow", daemon=True)

    def client(self, kind: str) -> Any:
        if kind not in self.clients:
            # base_url belongs to openai-compatible models; with an openai: model it is refused (never ignored)
            applies = kind == "openai-compatible" or self.sweep.model.kind == "openai"
            self.clients[kind] = make_client(kind, self.sweep.spec.base_url if applies else None)
        return self.clients[kind]

    # -- submission (generator thread) ----------------------------------------------------------------
    def submit(self, v: Variant, est: dict[str, Any]) -> None:
        """Re-attach to this variant's job, or find the one made earlier, or upload and create it."""
        client = self.client("openai")
        stored = self.store.job(v.variant_id) if self.store is not None else None
        job, how = None, "created"
        if stored and stored.get("job_id"):
            try:
                job = client.fine_tuning.jobs.retrieve(stored["job_id"])
                how = "re-attached to stored"
            except Exception as exc:
                if getattr(exc, "status_code", None) != 404:
                    raise
            if job is not None and job.status in jobs_api.FAILED:
                job = None  # a rerun retries a failed job
        if job is None:
            job = jobs_api.find_job(client, v.variant_id)
            how = "found earlier"
        if job is None:
            job, created = jobs_api.create_job(client, self._create_params(v), v.variant_id,
                                               base_delay=max(0.5, self.opts.poll_seconds))
            how = "created" if created else "found (after a lost answer)"
        stored_detail = stored.get("detail") if stored and stored.get("job_id") == job.id else None
        detail = json.loads(stored_detail) if stored_detail else {}  # stored events are not fetched again
        state = {"variant": v, "job_id": job.id, "status": job.status, "events": detail.get("events", []),
                 "errors": 0, "next_poll": 0.0, "estimate": est, "seen_unknown": set()}
        self._save_job(state, job)
        self.progress.info(f"{v.name} ({v.variant_id}): {how} fine-tuning job {job.id} ({job.status})")
        self.active.append(state)

    def _create_params(self, v: Variant) -> dict[str, Any]:
        hp: dict[str, Any] = {"n_epochs": v.epochs}
        if self.opts.learning_rate_multiplier is not None:
            hp["learning_rate_multiplier"] = self.opts.learning_rate_multiplier
        if self.opts.batch_size is not None:
            hp["batch_size"] = self.opts.batch_size
        params: dict[str, Any] = {
            "model": self.sweep.model.location, "training_file": self._file("train"),
            "suffix": self.opts.suffix or _suffix(self.sweep.spec.name),
            "metadata": {"variant_id": v.variant_id, "harness_run": self.run_id or "", "harness": "finetune-harness"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        }
        if v.seed is not None:
            params["seed"] = v.seed
        if self.sweep.data.validation:
            params["validation_file"] = self._file("validation")
        return params

    def _file(self, split: str) -> str | None:
        """Upload a split once per sweep (purpose fine-tune); the sent JSONL is kept in the run folder."""
        if split not in self.files:
            fp = self.sweep.data.fingerprints.get(split, "")[:12]
            path = self.out_dir / "openai-upload" / f"{split}-{fp}.jsonl"
            write_upload(getattr(self.sweep.data, split), path)
            up = self.client("openai").files.create(file=(path.name, path.read_bytes(), "application/jsonl"),
                                                    purpose="fine-tune")
            self.progress.info(f"uploaded {split} data ({path.stat().st_size:,} bytes) as {up.id}")
            self.files[split] = up.id
        return self.files[split]

    def _save_job(self, state: dict[str, Any], job: Any) -> None:
        detail = {"model": job.model, "suffix": getattr(job, "suffix", None), "metadata": job.metadata,
                  "training_file": job.training_file, "validation_file": job.validation_file,
                  "hyperparameters": job.hyperparameters.model_dump() if job.hyperparameters else None,
                  "trained_tokens": job.trained_tokens, "estimate": state["estimate"], "events": state["events"],
                  "error": jobs_api.job_error(job) if job.status in jobs_api.FAILED else None}
        row = {"variant_id": state["variant"].variant_id, "provider": "openai", "job_id": job.id,
               "status": scrub(job.status), "fine_tuned_model": job.fine_tuned_model,
               "detail": scrub(json.dumps(detail, default=str))}
        if threading.current_thread().name.startswith("harness-openai"):  # worker: the generator's thread stores it
            self.q.put(("job", row))
        elif self.store is not None:
            self.store.upsert_job(row)

    # -- following (follower thread) ----------------------------------------------------------------------
    def _follow(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                due = [s for s in self.active if s["next_poll"] <= time.monotonic()]
            for state in due:
                if self.stop.is_set():
                    return
                try:
                    self._poll(state)
                except Exception as exc:  # noqa: BLE001 - never leave the generator waiting on a dead thread
                    self._done_failed(state, f"following job {state['job_id']} failed: "
                                      f"{exc.__class__.__name__}: {exc}", None)
            with self.lock:
                if not self.active:
                    return
                wake = min(s["next_poll"] for s in self.active)
            self.stop.wait(max(0.0, min(wake - time.monotonic(), 5.0)))

    def _poll(self, state: dict[str, Any]) -> None:
        v: Variant = state["variant"]
        client = self.client("openai")
        try:
            job = client.fine_tuning.jobs.retrieve(state["job_id"])
            new = jobs_api.fetch_new_events(client, state["job_id"], {e["id"] for e in state["events"]})
        except Exception as exc:  # noqa: BLE001 - transient trouble backs off; anything else ends this variant
            state["errors"] += 1
            if not jobs_api.transient(exc) or state["errors"] >= MAX_POLL_ERRORS:
                self._done_failed(state, f"could not follow job {state['job_id']}: {describe_error(exc)} "
                                  "(the job id is stored; rerun the sweep to re-attach)", None)
                return
            delay = jobs_api.backoff(state["errors"] - 1, max(self.opts.poll_seconds, 0.5), exc, cap=60.0)
            self.fwd.info(f"{v.name}: API trouble following {state['job_id']} ({describe_error(exc)}); "
                          f"retrying in {delay:.1f}s")
            state["next_poll"] = time.monotonic() + delay
            return
        state["errors"] = 0
        state["events"] += new
        if new or job.status != state["status"]:
            state["status"] = job.status
            self._save_job(state, job)
            progress = jobs_api.latest_metrics(state["events"])
            self.fwd.info(f"{v.name}: job {job.id} {job.status}" + (f", {progress}" if progress else ""))
        if job.status == jobs_api.SUCCEEDED:
            self._retire(state)
            self.pool.submit(self._finish_trained, state, job)
        elif job.status in jobs_api.FAILED:
            err = jobs_api.job_error(job)
            self._retire(state)
            param = f" [param: {err['param']}]" if err["param"] else ""
            self._done_failed(state, f"fine-tuning job {job.id} {job.status}: {err['code']}: "
                              f"{err['message']}{param}", {"error": err, "job_id": job.id}, retire=False)
        else:
            if job.status not in ("validating_files", "queued", "running") and job.status not in state["seen_unknown"]:
                state["seen_unknown"].add(job.status)
                self.fwd.info(f"{v.name}: job {job.id} reports unknown status {job.status!r}; treated as running")
            state["next_poll"] = time.monotonic() + self.opts.poll_seconds

    def _retire(self, state: dict[str, Any]) -> None:
        with self.lock:
            if state in self.active:
                self.active.remove(state)

    def _done_failed(self, state: dict[str, Any], error: str, openai_detail: dict[str, Any] | None,
                     retire: bool = True) -> None:
        if retire:
            self._retire(state)
        row = variant_row(self.sweep.task(state["variant"], self.out_dir))
        row.update(status="failed", error=scrub(error), artifact=None)
        row["config"] = {**row["config"], "openai": {"job_id": state["job_id"], **(openai_detail or {}),
                                                     "estimate": state["estimate"]}}
        self.q.put(("result", state["variant"], VariantResult(row)))

    def _finish_trained(self, state: dict[str, Any], job: Any) -> None:
        """Checkpoint metrics -> train_log, then score the fine-tuned model on every suite."""
        v: Variant = state["variant"]
        try:
            client = self.client("openai")
            checkpoints = jobs_api.fetch_checkpoints(client, job.id)
            hp = job.hyperparameters.model_dump() if job.hyperparameters else {}
            n_epochs = hp.get("n_epochs") if isinstance(hp.get("n_epochs"), int) else v.epochs
            log = jobs_api.train_log_rows(state["events"], checkpoints, n_epochs)
            seconds = float((job.finished_at or time.time()) - job.created_at)
            tokens = job.trained_tokens
            stats = {"artifact": job.fine_tuned_model, "train_tokens": tokens, "train_seconds": seconds,
                     "tokens_per_second": tokens / seconds if tokens and seconds > 0 else None}
            info = {"job_id": job.id, "hyperparameters": hp,
                    "training_file": job.training_file, "validation_file": job.validation_file,
                    "estimate": state["estimate"], "events": len(state["events"]),
                    "checkpoints": [{"step": c["step"], "model": c["model"]} for c in checkpoints]}
            result = self._score(v, "openai", job.fine_tuned_model, log, stats, info)
        except Exception as exc:  # noqa: BLE001 - one variant's failure must not end the sweep
            row = variant_row(self.sweep.task(v, self.out_dir))
            row.update(status="failed", error=scrub(f"{exc.__class__.__name__}: {exc}"))
            result = VariantResult(row)
        self.q.put(("result", v, result))

    def score_only(self, v: Variant) -> None:
        """base / given model ids: no training, only scoring (runs on the scoring pool)."""
        kind, model = remote_model(self.sweep, v)
        try:
            result = self._score(v, kind, model, [], {"artifact": model}, {"model": model, "endpoint": kind})
        except Exception as exc:  # noqa: BLE001
            row = variant_row(self.sweep.task(v, self.out_dir))
            row.update(status="failed", error=scrub(f"{exc.__class__.__name__}: {exc}"))
            result = VariantResult(row)
        self.q.put(("result", v, result))

    def _score(self, v: Variant, kind: str, model: str, log: list[dict[str, Any]], stats: dict[str, Any],
               info: dict[str, Any]) -> VariantResult:
        task = self.sweep.task(v, self.out_dir)
        row = variant_row(task)
        row.update(stats)
        row["config"] = {**row["config"], "openai": info}
        self.fwd.info(f"{v.name}: scoring {model} through chat completions ({kind})")
        lm = OpenAIChatModel(self.client(kind), model, name=v.name, compatible=kind == "openai-compatible")
        t0 = time.perf_counter()
        try:
            scores, examples, findings = score_suites(lm, task, log, self.fwd)
        except Exception as exc:  # noqa: BLE001
            row.update(status="failed", error=scrub(f"scoring {model} failed: {exc}"))
            return VariantResult(row, log)
        row.update(status="finished", score_seconds=time.perf_counter() - t0)
        for e in examples:
            e["output"] = scrub(e.get("output"))
        return VariantResult(row, log, scores, examples, findings)


def _suffix(name: str) -> str:
    """A model-name suffix from the spec name: lower-case letters, digits and '-', at most 64 characters."""
    s = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower()).strip("-")
    return (s or "harness")[:MAX_SUFFIX]


def execute_remote(sweep: Any, variants: list[Variant], out_dir: Path, progress: Progress | None = None, *,
                   then_local: list[Variant] | None = None, store: Any = None, run_id: str | None = None
                   ) -> Iterator[tuple[Variant, VariantResult]]:
    """Submit every remote job first, then train local variants one by one while following the jobs;
    yield (variant, result) as each finishes (`base` first when it is among them)."""
    progress = progress or Quiet()
    then_local = list(then_local or [])
    trainees = [v for v in variants if v.method == "openai"]
    estimates: dict[str, dict[str, Any]] = {}
    if trainees:
        problems = check_examples(sweep.data.train, sweep.data.validation, sweep.model.location)
        suffix = sweep.spec.train.openai.suffix
        if suffix is not None and not 0 < len(suffix) <= MAX_SUFFIX:
            problems.append(f"{sweep.spec.source_path}: key 'train.openai.suffix': {len(suffix)} characters; "
                            f"the API takes 1 to {MAX_SUFFIX}")
        if problems:
            raise HarnessInputError(problems, title=f"the training data breaks OpenAI's fine-tuning rules "
                                    f"({sweep.model.location})")
        est = cost_estimate(sweep)
        assert est is not None
        for line in est.lines():
            progress.info(line)
        estimates = {e["variant_id"]: e for e in est.variants}
    remote = _Remote(sweep, out_dir, store, run_id, progress)
    pending = {v.variant_id for v in variants}
    base_id = next((v.variant_id for v in [*variants, *then_local] if v.method == "base"), None)
    held: list[tuple[Variant, VariantResult]] = []
    try:
        for v in trainees:
            try:
                remote.submit(v, estimates.get(v.variant_id, {}))
            except HarnessInputError:
                raise
            except Exception as exc:  # noqa: BLE001 - a refused job fails its variant; the sweep goes on
                row = variant_row(sweep.task(v, out_dir))
                row.update(status="failed", error=f"could not start the fine-tuning job: {describe_error(exc)}")
                remote.q.put(("result", v, VariantResult(row)))
        for v in variants:
            if v.method != "openai":
                remote.client(remote_model(sweep, v)[0])  # configuration errors surface now, not in a thread
                remote.pool.submit(remote.score_only, v)
        if remote.active:
            remote.thread.start()

        def drain(block: bool) -> Iterator[tuple[Variant, VariantResult]]:
            while True:
                try:
                    item = remote.q.get(timeout=1.0) if block else remote.q.get_nowait()
                except queue.Empty:
                    if block:
                        continue
                    return
                if item[0] == "info":
                    progress.info(item[1])
                elif item[0] == "job":
                    if store is not None:
                        store.upsert_job(item[1])
                else:
                    pending.discard(item[1].variant_id)
                    held.append((item[1], item[2]))
                    yield from release()
                    if block:
                        return

        def release() -> Iterator[tuple[Variant, VariantResult]]:
            nonlocal base_id
            if base_id is not None:
                ready = [h for h in held if h[0].variant_id == base_id]
                if not ready:
                    return
                held.remove(ready[0])
                base_id = None
                yield ready[0]
            while held:
                yield held.pop(0)

        for i, v in enumerate(then_local, start=1):
            progress.variant_start(i, len(then_local), v.name, "training and scoring" if v.trains else "scoring")
            held.append((v, execute_variant(sweep.task(v, out_dir), progress)))
            yield from release()
            yield from drain(block=False)
        while pending:
            yield from drain(block=True)
        yield from drain(block=False)
    finally:
        remote.stop.set()
        remote.pool.shutdown(wait=False, cancel_futures=True)
