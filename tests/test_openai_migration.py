"""The migration workflow (experiments/openai-migration, docs/migrating-from-openai.md) end to end: the OpenAI fine-tune,
served by the fake server, scored beside a local LoRA candidate trained on the same JSONL; its baseline saved; the
gate deciding, paired and with its minimum detectable effects, whether the candidate may replace it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from openai_helpers import fake, log_progress, table  # noqa: F401

from harness.gate.baseline import save_baseline
from harness.gate.run import run_gate
from harness.report.build import build_report
from harness.store.db import Store
from harness.sweep.runner import run_sweep
from harness.sweep.summary import print_summary

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "experiments" / "openai-migration"
FINE_TUNE = "ft:gpt-4o-mini-2024-07-18:acme::abc123"
GIVEN = f"given-{FINE_TUNE}"


def _fine_tune_answers() -> dict[str, str]:
    """What the OpenAI fine-tune answers: every held-out reference, and an abstention or the right price for every
    hallucination probe (a strong model, the bar a candidate has to meet)."""
    answers = {}
    for line in (EXAMPLE / "data" / "test.jsonl").read_text().splitlines():
        msgs = json.loads(line)["messages"]
        answers[msgs[-2]["content"]] = msgs[-1]["content"]
    for line in (REPO / "suites" / "acme-hallucination" / "items.jsonl").read_text().splitlines():
        item = json.loads(line)
        reply = (f"The price is {item['expected']}." if item.get("expected") else
                 "We do not offer that; I could not find it.") + " Thank you for choosing AcmeCorp."
        answers[item["messages"][-1]["content"]] = json.dumps(
            {"category": "other", "product": "unknown", "priority": "normal", "reply": reply})
    return answers


def test_the_example_spec_scores_the_fine_tune_beside_lora_and_qlora() -> None:
    from harness.spec.schema import load_spec

    spec = load_spec(EXAMPLE / "spec.yaml")
    assert spec.sweep.method == ["given", "lora", "qlora"] and spec.sweep.checkpoint == [f"openai:{FINE_TUNE}"]
    assert spec.data.train == "data/train.jsonl" and spec.gate.max_drop["heldout.field_accuracy"] == 0.05
    given = subprocess.run(["bash", "-c", "sed -n 's/^  checkpoint: \\[\"openai:\\([^\"]*\\)\"\\].*/\\1/p' "
                            f"{EXAMPLE / 'spec.yaml'}"], capture_output=True, text=True, check=True).stdout.strip()
    assert given == FINE_TUNE  # migrate.sh derives the baseline's variant name so


@pytest.mark.api
def test_migration_runs_end_to_end_and_the_gate_decides(tmp_path: Path, fake, capsys) -> None:  # noqa: F811
    # QLoRA loads 4-bit weights through bitsandbytes, which needs a pretrained folder (tiny-random-llama is built in
    # memory) and is meant for a GPU: on CPU CI the candidates are LoRA only, on the tiny model, for a few steps;
    # everything else (data, suites, gate rules) is the example's spec.
    folder = tmp_path / "openai-migration"
    shutil.copytree(EXAMPLE, folder)
    spec = folder / "spec.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("model: smollm2-135m-instruct", "model: tiny-random-llama")
                    .replace("method: [given, lora, qlora]", "method: [given, lora]")
                    .replace("train:\n", "train:\n  max_steps: 6\n", 1))
    answers = _fine_tune_answers()
    fake.base_models = (FINE_TUNE,)
    fake.answer = lambda model, msgs: answers.get(msgs[-1]["content"], "I don't know.")
    db = tmp_path / "results.duckdb"
    run_id = run_sweep(spec, db, progress=log_progress()[0])

    variants = table(db, "SELECT name, method, status, artifact FROM variants").set_index("name")
    assert dict(variants["status"]) == {"base": "finished", GIVEN: "finished", "lora-r16-e2": "finished"}
    assert variants.loc[GIVEN, "artifact"] == FINE_TUNE and (folder.parent / "runs").is_dir()
    chats = fake.requests("POST", "/v1/chat/completions")
    assert {c.body["model"] for c in chats} == {FINE_TUNE} and len(chats) == 48 + 40  # heldout + hallucination
    fa = table(db, "SELECT v.name, s.value FROM scores s JOIN variants v USING (variant_id) "
                   "WHERE s.suite = 'heldout' AND s.metric = 'field_accuracy'").set_index("name")["value"]
    assert fa[GIVEN] == 1.0 and fa["lora-r16-e2"] < 0.5  # the tiny random candidate is far below the fine-tune

    # the OpenAI fine-tune is the baseline; the local candidate is gated against it with the spec's rules
    baseline = save_baseline(db, "latest", variant=GIVEN, output=tmp_path / "baselines" / "openai-migration.json")
    saved = json.loads(baseline.read_text())
    assert saved["variant"]["artifact"] == FINE_TUNE and saved["variant"]["method"] == "given"
    assert len([e for e in saved["examples"] if e["suite"] == "heldout"]) == 48  # per example: the gate pairs
    out = io.StringIO()
    code = run_gate(db, "latest", baseline=baseline, variant="lora-r16-e2", junit=tmp_path / "gate.xml",
                    summary=tmp_path / "gate.md", out=out)
    gate = out.getvalue()
    assert code == 1, gate  # the candidate may not replace the fine-tune
    assert "candidate: lora-r16-e2" in gate and "MDE (80% power)" in gate
    assert "heldout.field_accuracy" in gate and "paired" in gate
    assert "minimum detectable effect" in (tmp_path / "gate.xml").read_text()
    # the fine-tune itself passes its own bar: the rules fail on a real drop, not on the setup
    assert run_gate(db, "latest", baseline=baseline, variant=GIVEN, out=io.StringIO()) == 0

    html = build_report(db, run_id, output=tmp_path / "report.html").read_text()
    assert GIVEN in html and "lora-r16-e2" in html
    summary = io.StringIO()
    with Store(db, read_only=True) as store:
        print_summary(store, run_id, summary)
    with capsys.disabled():  # the leaderboard and the gate's verdict, for the record (pytest -s shows them)
        print("\n" + summary.getvalue() + "\n" + gate)
