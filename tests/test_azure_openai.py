"""Azure OpenAI specifics: scoring only through deployments the user names (the harness never deploys), the
configuration it needs (endpoint, API version, its own key), and the spec's `azure:` block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from openai_helpers import (  # noqa: F401
    AZURE_DEPLOYMENTS,
    AZURE_SPEC,
    BASE,
    GIVEN,
    Managed,
    log_progress,
    managed,
    scripted,
    table,
    write_experiment,
)

from harness.errors import HarnessInputError
from harness.spec.schema import load_spec
from harness.sweep.runner import run_sweep

ONE_JOB = AZURE_SPEC.replace("epochs: [1, 2]", "epochs: [2]")


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Managed:
    """The Azure flavour of the `managed` fixture."""
    from openai_helpers import _env

    with FakeOpenAI(base_models=(BASE, GIVEN), flavour="azure", deployments=dict(AZURE_DEPLOYMENTS)) as server:
        _env(monkeypatch, server, azure=True)
        yield Managed("azure-openai", server, AZURE_SPEC, "AZURE_OPENAI_API_KEY", "given-azure-openai:prev-deploy")


@pytest.mark.api
def test_without_a_deployment_the_variant_trains_then_says_what_to_deploy_and_a_rerun_scores_it(
        tmp_path: Path, azure: Managed) -> None:
    fake = azure.fake
    no_deployment = ONE_JOB.replace(", openai-e1: acme-e1, openai-e2: acme-e2", "")
    spec, rows = write_experiment(tmp_path / "exp", no_deployment)
    fake.answer = scripted(rows)
    db = tmp_path / "results.duckdb"
    from harness.commands import sweep_exit_code

    run_id = run_sweep(spec, db, progress=log_progress()[0])
    assert sweep_exit_code(db, run_id) == 3
    v = table(db, "SELECT * FROM variants WHERE name = 'openai-e2'").iloc[0]
    job_id, = fake.jobs
    model = fake.jobs[job_id]["fine_tuned_model"]
    assert v["status"] == "failed" and v["artifact"] == model and v["train_tokens"] > 0  # trained ...
    assert v["error"].startswith(f"trained: {model} is ready on Azure OpenAI, but no deployment serves it and the "
                                 "harness never creates deployments, since they bill by the hour.")
    assert f"--model-name {model} " in v["error"]
    assert "'azure: {deployments: {openai-e2: DEPLOYMENT}}'" in v["error"] and "AZURE_OPENAI_API_KEY" in v["error"]
    assert table(db, "SELECT count(*) AS n FROM train_log WHERE variant_id = ?", [v["variant_id"]])["n"][0] > 0
    assert table(db, "SELECT status FROM jobs")["status"][0] == "succeeded"
    assert not [s for s in fake.seen if "/deployments/acme" in s.path]  # nothing was sent to a guessed deployment
    assert not [s for s in fake.seen if s.method not in ("GET", "POST")]  # and nothing created a deployment

    # the user deploys the model and names the deployment; the rerun trains nothing and scores it
    fake.deployments["my-ft"] = model
    spec.write_text(ONE_JOB.replace("openai-e1: acme-e1, openai-e2: acme-e2", "openai-e2: my-ft"))
    progress, log = log_progress()
    run_sweep(spec, db, progress=progress)
    assert len(azure.creates()) == 1 and len(azure.uploads()) == 2  # no second job, no second upload
    assert f"re-attached to stored fine-tuning job {job_id} on Azure OpenAI" in log.getvalue()
    v = table(db, "SELECT * FROM variants WHERE name = 'openai-e2'").iloc[0]
    assert v["status"] == "finished" and json.loads(v["config"])["openai"]["deployment"] == "my-ft"
    em = table(db, "SELECT value FROM scores WHERE variant_id = ? AND metric = 'exact_match'", [v["variant_id"]])
    assert em["value"][0] == 1.0
    assert len([s for s in fake.seen if s.path == "/openai/deployments/my-ft/chat/completions"]) == 10


@pytest.mark.api
def test_base_without_a_deployment_fails_with_what_to_name(tmp_path: Path, azure: Managed) -> None:
    spec, rows = write_experiment(tmp_path / "exp", ONE_JOB.replace("base: base-deploy, ", ""))
    azure.fake.answer = scripted(rows)
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])
    v = table(db, "SELECT name, status, error FROM variants").set_index("name")
    assert v.loc["base", "status"] == "failed"
    assert v.loc["base", "error"].startswith(f"Azure OpenAI serves models only through deployments and none is named "
                                             f"for the base model {BASE}: deploy it")
    assert "'azure: {deployments: {base: DEPLOYMENT}}'" in v.loc["base", "error"]
    assert v.loc["openai-e2", "status"] == "finished"  # the sweep goes on


@pytest.mark.api
def test_a_prompt_variant_is_the_base_deployment_with_the_prompt(tmp_path: Path, azure: Managed) -> None:
    text = ONE_JOB.replace("method: [openai, given]", "method: [prompt]").replace("suites:", "prompt: {system: Be brief.}\nsuites:")
    spec, _ = write_experiment(tmp_path / "exp", text)
    azure.fake.answer = lambda model, msgs: "ok" if model == BASE and msgs[0]["content"] == "Be brief." else "?"
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])
    v = table(db, "SELECT name, status, config FROM variants").set_index("name")
    assert dict(v["status"]) == {"base": "finished", "prompt-0shot": "finished"}
    assert json.loads(v.loc["prompt-0shot", "config"])["openai"]["deployment"] == "base-deploy"
    assert {s.path for s in azure.chats()} == {"/openai/deployments/base-deploy/chat/completions"}


@pytest.mark.api
def test_a_named_deployment_that_does_not_exist_fails_that_variant(tmp_path: Path, azure: Managed) -> None:
    spec, rows = write_experiment(tmp_path / "exp", ONE_JOB.replace("openai-e2: acme-e2", "openai-e2: not-deployed"))
    azure.fake.answer = scripted(rows)
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])
    error = table(db, "SELECT error FROM variants WHERE name = 'openai-e2'")["error"][0]
    assert "NotFoundError (HTTP 404) DeploymentNotFound: The API deployment for this resource does not exist" in error


@pytest.mark.api
@pytest.mark.parametrize(("unset", "spec_edit", "message"), [
    ("AZURE_OPENAI_API_KEY", None, "export AZURE_OPENAI_API_KEY=... (the resource's key; OPENAI_API_KEY is never "
                                   "sent to Azure)"),
    ("AZURE_OPENAI_ENDPOINT", None, "set 'azure.endpoint: https://RESOURCE.openai.azure.com' in the spec or export "
                                    "AZURE_OPENAI_ENDPOINT"),
    (None, ('  api_version: "2025-04-01-preview"\n', ""), "set 'azure.api_version: 2025-04-01-preview' in the spec "
                                                          "or export OPENAI_API_VERSION"),
])
def test_missing_configuration_is_an_input_error_before_any_request(tmp_path: Path, azure: Managed, monkeypatch,
                                                                    unset: str | None, spec_edit: tuple[str, str] | None,
                                                                    message: str) -> None:
    if unset:
        monkeypatch.delenv(unset)
    text = ONE_JOB.replace(*spec_edit) if spec_edit else ONE_JOB
    spec, _ = write_experiment(tmp_path / "exp", text)
    assert "OPENAI_API_KEY" in __import__("os").environ  # the OpenAI key is there, and never used instead
    with pytest.raises(HarnessInputError) as err:
        run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])
    assert any(message in p for p in err.value.problems), err.value.problems
    assert azure.fake.seen == []


@pytest.mark.api
def test_api_version_from_the_environment(tmp_path: Path, azure: Managed, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    spec, rows = write_experiment(tmp_path / "exp", ONE_JOB.replace('  api_version: "2025-04-01-preview"\n', ""))
    azure.fake.answer = scripted(rows)
    run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])
    assert {s.query["api-version"] for s in azure.fake.seen} == {"2024-10-21"}


def _spec_problems(tmp_path: Path, text: str) -> list[str]:
    write_experiment(tmp_path, text)
    try:
        load_spec(tmp_path / "spec.yaml")
    except HarnessInputError as exc:
        return exc.problems
    return []


def test_the_azure_block_is_validated(tmp_path: Path) -> None:
    ok = AZURE_SPEC.replace("azure:\n", "azure:\n  endpoint: https://acme-eu.openai.azure.com\n")
    assert _spec_problems(tmp_path / "ok", ok) == []
    evil = _spec_problems(tmp_path / "evil", AZURE_SPEC.replace("azure:\n", "azure:\n  endpoint: https://evil.example/\n"))
    assert len(evil) == 1 and "key 'azure.endpoint'" in evil[0] and "is not an Azure OpenAI resource endpoint" in evil[0]
    assert "AZURE_OPENAI_ENDPOINT environment variable" in evil[0]
    plain = _spec_problems(tmp_path / "http", AZURE_SPEC.replace("azure:\n", "azure:\n  endpoint: http://x.openai.azure.com\n"))
    assert len(plain) == 1 and "azure.endpoint" in plain[0]
    version = _spec_problems(tmp_path / "v", AZURE_SPEC.replace('"2025-04-01-preview"', "latest"))
    assert len(version) == 1 and "'latest' is not an Azure OpenAI API version" in version[0]
    deployment = _spec_problems(tmp_path / "d", AZURE_SPEC.replace("base: base-deploy", "base: 'bad name'"))
    assert len(deployment) == 1 and "deployment names are 1-64 letters" in deployment[0]
    from openai_helpers import SPEC

    stray = _spec_problems(tmp_path / "s", SPEC.replace("data:", "azure: {api_version: 2024-10-21}\ndata:", 1))
    assert len(stray) == 1 and "key 'azure' applies to azure-openai:<model> models" in stray[0]
    base_url = _spec_problems(tmp_path / "b", AZURE_SPEC.replace("data:", "base_url: http://127.0.0.1:9/v1\ndata:", 1))
    assert len(base_url) == 1 and "an Azure OpenAI resource goes in 'azure.endpoint'" in base_url[0]
    local = _spec_problems(tmp_path / "l", AZURE_SPEC.replace("method: [openai, given]", "method: [lora, given]"))
    assert len(local) == 1 and "train locally and cannot use model 'azure-openai:" in local[0]


def test_azure_suffix_leaves_room_for_the_variant_id(tmp_path: Path) -> None:
    from harness.data.chat import load_examples
    from harness.managed.backend import ManagedSettings
    from harness.managed.providers import make_backend
    from harness.spec.schema import AzureSpec, OpenAITrainSpec
    b = make_backend("azure-openai", ManagedSettings(BASE, OpenAITrainSpec(suffix="x" * 28), AzureSpec(),
                                                     "A Very Long Spec Name, Indeed!", "spec.yaml"))
    train = load_examples(write_experiment(tmp_path, AZURE_SPEC)[0].parent / "train.jsonl")
    problems = b.check_data(train, [])
    assert problems == ["spec.yaml: key 'train.openai.suffix': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxx'; on Azure OpenAI use "
                        "1 to 27 letters, digits, '-' or '_' (the harness adds '-<variant id>', Azure allows 40)"]
    default = make_backend("azure-openai", ManagedSettings(BASE, spec_name="A Very Long Spec Name, Indeed!", where="s"))
    # the spec name cut to 27 characters, '-', the variant id: Azure's 40 exactly
    assert default.suffix("0123456789ab") == "a-very-long-spec-name--inde-0123456789ab"
    assert len(default.suffix("0123456789ab")) == 40
