"""The clear refusal: a provider that will not create a job (fine-tuning closed for the organisation, a retired base
model) fails that variant with a message saying so, the dates and the alternatives, while the sweep finishes the rest;
the dry run warns from the same table of dates."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openai_helpers import BASE, GIVEN, fake, log_progress, managed, scripted, table, write_experiment  # noqa: F401

from harness.managed import lifecycle
from harness.sweep.runner import run_sweep


class _Refused(Exception):
    """An API error as the openai client raises it: status_code and a JSON body."""

    def __init__(self, status: int, code: str | None, message: str, param: str | None = None):
        super().__init__(message)
        self.status_code = status
        self.body: dict[str, Any] = {"error": {"code": code, "message": message, "param": param}}


CLOSED = _Refused(403, "fine_tuning_unavailable", "Fine-tuning job creation is no longer available for this "
                  "organization.")
RETIRED = _Refused(400, "model_not_available", f"Model {BASE} is not available for fine-tuning or does not exist.",
                   "model")
AZURE_RETIRED = _Refused(400, "invalidPayload", "The specified base model does not support fine-tuning.", "model")


@pytest.mark.parametrize(("exc", "kind"), [
    (CLOSED, "closed"),
    (_Refused(403, None, "Fine-tuning has been disabled for your organization."), "closed"),  # wording alone
    (RETIRED, "model"),
    (AZURE_RETIRED, "model"),
    (_Refused(404, "model_not_found", "The model 'gpt-9' does not exist", "model"), "model"),
    # not refusals: a key without the fine-tuning scope, a rate limit, a bad file, a server error
    (_Refused(403, None, "You have insufficient permissions for this operation. Missing scopes: "
                         "api.fine_tuning.jobs.write."), None),
    (_Refused(429, "rate_limit_exceeded", "Rate limit reached for fine-tuning jobs in organization org-x"), None),
    (_Refused(400, "invalid_training_file", "line 3 has no assistant message", "training_file"), None),
    (_Refused(500, "server_error", "fine-tuning for this organization is unavailable"), None),
])
def test_refusals_are_told_apart_from_other_errors(exc: Exception, kind: str | None) -> None:
    assert lifecycle.classify_refusal(exc) == kind


def test_the_cutoff_notice_marks_each_date_passed_or_coming() -> None:
    before = lifecycle.cutoff_notice("openai", date(2026, 12, 1))
    assert before is not None
    assert "2026-05-07 for organisations that had never run a fine-tuning job (passed)" in before
    assert "2026-07-02 for organisations with no recent fine-tuning activity (passed)" in before
    assert "2027-01-06 for every organisation (in 36 days)" in before  # 30 days of December + 6
    early = lifecycle.cutoff_notice("openai", date(2026, 6, 1))
    assert early is not None and "(in 31 days)" in early and "(passed)" in early  # 2026-07-02 is 31 days on
    after = lifecycle.cutoff_notice("openai", date(2027, 1, 6))
    assert after is not None and after.startswith("OpenAI closed fine-tuning job creation to every organisation on "
                                                  "2027-01-06")
    assert lifecycle.cutoff_notice("azure-openai", date(2026, 12, 1)) is None  # nothing announced for Azure


def test_refusal_message_names_the_reason_the_dates_and_the_alternatives() -> None:
    closed = lifecycle.refusal_message("openai", BASE, CLOSED, on=date(2026, 12, 1))
    assert closed is not None
    assert closed.startswith("OpenAI refused to create the fine-tuning job: fine-tuning is closed for this "
                             "organisation (_Refused (HTTP 403) fine_tuning_unavailable:")
    assert "2027-01-06 for every organisation (in 36 days)" in closed
    assert "The gpt-4o family's retirement is reported for January 2027" in closed  # gpt-4o-mini is of it
    for alternative in ("azure-openai:<base model>", "method: lora or qlora", "method: given",
                        "'openai:ft:...'", "docs/migrating-from-openai.md"):
        assert alternative in closed
    retired = lifecycle.refusal_message("azure-openai", "gpt-35-turbo-0613", AZURE_RETIRED, on=date(2026, 12, 1))
    assert retired is not None and retired.startswith(
        "Azure OpenAI refused to create the fine-tuning job: base model 'gpt-35-turbo-0613' is retired, not offered "
        "for fine-tuning here, or unknown")
    assert "azure-openai:<base model>" not in retired and "'azure-openai:<deployment>'" in retired
    assert "2027" not in retired  # no OpenAI dates on Azure
    assert lifecycle.refusal_message("openai", BASE, _Refused(429, "rate_limit_exceeded", "slow down")) is None


@pytest.mark.api
def test_closed_organisation_fails_the_jobs_clearly_and_the_sweep_finishes(tmp_path: Path, managed,  # noqa: F811
                                                                           monkeypatch) -> None:
    m, server = managed, managed.fake
    monkeypatch.setattr(lifecycle, "today", lambda: date(2026, 12, 1))
    spec, rows = write_experiment(tmp_path / "exp", m.spec)
    server.answer = scripted(rows)
    server.refuse = "closed" if not m.azure else "retired"  # Azure has no closure: its refusal is the base model
    db = tmp_path / "results.duckdb"
    from harness.commands import sweep_exit_code

    run_id = run_sweep(spec, db, progress=log_progress()[0])
    assert sweep_exit_code(db, run_id) == 3  # finished, some variant failed

    v = table(db, "SELECT * FROM variants").set_index("name")
    assert v.loc["base", "status"] == "finished" and v.loc[m.given_name, "status"] == "finished"
    for name in ("openai-e1", "openai-e2"):
        assert v.loc[name, "status"] == "failed"
        error = v.loc[name, "error"]
        refusal = json.loads(v.loc[name, "config"])["openai"]["refusal"]
        if m.azure:
            assert error.startswith("Azure OpenAI refused to create the fine-tuning job: base model "
                                    f"'{BASE}' is retired, not offered for fine-tuning here, or unknown")
            assert "invalidPayload: The specified base model does not support fine-tuning." in error
            assert refusal["kind"] == "model"
        else:
            assert error.startswith("OpenAI refused to create the fine-tuning job: fine-tuning is closed for this "
                                    "organisation (")
            assert "2027-01-06 for every organisation (in 36 days)" in error
            assert "azure-openai:<base model>" in error
            assert refusal["kind"] == "closed" and refusal["cutoffs"][-1]["date"] == "2027-01-06"
        assert "method: lora or qlora" in error and "method: given" in error
    assert table(db, "SELECT status FROM runs")["status"][0] == "finished"
    assert server.jobs == {} and len(m.creates()) == 2  # each refused once, never retried blindly


@pytest.mark.api
def test_retired_base_model_on_openai(tmp_path: Path, fake, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 2, 1))
    spec, rows = write_experiment(tmp_path / "exp")
    fake.answer = scripted(rows)
    fake.retired_models = (BASE,)
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])
    v = table(db, "SELECT name, status, error FROM variants").set_index("name")
    error = v.loc["openai-e1", "error"]
    assert error.startswith(f"OpenAI refused to create the fine-tuning job: base model '{BASE}' is retired")
    assert f"model_not_available: Model {BASE} is not available for fine-tuning or does not exist. " \
           "[param: model]" in error
    assert "OpenAI closed fine-tuning job creation to every organisation on 2027-01-06" in error  # after the date
    assert v.loc["base", "status"] == "finished"


def test_dry_run_warns_about_the_cutoff_and_given_retirements(tmp_path: Path, capsys, monkeypatch) -> None:
    from harness.cli import main

    monkeypatch.setattr(lifecycle, "today", lambda: date(2026, 12, 1))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec, _ = write_experiment(tmp_path / "exp")
    assert main(["sweep", str(spec), "--dry-run", "--db", str(tmp_path / "r.duckdb")]) == 0
    err = capsys.readouterr().err
    assert ("warning: 2 method: openai variant(s) fine-tune on OpenAI. OpenAI stops creating new fine-tuning jobs: "
            "2026-05-07 for organisations that had never run a fine-tuning job (passed)") in err
    assert "2027-01-06 for every organisation (in 36 days)" in err
    assert f"warning: given model {GIVEN}: The gpt-4o family's retirement is reported for January 2027" in err

    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 3, 1))
    assert main(["sweep", str(spec), "--dry-run", "--db", str(tmp_path / "r.duckdb")]) == 0
    assert "OpenAI closed fine-tuning job creation to every organisation on 2027-01-06" in capsys.readouterr().err


def test_dry_run_on_azure_has_no_cutoff_but_says_which_variants_lack_a_deployment(tmp_path: Path, capsys,
                                                                                  monkeypatch) -> None:
    from openai_helpers import AZURE_SPEC

    from harness.cli import main

    for name in ("AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # a dry run needs neither key nor endpoint
    spec, _ = write_experiment(tmp_path / "exp", AZURE_SPEC.replace("openai-e2: acme-e2", "other: x"))
    assert main(["sweep", str(spec), "--dry-run", "--db", str(tmp_path / "r.duckdb")]) == 0
    out, err = capsys.readouterr()
    assert "stops creating" not in err and "2027" not in err
    assert "warning: azure.deployments names no deployment for openai-e2: they will train, then fail at scoring" in err
    assert f"Azure OpenAI fine-tuning estimate for {BASE}" in out
    assert "unknown price (no price table for azure-openai: it prices fine-tuning per region" in out
