"""Managed fine-tuning on a bad day, once per provider (OpenAI, Azure OpenAI): 429 with Retry-After, a lost create
answer, a restart mid-job, paged events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_helpers import log_progress, managed, scripted, table, write_experiment  # noqa: F401

from harness.progress import Progress
from harness.sweep.runner import run_sweep

pytestmark = pytest.mark.api


def one_job(spec: str) -> str:
    return spec.replace("method: [openai, given]", "method: [openai]").replace("epochs: [1, 2]", "epochs: [2]")


def _gap_after_429(fake, method: str, path: str) -> float:  # noqa: F811
    """Seconds between the 429 answer and the retry of that same request (same body), for paths starting so."""
    hits = [s for s in fake.seen if s.method == method and s.path.startswith(path)]
    i = next(i for i, s in enumerate(hits) if s.status == 429)
    retry = next((s for s in hits[i + 1:] if s.body == hits[i].body), None)
    assert retry is not None, "the rate-limited request was never retried"
    return retry.t - hits[i].t


def test_429_with_retry_after_is_retried_after_the_wait(tmp_path: Path, managed) -> None:  # noqa: F811
    m, fake = managed, managed.fake
    spec, rows = write_experiment(tmp_path / "exp", one_job(m.spec))
    fake.answer = scripted(rows)
    # a 429 on chat completions (retried by the client) and on the job create (retried by the harness,
    # which sends a create only when no job for the variant exists)
    fake.rate_limit(m.chat_prefix, times=1, retry_after="1")
    fake.rate_limit(m.path("/fine_tuning/jobs"), times=1, retry_after="1", method="POST")
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])

    assert set(table(db, "SELECT status FROM variants")["status"]) == {"finished"}
    assert _gap_after_429(fake, "POST", m.chat_prefix) >= 0.9
    assert _gap_after_429(fake, "POST", m.path("/fine_tuning/jobs")) >= 0.9
    assert [s.status for s in m.creates()] == [429, 201 if m.azure else 200] and len(fake.jobs) == 1


def test_connection_dropped_after_create_makes_no_second_job(tmp_path: Path, managed) -> None:  # noqa: F811
    m, fake = managed, managed.fake
    spec, rows = write_experiment(tmp_path / "exp", one_job(m.spec))
    fake.answer = scripted(rows)
    fake.drop_after_create = 1
    db = tmp_path / "results.duckdb"
    progress, log = log_progress()
    run_sweep(spec, db, progress=progress)

    assert len(m.creates()) == 1 and len(fake.jobs) == 1
    job_id = next(iter(fake.jobs))
    assert "found (after a lost answer) fine-tuning job " + job_id in log.getvalue()
    v = table(db, "SELECT * FROM variants WHERE method = 'openai'").iloc[0]
    assert v["status"] == "finished" and v["artifact"] == fake.jobs[job_id]["fine_tuned_model"]


class _CtrlC(Progress):
    """Presses Ctrl-C when a job is reported running."""

    def info(self, msg: str) -> None:
        super().info(msg)
        if " running" in msg:
            raise KeyboardInterrupt


def test_restart_while_a_job_runs_reattaches_to_the_stored_job(tmp_path: Path, managed) -> None:  # noqa: F811
    m, fake = managed, managed.fake
    spec, rows = write_experiment(tmp_path / "exp", one_job(m.spec))
    fake.answer = scripted(rows)
    fake.hold = True
    db = tmp_path / "results.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, db, progress=_CtrlC(live=False, stream=log_progress()[1]))
    stored = table(db, "SELECT * FROM jobs")
    assert len(stored) == 1 and stored["status"][0] == "running"
    assert table(db, "SELECT status FROM runs")["status"][0] == "interrupted"
    job_id = stored["job_id"][0]
    assert fake.jobs[job_id]["status"] == "running"

    fake.release()
    progress, log = log_progress()
    run_sweep(spec, db, progress=progress)
    assert len(m.creates()) == 1 and len(fake.jobs) == 1  # no second job
    assert len(m.uploads()) == 2  # and no second upload
    assert f"re-attached to stored fine-tuning job {job_id}" in log.getvalue()
    v = table(db, "SELECT * FROM variants WHERE method = 'openai'").iloc[0]
    assert v["status"] == "finished" and v["artifact"] == fake.jobs[job_id]["fine_tuned_model"]
    assert json.loads(v["config"])["openai"]["job_id"] == job_id
    # events seen before the restart are not fetched again, and none is lost
    detail = json.loads(table(db, "SELECT detail FROM jobs")["detail"][0])
    ids = [e["id"] for e in detail["events"]]
    assert len(ids) == len(set(ids)) == len(fake.events[job_id])


def test_events_are_paged_with_after_and_unknown_status_counts_as_running(tmp_path: Path, managed) -> None:  # noqa: F811
    m, fake = managed, managed.fake
    spec, rows = write_experiment(tmp_path / "exp", one_job(m.spec))
    fake.answer = scripted(rows)
    fake.page_limit = 3
    fake.steps_per_poll = 8  # many events per poll, so one poll needs several pages
    fake.unknown_status_polls = 2
    db = tmp_path / "results.duckdb"
    progress, log = log_progress()
    run_sweep(spec, db, progress=progress)

    job_id = next(iter(fake.jobs))
    event_calls = fake.requests("GET", m.path(f"/fine_tuning/jobs/{job_id}/events"))
    assert any("after" in s.query for s in event_calls)
    assert all(int(s.query["limit"]) == 100 for s in event_calls)
    detail = json.loads(table(db, "SELECT detail FROM jobs")["detail"][0])
    assert [e["id"] for e in detail["events"]] == [e["id"] for e in fake.events[job_id]]
    train = table(db, "SELECT step FROM train_log WHERE split = 'train' ORDER BY step")
    assert list(train["step"]) == list(range(1, fake.jobs[job_id]["_total"] + 1))
    assert "unknown status 'paused_for_maintenance'; treated as running" in log.getvalue()
    assert table(db, "SELECT status FROM variants WHERE method = 'openai'")["status"][0] == "finished"
