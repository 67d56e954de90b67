"""Fine-tuning job calls on the OpenAI wire protocol (OpenAI and Azure OpenAI speak it alike): find a job made
earlier for a variant, create exactly one, read events and checkpoints.

Listing order: the APIs list jobs, events and checkpoints newest first and page to older items with `after`
(the id of the last item of the previous page).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.managed.client import scrub
from harness.results import LogPoint
from harness.scores import JSONDict, JSONValue

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent, JobCreateParams

FAILED = ("failed", "cancelled")
SUCCEEDED = "succeeded"
EVENTS_PAGE = 100
CREATE_ATTEMPTS = 6


@dataclass(frozen=True)
class JobCheckpoint:
    """A fine-tuning job's checkpoint: its id, step, the model it can be called as, and its metrics."""

    id: str
    step: int
    model: str
    metrics: JSONDict  # as the API reports them: train_loss, valid_loss, full_valid_loss, ...


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After-Ms / Retry-After on the error's response), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) / divisor)
            except ValueError:
                continue
    return None


def backoff(attempt: int, base: float, exc: BaseException | None = None, cap: float = 300.0) -> float:
    """How long to wait before try `attempt + 1`: the server's Retry-After (up to 10 minutes), else
    base x 2^attempt, at most `cap`."""
    asked = retry_after(exc) if exc is not None else None
    if asked is not None:
        return min(asked, 600.0)
    return min(base * (2 ** attempt), cap)


