"""A judge that answers badly, or not at all (issue 23, items 6 and 7): malformed judgments are counted and warned
about per suite, a suite without one readable judgment fails its variant (exit 3), a server whose body is not JSON
says so, and a suite that fails keeps the suites that finished; the rerun scores only what is missing."""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from faultlib import ONE_LORA, cli, write_experiment

from harness.store.db import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fake_openai import FakeOpenAI  # noqa: E402

pytestmark = pytest.mark.faults

KEY = "sk-canary-judge-0123456789abcdef"
SUITES = """  - name: judge
    options: {judge: "openai:gpt-judge", judge_max_tokens: 64, max_new_tokens: 4}
"""
# base and one LoRA (item 7: its rerun must reuse the trained adapter), the held-out suite kept short
JUDGED = ONE_LORA.replace("{max_new_tokens: 8}", "{max_new_tokens: 4, loss: false}") + SUITES
# base and a prompt variant: nothing to train (item 6)
PROMPTED = (JUDGED.replace("method: [lora]", "method: [prompt]").replace("  rank: [2]\n", "")
            + 'prompt: {system: "Answer in one short sentence."}\n')


def graded(score: int) -> dict[str, Any]:
    doc: dict[str, Any] = {c: {"score": score, "rationale": "fine"} for c in ("accuracy", "format", "tone",
                                                                             "completeness")}
    doc["hallucination"] = {"score": "no", "rationale": "nothing invented"}
    return doc


