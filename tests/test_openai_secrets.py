"""API keys never reach the store, the run folder or the logs (once per managed provider); openai-compatible servers
and Azure OpenAI never get the OpenAI key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from openai_helpers import (  # noqa: F401
    AZURE_CANARY,
    BASE,
    CANARY,
    fake,
    log_progress,
    managed,
    scripted,
    table,
    write_experiment,
)

from harness.errors import HarnessInputError
from harness.store.db import Store
from harness.sweep.runner import run_sweep

pytestmark = pytest.mark.api


def _text_cells_with(db: Path, needle: str) -> list[str]:
    """'table.column' of every cell, in every table, whose text contains `needle` (SQL, not raw bytes:
    DuckDB compresses strings, so a grep of the file alone could miss one)."""
    hits = []
    with Store(db, read_only=True) as store:
        cols = store.query("SELECT table_name, column_name FROM information_schema.columns")
        for t, c in cols.itertuples(index=False):
            n = store.query(f'SELECT count(*) AS n FROM "{t}" WHERE CAST("{c}" AS VARCHAR) LIKE ?', [f"%{needle}%"])
            if int(n["n"][0]):
                hits.append(f"{t}.{c}")
    return hits


def test_canary_key_appears_in_no_file_or_log(tmp_path: Path, managed, monkeypatch, capsys, caplog) -> None:  # noqa: F811
    m, server = managed, managed.fake
    caplog.set_level(logging.DEBUG)
    canary = AZURE_CANARY if m.azure else CANARY
    monkeypatch.setenv(m.key_env, canary)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)  # on Azure too: the OpenAI key must never be sent there
    server.api_key = canary  # the server checks it, so the key really was sent
    server.echo_key = True  # ... and echoes it into job errors and events
    spec, rows = write_experiment(tmp_path / "exp", m.spec)
    answer = scripted(rows)
    server.answer = lambda model, msgs: f"your key is {canary}" if model == BASE else answer(model, msgs)
    db = tmp_path / "results.duckdb"
    progress, log = log_progress()

    server.fail_validation = True  # first run: the jobs fail, with the key in the error text
    run_sweep(spec, db, progress=progress)
    assert table(db, "SELECT count(*) AS n FROM variants WHERE status = 'failed'")["n"][0] == 2
    server.fail_validation = False  # second run retries the failed jobs; an event carries the key
    run_sweep(spec, db, progress=progress)
    assert set(table(db, "SELECT status FROM variants")["status"]) == {"finished"}
    assert len(m.creates()) == 4

    # the echoed key did reach the harness, and was masked before it was stored ...
    assert _text_cells_with(db, m.masked) and _text_cells_with(db, canary) == []
    # ... and is in no file the harness wrote (store, WAL, run folder, uploads) nor in any log
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != tmp_path / "exp"]
    assert any(p.suffix == ".duckdb" for p in written) and any("openai-upload" in str(p) for p in written)
    assert [str(p) for p in written if canary.encode() in p.read_bytes()] == []
    out, err = capsys.readouterr()
    for text in (log.getvalue(), out, err, caplog.text):
        assert canary not in text
    assert m.masked in log.getvalue() or m.masked in out  # the failure message was shown, masked
    if m.azure:  # Azure got its own key in `api-key`, and the OpenAI key in no header of any request
        assert {s.headers.get("api-key") for s in server.seen} == {canary}
        assert [s.path for s in server.seen if any(CANARY in v for v in s.headers.values())] == []
        assert all("authorization" not in {k.lower() for k in s.headers} for s in server.seen)


def test_missing_key_is_an_input_error(tmp_path: Path, fake, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("OPENAI_API_KEY")
    spec, _ = write_experiment(tmp_path / "exp")
    with pytest.raises(HarnessInputError, match="export OPENAI_API_KEY"):
        run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])
    assert fake.seen == []


COMPAT = """\
name: local-server
model: openai-compatible:base-llm
base_url: {url}
data:
  test: test.jsonl
sweep:
  method: [given]
  checkpoint: ["openai-compatible:tuned-llm"]
suites:
  - name: heldout
    options: {{max_new_tokens: 16}}
"""


def test_openai_compatible_server_is_scored_without_the_openai_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    with FakeOpenAI(base_models=("base-llm", "tuned-llm")) as server:
        spec, rows = write_experiment(tmp_path / "exp", COMPAT.format(url=server.base_url))
        refs = {r["messages"][-2]["content"]: r["messages"][-1]["content"] for r in rows}
        server.answer = lambda model, msgs: refs[msgs[-1]["content"]] if model == "tuned-llm" else "?"
        db = tmp_path / "results.duckdb"
        run_sweep(spec, db, progress=log_progress()[0])
        monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "sk-compat-server-key-1")
        run_sweep(spec, tmp_path / "second.duckdb", progress=log_progress()[0])

    chats = server.requests("POST", "/v1/chat/completions")
    assert len(chats) == 40
    assert {c.bearer for c in chats[:20]} == {"EMPTY"} and {c.bearer for c in chats[20:]} == {"sk-compat-server-key-1"}
    assert all("max_tokens" in c.body and "max_completion_tokens" not in c.body for c in chats)
    em = table(db, """SELECT v.name, s.value FROM scores s JOIN variants v USING (variant_id)
                      WHERE s.metric = 'exact_match'""").set_index("name")["value"]
    assert em["base"] == 0.0 and em["given-openai-compatible:tuned-llm"] == 1.0


def test_base_url_with_an_openai_model_is_refused(tmp_path: Path, fake) -> None:  # noqa: F811
    spec, _ = write_experiment(tmp_path / "exp")
    spec.write_text(spec.read_text().replace("data:", "base_url: http://example.invalid/v1\ndata:", 1))
    with pytest.raises(HarnessInputError, match="OPENAI_BASE_URL"):
        run_sweep(spec, tmp_path / "r.duckdb", progress=log_progress()[0])
    assert fake.seen == []
