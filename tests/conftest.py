"""Shared fixtures: a tiny experiment on tiny-random-llama, written into a temp folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent


def chat(user: str, answer: str, system: str = "You are a support assistant. Answer in JSON.") -> dict:
    return {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user},
                         {"role": "assistant", "content": answer}]}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_rows(n: int, offset: int = 0) -> list[dict]:
    cats = ["login", "billing", "defect"]
    return [chat(f"Ticket {i + offset}: my issue is about {cats[i % 3]}",
                 json.dumps({"category": cats[i % 3], "id": i + offset})) for i in range(n)]


TINY_SPEC = """\
name: tiny
model: tiny-random-llama
data:
  train: train.jsonl
  validation: 0.25
  test: test.jsonl
sweep:
  method: [lora, full]
  rank: [2, 4]
  epochs: [1]
  learning_rate: [1.0e-3]
train:
  max_seq_length: 96
  batch_size: 8
suites:
  - name: heldout
    options: {max_new_tokens: 8}
"""


@pytest.fixture
def tiny_experiment(tmp_path: Path) -> Path:
    """A folder with train.jsonl (16), test.jsonl (10) and spec.yaml for tiny-random-llama; returns the spec path."""
    write_jsonl(tmp_path / "train.jsonl", make_rows(16))
    write_jsonl(tmp_path / "test.jsonl", make_rows(10, offset=100))
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_SPEC, encoding="utf-8")
    return spec


def result_frames(result) -> dict:
    """A typed VariantResult as the per-variant frames findings read (scores, examples, samples, train_log), built
    through the store's own row conversion, JSON columns as Python objects."""
    import pandas as pd

    from harness.store.db import result_rows

    rows = result_rows(result)
    frames = {t: pd.DataFrame(rows[t]) for t in ("scores", "examples", "train_log")}
    frames["samples"] = pd.DataFrame(rows["sample_scores"], columns=["variant_id", "suite", "example_id", "metric",
                                                                     "value"])
    if frames["examples"].empty:
        frames["examples"] = pd.DataFrame(columns=["suite", "example_id", "detail", "cluster"])
    return frames


def flat(out):
    """A scorer's typed SuiteResult as rows for assertions: scores as dicts (`how` under 'scorer_args'), examples as
    dicts whose 'detail' shows the per-sample values beside what a person reads (as the report's explorer does), and
    the cluster; findings as dicts."""
    from types import SimpleNamespace

    from harness.scorers.run import score_record

    kind = str(out.scorer.get("kind") or "") or None
    scores = [{"suite": out.suite, "metric": s.metric, "value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high,
               "n": s.n, "suite_version": out.suite_version, **({"scorer_args": s.how} if s.how else {}),
               **({"scorer": score_record(out, kind, s.metric, s.how)} if out.scorer else {})} for s in out.scores]
    examples = [{"suite": out.suite, "example_id": e.example_id, "prompt": e.prompt, "reference": e.reference,
                 "output": e.output, "passed": e.passed,
                 "detail": {**e.scores, **e.detail, **({"cluster": e.cluster} if e.cluster is not None else {})},
                 "values": dict(e.scores)} for e in out.samples]
    findings = [{"check": f.check, "severity": f.severity, "message": f.message, "evidence": f.evidence}
                for f in out.findings]
    return SimpleNamespace(scores=scores, examples=examples, findings=findings)


def flat_all(results) -> tuple[list, list, list]:
    """score_suites' results as (scores, examples, findings) rows, each labelled with its suite (see `flat`)."""
    scores, examples, findings = [], [], []
    for r in results:
        f = flat(r)
        scores += f.scores
        examples += f.examples
        findings += f.findings
    return scores, examples, findings


def flat_fn(fn, ctx):
    """Run a built scorer on a context and return its result as rows (see `flat`)."""
    return flat(fn(ctx))
