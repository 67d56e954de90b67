"""Shared pieces of the OpenAI tests: an experiment folder, scripted answers, a fake server in the environment."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
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
        return ref if model.startswith("ft:") else "I don't know."

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
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.delenv("OPENAI_ORG_ID", raising=False)
        monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
        yield server


def log_progress() -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(live=False, stream=stream), stream


def table(db: Path, sql: str, params: list[Any] | None = None) -> Any:
    with Store(db, read_only=True) as store:
        return store.query(sql, params)


def creates(fake: FakeOpenAI) -> list[Any]:
    return [s for s in fake.requests("POST", "/v1/fine_tuning/jobs") if s.path == "/v1/fine_tuning/jobs"]