@pytest.fixture
def judge_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The judge's key (a canary that must never be printed), no retries, and a judge cache of this test's own
    (the real cache's tokenizer linked in)."""
    from harness.models.resolve import cache_dir

    real, folder = cache_dir(), tmp_path / "cache"
    folder.mkdir()
    for name in ("smollm2-135m-instruct-tokenizer",):
        if (real / name).is_dir():
            (folder / name).symlink_to(real / name, target_is_directory=True)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("HARNESS_OPENAI_MAX_RETRIES", "0")
    monkeypatch.delenv("OPENAI_ORG_ID", raising=False)


def fake_judge(reply: Any) -> FakeOpenAI:
    """The fake OpenAI service answering every judgment with `reply(messages)` (a dict is sent as JSON)."""
    fake = FakeOpenAI(base_models=("gpt-judge",))
    fake.judge = lambda model, msgs, schema: reply(msgs)
    return fake


def sweep(spec: Path, db: Path, monkeypatch: pytest.MonkeyPatch, base_url: str) -> tuple[int, str]:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    out = cli("sweep", str(spec), "--db", str(db))
    printed = out.stdout + out.stderr
    assert KEY not in printed and "Traceback" not in printed
    return out.returncode, printed


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with Store(db, read_only=True) as s:
        return [tuple(r) for r in s.query(sql).itertuples(index=False)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_judgment_malformed_warns_per_suite_and_fails_the_variant(
        tmp_path: Path, judge_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_experiment(tmp_path, PROMPTED)
    db = tmp_path / "r.duckdb"
    with fake_judge(lambda msgs: "The <b>response</b> looks fine to me, 4/5.") as fake:
        code, printed = sweep(spec, db, monkeypatch, fake.base_url)
    assert code == 3, printed
    assert printed.count("judge: 10 of 10 judgments failed (reply not JSON)") >= 2, printed  # base and the LoRA
    assert rows(db, "SELECT DISTINCT status FROM variant_results") == [("incomplete",)]
    # the held-out suite is kept; the judge's rows too (its replies are what a reader needs), with the count
    assert {"heldout", "judge"} <= {s for s, in rows(db, "SELECT DISTINCT suite FROM scores")}
    assert rows(db, "SELECT DISTINCT metric, value, n FROM scores WHERE suite = 'judge'") == [("judge_errors", 10.0, 10)]
    warnings = rows(db, """SELECT "check", severity, message, evidence FROM findings ORDER BY 1""")
    assert {(c, s) for c, s, _, _ in warnings} == {("judge_errors", "warning"), ("suite_failed", "error")}
    evidence = [json.loads(e) for c, _, _, e in warnings if c == "judge_errors"]
    assert all(e["errors"] == 10 and e["n"] == 10 and e["reasons"] == {"reply not JSON": 10} for e in evidence)

    report = tmp_path / "rep.html"
    assert cli("report", "--db", str(db), "-o", str(report)).returncode == 0
    html = report.read_text(encoding="utf-8")
    assert 'id="measurement-warnings"' in html and 'class="judge-warning judge_errors"' in html
    assert "judge: 10 of 10 judgments failed (reply not JSON)" in html and "<b>response</b>" not in html


def test_one_malformed_judgment_in_ten_is_a_warning_with_its_count(
        tmp_path: Path, judge_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_experiment(tmp_path, PROMPTED)
    db = tmp_path / "r.duckdb"
    with fake_judge(lambda msgs: "no JSON today" if "Ticket 103:" in msgs[-1]["content"] else graded(4)) as fake:
        code, printed = sweep(spec, db, monkeypatch, fake.base_url)
    assert code == 0, printed
    assert printed.count("warning: base: judge: 1 of 10 judgments failed (reply not JSON)") == 1, printed
    assert rows(db, "SELECT DISTINCT status FROM variant_results") == [("finished",)]
    assert rows(db, "SELECT DISTINCT value, n FROM scores WHERE metric = 'judge:accuracy'") == [(4.0, 9)]
    assert rows(db, """SELECT count(*) FROM findings WHERE "check" = 'judge_errors'""") == [(2,)]


class NotJson(BaseHTTPRequestHandler):
    """A server that is no OpenAI API: every request gets 200 and an HTML page labelled application/json."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f"<html><body>502 Bad Gateway (upstream said: {KEY})</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_judge_server_answering_non_json_says_so(tmp_path: Path, judge_env: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_experiment(tmp_path, PROMPTED)
    db = tmp_path / "r.duckdb"
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotJson)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, printed = sweep(spec, db, monkeypatch, f"http://127.0.0.1:{server.server_address[1]}/v1")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 3, printed
    assert "the judge server's reply was not JSON (HTTP 200, application/json)" in printed, printed
    assert "502 Bad Gateway" in printed and "JSONDecodeError" not in printed and "Expecting value" not in printed
    errors = rows(db, "SELECT status, error FROM variant_results")
    assert {s for s, _ in errors} == {"incomplete"}
    assert all("suite judge failed" in e and "reply was not JSON" in e and KEY not in e for _, e in errors)


def test_an_unreachable_judge_keeps_the_finished_suites_and_the_rerun_scores_only_the_judge(
        tmp_path: Path, judge_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_experiment(tmp_path, JUDGED)
    db = tmp_path / "r.duckdb"
    code, printed = sweep(spec, db, monkeypatch, f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    assert code == 3, printed
    variants = rows(db, "SELECT name, status, error FROM variant_results ORDER BY name")
    assert [(n, s) for n, s, _ in variants] == [("base", "incomplete"), ("lora-r2-e1", "incomplete")]
    assert all("suite judge failed" in e and "Connection error" in e for _, _, e in variants), variants
    assert "2 variant(s) of run" in printed and "incomplete" in printed
    heldout = "SELECT variant_id, example_id, output, detail FROM examples WHERE suite = 'heldout' ORDER BY 1, 2"
    before = rows(db, heldout)
    scores_before = rows(db, "SELECT * EXCLUDE (scorer) FROM scores WHERE suite = 'heldout' ORDER BY 1, 3")
    log_before = rows(db, "SELECT * FROM train_log ORDER BY 1, 2, 4")
    assert len(before) == 20 and not rows(db, "SELECT * FROM scores WHERE suite = 'judge'")
    runs = cli("runs", "--db", str(db))
    assert "(2 incomplete)" in runs.stdout, runs.stdout

    copy = tmp_path / "incomplete.duckdb"  # for the gate, below
    copy.write_bytes(db.read_bytes())
    with fake_judge(lambda msgs: graded(3)) as fake:
        code, printed = sweep(spec, db, monkeypatch, fake.base_url)
        judged = len(fake.requests("POST", "/v1/chat/completions"))
    assert code == 0, printed
    assert 0 < judged <= 20  # the judge suite of both variants, once each (identical outputs asked once: cache)
    assert "training steps" not in printed and "not trained again" in printed
    assert "scoring only its failed suite(s) judge" in printed
    assert rows(db, "SELECT name, status, error FROM variant_results ORDER BY name") == [
        ("base", "finished", None), ("lora-r2-e1", "finished", None)]
    assert rows(db, heldout) == before  # the held-out suite was not scored again
    assert rows(db, "SELECT * EXCLUDE (scorer) FROM scores WHERE suite = 'heldout' ORDER BY 1, 3") == scores_before
    assert rows(db, "SELECT * FROM train_log ORDER BY 1, 2, 4") == log_before
    assert rows(db, "SELECT DISTINCT value, n FROM scores WHERE metric = 'judge:accuracy'") == [(3.0, 10)]
    assert rows(db, """SELECT count(*) FROM findings WHERE "check" IN ('suite_failed', 'judge_errors')""") == [(0,)]
    assert rows(db, "SELECT count(*), count(DISTINCT variant_id) FROM variant_results") == [(2, 2)]
    again, printed = sweep(spec, db, monkeypatch, fake.base_url)
    assert again == 0 and "every variant is already stored" in printed

    # the gate on the incomplete copy fails the rules of the suite that is missing, never passes them
    baseline = tmp_path / "b.json"
    assert cli("baseline", "save", "--db", str(db), "--variant", "lora-r2-e1", "-o", str(baseline)).returncode == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text("gate:\n  min: {judge.judge:accuracy: 1.0}\n  max_drop: {heldout.exact_match: 0.5}\n")
    junit = tmp_path / "gate.xml"
    gate = cli("gate", "--db", str(copy), "--variant", "lora-r2-e1", "--baseline", str(baseline), "--spec",
               str(rules), "--junit", str(junit))
    assert gate.returncode == 1, gate.stdout + gate.stderr
    import xml.etree.ElementTree as ET

    failures = {(c.get("classname"), c.get("name")): c.find("failure").get("message", "")
                for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None}
    assert set(failures) == {("harness.gate.suite_scored", "suite_scored judge"), ("harness.gate.min", "min judge.judge:accuracy")}, \
        failures
    assert "suite judge failed on the candidate" in failures[("harness.gate.suite_scored", "suite_scored judge")]
    assert "suite judge failed" in failures[("harness.gate.min", "min judge.judge:accuracy")]
