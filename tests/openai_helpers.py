"""Shared pieces of the managed fine-tuning tests: an experiment folder, scripted answers, a fake server in the
environment, and the `managed` fixture that runs a test once per provider (OpenAI, Azure OpenAI)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import make_rows, write_jsonl
from fake_openai import FakeOpenAI

from harness.progress import Progress
from harness.store.db import Store

BASE = "gpt-4o-mini-2024-07-18"
GIVEN = f"ft:{BASE}:acme::prev01"
CANARY = "sk-canary-XXXX-7f3a9c1e5d"
AZURE_CANARY = "azcanary7f3a9c1e5d0b4e8aa1b2c3d4e5f60718"  # Azure keys are hex, not sk-...
AZURE_VERSION = "2025-04-01-preview"

SPEC = f"""\
name: acme-openai
model: openai:{BASE}
data:
  train: train.jsonl
  validation: 0.2
  test: test.jsonl
sweep:
  method: [openai, given]
  epochs: [1, 2]
  checkpoint: ["openai:{GIVEN}"]
train:
  openai: {{poll_seconds: 0.01, batch_size: 4, learning_rate_multiplier: 0.5, suffix: acme}}
suites:
  - name: heldout
    options: {{max_new_tokens: 32}}
"""


def references(test_rows: list[dict[str, Any]]) -> dict[str, str]:
    """Last user message -> reference answer, for every test row."""
    return {r["messages"][-2]["content"]: r["messages"][-1]["content"] for r in test_rows}


def scripted(test_rows: list[dict[str, Any]]) -> Any:
    """Fine-tuned models answer every test reference; the given model half of them; the base model none."""
    refs = references(test_rows)

    def answer(model: str, messages: list[dict[str, str]]) -> str:
        ref = refs.get(messages[-1]["content"])
        if ref is None:  # a prompt of another suite
            return "I don't know."
        if model == GIVEN:
            return ref if json.loads(ref)["id"] % 2 == 0 else "I don't know."
        return ref if model.startswith("ft:") or ".ft-" in model else "I don't know."  # OpenAI's and Azure's names

    return answer


def write_experiment(folder: Path, spec: str = SPEC, n_train: int = 16) -> tuple[Path, list[dict[str, Any]]]:
    """train.jsonl, test.jsonl and spec.yaml in `folder`; returns (spec path, test rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", make_rows(n_train))
    test_rows = make_rows(10, offset=100)
    write_jsonl(folder / "test.jsonl", test_rows)
    (folder / "spec.yaml").write_text(spec, encoding="utf-8")
    return folder / "spec.yaml", test_rows


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A running fake server that the environment points the OpenAI client at."""
    with FakeOpenAI(base_models=(BASE, GIVEN)) as server:
        _env(monkeypatch, server, azure=False)
        yield server


def log_progress() -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(live=False, stream=stream), stream


def table(db: Path, sql: str, params: list[Any] | None = None) -> Any:
    with Store(db, read_only=True) as store:
        return store.query(sql, params)


def creates(fake: FakeOpenAI) -> list[Any]:
    return [s for s in fake.requests("POST", "/v1/fine_tuning/jobs") if s.path == "/v1/fine_tuning/jobs"]


# The same experiment on Azure OpenAI: the base model, the given fine-tune and the trained models are served by
# deployments, which the fake server resolves (the trained ones once their jobs have succeeded).
AZURE_SPEC = (SPEC.replace(f"model: openai:{BASE}\n", f"""model: azure-openai:{BASE}
azure:
  api_version: "{AZURE_VERSION}"
  deployments: {{base: base-deploy, openai-e1: acme-e1, openai-e2: acme-e2}}
""", 1).replace(f'checkpoint: ["openai:{GIVEN}"]', 'checkpoint: ["azure-openai:prev-deploy"]', 1))
AZURE_DEPLOYMENTS: dict[str, Any] = {"base-deploy": BASE, "prev-deploy": GIVEN,
                                     "acme-e1": lambda st: st.fine_tuned(n_epochs=1),
                                     "acme-e2": lambda st: st.fine_tuned(n_epochs=2)}


@dataclass
class Managed:
    """One provider's view of the shared tests: its spec, its fake server, its paths and names."""

    kind: str  # 'openai' | 'azure-openai'
    fake: FakeOpenAI
    spec: str
    key_env: str
    given_name: str  # the `given` variant's name

    @property
    def azure(self) -> bool:
        return self.kind == "azure-openai"

    def path(self, tail: str) -> str:
        return self.fake.prefix + tail

    @property
    def chat_prefix(self) -> str:
        """Every chat completion's path starts so (Azure: one path per deployment)."""
        return self.path("/deployments/") if self.azure else self.path("/chat/completions")

    def chats(self) -> list[Any]:
        return [s for s in self.fake.requests("POST", self.chat_prefix) if s.path.endswith("/chat/completions")]

    def creates(self) -> list[Any]:
        return [s for s in self.fake.requests("POST", self.path("/fine_tuning/jobs"))
                if s.path == self.path("/fine_tuning/jobs")]

    def uploads(self) -> list[Any]:
        return self.fake.requests("POST", self.path("/files"))

    def variant_of(self, body: dict[str, Any]) -> str:
        """The variant id a create call carries: OpenAI in metadata, Azure at the end of the suffix."""
        return str(body["suffix"].rsplit("-", 1)[1] if self.azure else body["metadata"]["variant_id"])

    def hyperparameters(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(body["hyperparameters"] if self.azure else body["method"]["supervised"]["hyperparameters"])

    def is_trained_model(self, model_id: str) -> bool:
        return model_id.startswith(f"{BASE}.ft-") if self.azure else model_id.startswith(f"ft:{BASE}:fake-org:acme:")

    @property
    def masked(self) -> str:
        """How `scrub` masks this provider's key."""
        return "***" if self.azure else "sk-***"


def _env(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI, azure: bool) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    for name in ("OPENAI_ORG_ID", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_API_VERSION", "AZURE_OPENAI_AD_TOKEN",
                 "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    if azure:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0123456789abcdef0123456789abcdef")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.endpoint)


@pytest.fixture(params=["openai", "azure-openai"])
def managed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Managed]:
    """A running fake server of each provider, with the environment pointing that provider's client at it."""
    azure = request.param == "azure-openai"
    with FakeOpenAI(base_models=(BASE, GIVEN), flavour="azure" if azure else "openai",
                    deployments=dict(AZURE_DEPLOYMENTS) if azure else {}) as server:
        _env(monkeypatch, server, azure)
        yield Managed(request.param, server, AZURE_SPEC if azure else SPEC,
                      "AZURE_OPENAI_API_KEY" if azure else "OPENAI_API_KEY",
                      "given-azure-openai:prev-deploy" if azure else f"given-{GIVEN}")
