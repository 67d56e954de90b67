"""A sweep mixing local training (tiny-random-llama, LoRA) with an OpenAI model id scored through the API."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest
from openai_helpers import GIVEN, fake, log_progress, scripted, table, write_experiment  # noqa: F401

from harness.sweep.runner import run_sweep

pytestmark = pytest.mark.api

MIXED = f"""\
name: mixed
model: tiny-random-llama
data:
  train: train.jsonl
  validation: 0.25
  test: test.jsonl
sweep:
  method: [lora, given]
  rank: [2]
  epochs: [1]
  learning_rate: [1.0e-3]
  checkpoint: ["openai:{GIVEN}"]
train:
  max_seq_length: 96
  batch_size: 8
suites:
  - name: heldout
    options: {{max_new_tokens: 8}}
"""


def test_local_and_openai_variants_in_one_sweep(tmp_path: Path, fake) -> None:  # noqa: F811
    spec, rows = write_experiment(tmp_path / "exp", MIXED)
    fake.answer = scripted(rows)
    db = tmp_path / "results.duckdb"
    run_sweep(spec, db, progress=log_progress()[0])

    v = table(db, "SELECT name, method, status, artifact, finished_at FROM variants ORDER BY finished_at")
    assert set(v["status"]) == {"finished"}, v
    assert v["name"].iloc[0] == "base"  # the reference is stored before anything compared with it
    assert set(v["method"]) == {"base", "lora", "given"}
    remote = v.set_index("method").loc["given"]
    assert remote["artifact"] == GIVEN
    # the remote model was scored while local work ran, not queued behind it
    chats = fake.requests("POST", "/v1/chat/completions")
    assert len(chats) == 10
    lora_done = v.set_index("method").loc["lora", "finished_at"].replace(tzinfo=UTC).timestamp()
    assert max(c.t for c in chats) < lora_done
    scores = table(db, """SELECT v.method, s.value FROM scores s JOIN variants v USING (variant_id)
                          WHERE s.suite = 'heldout' AND s.metric = 'exact_match'""").set_index("method")["value"]
    assert scores["given"] == 0.5
    assert table(db, "SELECT count(*) AS n FROM train_log t JOIN variants v USING (variant_id) "
                     "WHERE v.method = 'lora'")["n"][0] > 0
    # the report and the gate treat the OpenAI variant like a local one
    from harness.gate.baseline import save_baseline
    from harness.gate.run import run_gate
    from harness.report.build import build_report

    html = build_report(db, "latest", output=tmp_path / "report.html").read_text()
    given_name = table(db, "SELECT name FROM variants WHERE method = 'given'")["name"][0]
    assert given_name in html and "lora-r2-e1" in html
    save_baseline(db, "latest", variant=given_name, output=tmp_path / "baseline.json")
    assert run_gate(db, "latest", baseline=tmp_path / "baseline.json", variant=given_name,
                    junit=tmp_path / "gate.xml") == 0
    assert "heldout.exact_match" in (tmp_path / "gate.xml").read_text()


# The same sweep with two local seeds and the remote model on an openai-compatible server; {url} is filled in later.
MIXED_RAY = (MIXED.replace("name: mixed\n", "name: mixed-ray\nbase_url: {url}\n", 1)
             .replace("  learning_rate: [1.0e-3]\n", "  learning_rate: [1.0e-3]\n  seed: [0, 1]\n", 1)
             .replace(f'checkpoint: ["openai:{GIVEN}"]', 'checkpoint: ["openai-compatible:tuned-llm"]', 1)
             .replace("{max_new_tokens: 8}", "{{max_new_tokens: 8}}"))


@pytest.mark.slow
def test_mixed_sweep_with_ray_trains_local_variants_as_ray_tasks_while_the_remote_one_is_scored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One scheduler: the API-scored model runs beside the local variants, which Ray runs in its own workers."""
    import os

    ray = pytest.importorskip("ray")
    from fake_openai import FakeOpenAI

    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    with FakeOpenAI(base_models=("tuned-llm",)) as server:
        spec, rows = write_experiment(tmp_path / "exp", MIXED_RAY.format(url=server.base_url))
        refs = {r["messages"][-2]["content"]: r["messages"][-1]["content"] for r in rows}
        server.answer = lambda model, msgs: refs.get(msgs[-1]["content"], "?")
        db = tmp_path / "results.duckdb"
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            run_sweep(spec, db, executor="ray", progress=log_progress()[0])
        finally:
            ray.shutdown()
        chats = server.requests("POST", "/v1/chat/completions")

    v = table(db, "SELECT name, method, status, config, finished_at FROM variants ORDER BY finished_at")
    assert set(v["status"]) == {"finished"}, v
    assert v["name"].iloc[0] == "base" and sorted(v["method"]) == ["base", "given", "lora", "lora"]
    workers = {r["name"]: json.loads(r["config"])["worker"]["pid"] for _, r in v.iterrows() if r["method"] != "given"}
    assert all(pid != os.getpid() for pid in workers.values()), workers  # trained in Ray's worker processes
    assert "worker" not in json.loads(v.set_index("method").loc["given", "config"])  # scored by the driver's threads
    assert len(chats) == 10
    last_local = max(v[v["method"] == "lora"]["finished_at"]).replace(tzinfo=UTC).timestamp()
    assert max(c.t for c in chats) < last_local  # followed beside the Ray tasks, not after them
