"""Managed fine-tuning end to end, once per provider (OpenAI, Azure OpenAI): run_sweep against a local fake server
into a real DuckDB file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_helpers import BASE, GIVEN, fake, log_progress, managed, table, write_experiment  # noqa: F401

from harness.sweep.runner import run_sweep

pytestmark = pytest.mark.api


def test_whole_lifecycle(tmp_path: Path, managed) -> None:  # noqa: F811
    m, fake = managed, managed.fake  # noqa: F811
    spec, test_rows = write_experiment(tmp_path / "exp", m.spec)
    from openai_helpers import scripted

    fake.answer = scripted(test_rows)
    db = tmp_path / "results.duckdb"
    progress, log = log_progress()
    run_id = run_sweep(spec, db, progress=progress)

    variants = table(db, "SELECT * FROM variants ORDER BY name")
    assert list(variants["name"]) == ["base", m.given_name, "openai-e1", "openai-e2"]
    assert set(variants["status"]) == {"finished"}, variants[["name", "error"]]
    trained = variants[variants["method"] == "openai"].set_index("name")
    assert all(m.is_trained_model(a) for a in trained["artifact"]), list(trained["artifact"])
    assert (trained["train_tokens"] > 0).all() and trained["train_seconds"].notna().all()

    # one upload per split, one job per trained variant, created with the variant's settings and its id
    assert len(m.uploads()) == 2 and {f["purpose"] for f in fake.files.values()} == {"fine-tune"}
    made = m.creates()
    assert len(made) == 2 == len(fake.jobs)
    by_variant = {m.variant_of(c.body): c.body for c in made}
    for _name, row in trained.iterrows():
        body = by_variant[row["variant_id"]]
        assert body["model"] == BASE and body["validation_file"]
        assert m.hyperparameters(body) == {"n_epochs": int(row["epochs"]), "learning_rate_multiplier": 0.5,
                                           "batch_size": 4}
        if m.azure:  # no metadata on Azure's job API: the variant id rides in the suffix (<= 40 characters)
            assert body["suffix"] == f"acme-{row['variant_id']}" and "metadata" not in body
        else:
            assert body["suffix"] == "acme" and body["metadata"]["harness_run"] == run_id

    # training curves from metrics events and checkpoints
    log_rows = table(db, "SELECT * FROM train_log WHERE variant_id = ? ORDER BY split, step",
                     [trained.loc["openai-e2", "variant_id"]])
    train, val = log_rows[log_rows["split"] == "train"], log_rows[log_rows["split"] == "validation"]
    job = next(j for j in fake.jobs.values() if j["hyperparameters"]["n_epochs"] == 2)
    assert list(train["step"]) == list(range(1, job["_total"] + 1))
    assert list(val["step"]) == [job["_per_epoch"], 2 * job["_per_epoch"]]  # full validation loss at epoch ends
    assert list(val["epoch"]) == [1.0, 2.0]
    assert train["loss"].iloc[-1] < train["loss"].iloc[0]

    # scores: every variant scored through chat completions; no loss (no log-likelihoods)
    scores = table(db, """SELECT v.name, s.metric, s.value FROM scores s JOIN variants v USING (variant_id)
                          WHERE s.suite = 'heldout'""")
    em = scores[scores["metric"] == "exact_match"].set_index("name")["value"]
    assert em["base"] == 0.0 and em["openai-e1"] == 1.0 and em["openai-e2"] == 1.0
    assert em[m.given_name] == 0.5
    assert "loss" not in set(scores["metric"])
    chats = m.chats()
    assert len(chats) == 4 * 10
    assert all(c.body["temperature"] == 0 and c.body["max_completion_tokens"] == 32 for c in chats)
    if m.azure:  # each model through its deployment, named in the spec
        paths = {c.path.split("/")[3] for c in chats}
        assert paths == {"base-deploy", "prev-deploy", "acme-e1", "acme-e2"}
        assert all(s.query.get("api-version") == "2025-04-01-preview" for s in fake.seen)
        deployment = json.loads(trained.loc["openai-e1", "config"])["openai"]["deployment"]
        assert deployment == "acme-e1"
    else:
        assert variants.set_index("name").loc["base", "artifact"] == BASE

    # the jobs table holds the provider, job ids, final states and events, so a rerun can re-attach
    jobs = table(db, "SELECT * FROM jobs ORDER BY variant_id")
    assert set(jobs["status"]) == {"succeeded"} and set(jobs["job_id"]) == set(fake.jobs)
    assert set(jobs["provider"]) == {m.kind}
    detail = json.loads(jobs.iloc[0]["detail"])
    assert len(detail["events"]) == len(fake.events[jobs.iloc[0]["job_id"]])
    assert f"{'Azure OpenAI' if m.azure else 'OpenAI'} fine-tuning estimate" in log.getvalue()

    # a rerun is a no-op: nothing uploaded, created or scored again
    before = len(fake.seen)
    run_sweep(spec, db, progress=log_progress()[0])
    assert len(fake.seen) == before


def test_failed_validation_fails_the_variant_and_the_sweep_goes_on(tmp_path: Path, managed) -> None:  # noqa: F811
    m = managed
    spec, _ = write_experiment(tmp_path / "exp", m.spec)
    m.fake.fail_validation = True
    db = tmp_path / "results.duckdb"
    run_id = run_sweep(spec, db, progress=log_progress()[0])

    variants = table(db, "SELECT * FROM variants").set_index("name")
    for name in ("openai-e1", "openai-e2"):
        row = variants.loc[name]
        assert row["status"] == "failed"
        assert "invalid_training_file" in row["error"] and "[param: training_file]" in row["error"]
        assert "invalid training file" in row["error"]
        err = json.loads(row["config"])["openai"]["error"]
        assert err["code"] == "invalid_training_file" and err["param"] == "training_file"
    assert variants.loc["base", "status"] == "finished"
    assert variants.loc[m.given_name, "status"] == "finished"
    assert table(db, "SELECT status FROM runs WHERE run_id = ?", [run_id])["status"][0] == "finished"
    assert set(table(db, "SELECT status FROM jobs")["status"]) == {"failed"}


def test_dry_run_prints_the_cost_estimate(tmp_path: Path, capsys, monkeypatch) -> None:
    from harness.cli import main

    spec, _ = write_experiment(tmp_path / "exp")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a dry run needs no key and calls nothing
    assert main(["sweep", str(spec), "--dry-run", "--db", str(tmp_path / "r.duckdb")]) == 0
    out = capsys.readouterr().out
    assert f"OpenAI fine-tuning estimate for {BASE}" in out
    assert "$3.00 per 1M training tokens" in out and "openai-e2" in out and "total for 2 job(s)" in out
    assert "OpenAI price table of 2025-06, for gpt-4.1-nano" in out  # which models the table holds for
    assert not (tmp_path / "r.duckdb").exists()
    assert GIVEN  # the spec's given model is an OpenAI fine-tune (its retirement note: test_managed_refusal.py)
