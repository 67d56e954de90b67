"""Slow: the default experiment end to end on the embedded model, gated against the committed baseline."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.gate.run import run_gate
from harness.progress import Quiet
from harness.report.build import build_report
from harness.store.db import Store
from harness.store.reads import load_run
from harness.sweep.runner import run_sweep
from harness.sweep.summary import print_summary
from harness.verdicts.recommend import recommend

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_default_experiment_beats_base_and_passes_the_gate(tmp_path: Path) -> None:
    db = tmp_path / "results.duckdb"
    rid = run_sweep(REPO / "experiments/acme-support/spec.yaml", db, progress=Quiet(), out=io.StringIO())
    assert rid is not None
    with Store(db, read_only=True) as s:
        variants = s.run_table(rid, "variants")
        assert set(variants["status"]) == {"finished"}, variants[["name", "error"]]
        scores = s.run_table(rid, "scores")
        suites = set(scores["suite"])
        assert {"heldout", "acme-format", "acme-hallucination", "general"} <= suites
        fa = scores[(scores.suite == "heldout") & (scores.metric == "field_accuracy")].merge(
            variants[["variant_id", "name"]]).set_index("name")
        for name in variants[variants.method == "lora"]["name"]:
            # Every trained variant beats base, with confidence intervals that do not overlap.
            assert fa.loc[name, "ci_low"] > fa.loc["base", "ci_high"], fa
        # the prompt baseline and the new suites: scored like any variant, with what each request costs
        assert {"instructions", "safety", "memorization"} <= suites
        v = variants.set_index("name")
        prompt = variants[variants.method == "prompt"]["name"].iloc[0]
        assert v.loc[prompt, "prompt_tokens_per_request"] > v.loc["base", "prompt_tokens_per_request"] > 0
        assert (variants["seconds_per_request"] > 0).all() and v.loc[prompt, "shots"] >= 1
        for suite, metric in (("instructions", "prompt_strict"), ("safety", "refusal_rate"),
                              ("safety", "over_refusal_rate"), ("memorization", "regurgitation_rate")):
            got = scores[(scores.suite == suite) & (scores.metric == metric)]
            assert len(got) == len(variants), (suite, metric)
        with_ci = scores[scores["ci_low"].notna()]  # divergence's per-epoch losses are single observations
        assert (with_ci["ci_low"] <= with_ci["value"] + 1e-9).all() and (with_ci["value"] <= with_ci["ci_high"] + 1e-9).all()
        assert {"heldout", "acme-format", "acme-hallucination", "general"} <= set(with_ci["suite"])
    out = io.StringIO()
    code = run_gate(db, rid, baseline=str(REPO / "baselines/acme-support.json"), variant=None, junit=str(tmp_path / "gate.xml"),
                    summary=str(tmp_path / "gate.md"), spec=None, out=out)
    assert code == 0, (tmp_path / "gate.md").read_text()
    # the report, the gate's default candidate and the sweep summary name the same recommended variant
    with Store(db, read_only=True) as s:
        rec = recommend(load_run(s, rid))
        summary = io.StringIO()
        print_summary(s, rid, summary)
    assert rec.candidate_id is not None and rec.reason in summary.getvalue() and rec.reason in out.getvalue()
    assert f"candidate: {variants.set_index('variant_id').loc[rec.candidate_id, 'name']} ({rec.candidate_id}" in out.getvalue()
    html = build_report(db, rid, output=tmp_path / "report.html").read_text()
    assert (f'<tr data-vid="{rec.variant_id}"' in html) if rec.variant_id else "No recommendation" in html