def transient(exc: BaseException) -> bool:
    """Errors worth retrying: connection trouble, timeouts, 408/409/429 and 5xx."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(exc, openai.APIStatusError) and (status in (408, 409, 429) or (status or 0) >= 500)


def find_job(client: OpenAI, variant_id: str) -> FineTuningJob | None:
    """The newest job whose metadata names this variant and that has not failed or been cancelled."""
    for job in client.fine_tuning.jobs.list(metadata={"variant_id": variant_id}, limit=100):
        # Checked here too: a server that ignores the metadata filter returns every job.
        if (job.metadata or {}).get("variant_id") == variant_id and job.status not in FAILED:
            return job
    return None


def find_job_by_suffix(client: OpenAI, suffix: str, variant_id: str) -> FineTuningJob | None:
    """The newest live job whose suffix is `suffix` (or whose metadata names the variant), for APIs that cannot
    filter jobs by metadata: every page is read, newest first."""
    for job in client.fine_tuning.jobs.list(limit=100):
        named = getattr(job, "suffix", None) or getattr(job, "user_provided_suffix", None)
        if (named == suffix or (job.metadata or {}).get("variant_id") == variant_id) and job.status not in FAILED:
            return job
    return None


def create_job(client: OpenAI, params: JobCreateParams, find: Callable[[], FineTuningJob | None], *, base_delay: float = 0.5,
               sleep: Callable[[float], None] = time.sleep) -> tuple[FineTuningJob, bool]:
    """Create the job exactly once: (job, created_now). A create whose answer is lost is found again (`find`: by
    the variant's metadata or suffix) instead of being sent twice, so a dropped connection never makes a second
    (billed) job."""
    creator = client.with_options(max_retries=0)  # a blind client-side retry could create a second job
    last: BaseException | None = None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return creator.fine_tuning.jobs.create(**params), True
        except Exception as exc:
            if not transient(exc):
                raise
            last = exc
        found = find()
        if found is not None:
            return found, False
        sleep(backoff(attempt, base_delay, last))
    assert last is not None
    raise last


def fetch_new_events(client: OpenAI, job_id: str, known: set[str], page_size: int = EVENTS_PAGE) -> list[JSONDict]:
    """Events not in `known`, oldest first, paging with `after` until a page reaches events already stored."""
    new: dict[str, FineTuningJobEvent] = {}
    after: str | None = None
    while True:
        if after:
            page = client.fine_tuning.jobs.list_events(job_id, limit=page_size, after=after)
        else:
            page = client.fine_tuning.jobs.list_events(job_id, limit=page_size)
        data = list(page.data or [])
        seen_known = False
        for ev in data:
            if ev.id in known:
                seen_known = True
            else:
                new.setdefault(ev.id, ev)
        newest_first = len(data) < 2 or (data[0].created_at or 0) >= (data[-1].created_at or 0)
        if not data or not page.has_more or (seen_known and newest_first):
            break
        after = data[-1].id
    return [event_dict(ev) for ev in sorted(new.values(), key=lambda e: (e.created_at or 0, e.id))]


def event_dict(ev: FineTuningJobEvent) -> JSONDict:
    """An event as plain, scrubbed JSON data."""
    data = ev.data if isinstance(ev.data, dict) else {}
    return {"id": ev.id, "created_at": ev.created_at, "level": ev.level, "type": getattr(ev, "type", None),
            "message": scrub(ev.message), "data": json.loads(scrub(json.dumps(data, default=str)))}


def fetch_checkpoints(client: OpenAI, job_id: str) -> list[JobCheckpoint]:
    """Every checkpoint of a job with its metrics (auto-paged with `after`), in step order."""
    out = []
    for c in client.fine_tuning.jobs.checkpoints.list(job_id, limit=EVENTS_PAGE):
        metrics: JSONDict = c.metrics.model_dump() if c.metrics is not None else {}
        out.append(JobCheckpoint(c.id, c.step_number, c.fine_tuned_model_checkpoint, metrics))
    return sorted(out, key=lambda c: c.step)


def _number(x: JSONValue) -> float:
    """A metric's value (a JSON number, or a number written as text) as a float."""
    if isinstance(x, int | float | str):
        return float(x)
    raise ValueError(f"not a number: {x!r}")


def train_log_rows(events: list[JSONDict], checkpoints: list[JobCheckpoint], n_epochs: int | None
                   ) -> list[LogPoint]:
    """train_log points from metrics events (train loss per step) and the validation loss: the full-validation
    loss at epoch ends (events and checkpoints) when the API reports it, else the sampled valid_loss."""
    metrics: list[JSONDict] = []
    for e in events:
        data = e.get("data")
        if e.get("type") == "metrics" and isinstance(data, dict) and data.get("step") is not None:
            metrics.append(data)
    metrics += [{**c.metrics, "step": c.step} for c in checkpoints]
    total = max([int(_number(d.get("total_steps") or 0)) for d in metrics] + [0])
    per_epoch = total / n_epochs if total and n_epochs else None

    def rows(key: str, split: str) -> list[LogPoint]:
        by_step: dict[int, float] = {}
        for d in metrics:
            value = d.get(key)
            if value is not None:
                by_step[int(_number(d["step"]))] = _number(value)
        return [LogPoint(s, s / per_epoch if per_epoch else None, split, loss) for s, loss in sorted(by_step.items())]

    return rows("train_loss", "train") + (rows("full_valid_loss", "validation") or rows("valid_loss", "validation"))


def latest_metrics(events: list[JSONDict]) -> str:
    """'step 12/40, train loss 0.8123' from the newest metrics event, or ''."""
    for e in reversed(events):
        d = e.get("data") or {}
        if not isinstance(d, dict):
            continue
        if e.get("type") == "metrics" and d.get("step") is not None:
            loss = f", train loss {d['train_loss']:.4f}" if d.get("train_loss") is not None else ""
            return f"step {d['step']}/{d.get('total_steps') or '?'}{loss}"
    return ""


def job_error(job: FineTuningJob) -> JSONDict:
    """A failed or cancelled job's error as scrubbed {code, message, param}."""
    err = job.error
    if err is None:
        return {"code": job.status, "message": f"the job ended with status {job.status!r}", "param": None}
    return {"code": scrub(err.code) or None, "message": scrub(err.message), "param": scrub(err.param or "") or None}


def retrieve_job(client: OpenAI, job_id: str) -> FineTuningJob | None:
    """The job with this id, or None when the API no longer knows it (404); other errors propagate."""
    try:
        return client.fine_tuning.jobs.retrieve(job_id)
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404:
            return None
        raise


def get_job(client: OpenAI, job_id: str) -> FineTuningJob:
    """The job with this id (any error propagates, for the follower's backoff)."""
    return client.fine_tuning.jobs.retrieve(job_id)


def upload_file(client: OpenAI, path: Path) -> str:
    """Upload a JSONL file for fine-tuning; returns its file id."""
    up = client.files.create(file=(path.name, path.read_bytes(), "application/jsonl"), purpose="fine-tune")
    return str(up.id)
