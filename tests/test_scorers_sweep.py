"""Every suite kind through a real sweep on tiny-random-llama: metrics with CIs in DuckDB for base and a variant."""

from __future__ import annotations

from pathlib import Path

from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep

SUITES = """\
suites:
  - name: heldout
    options: {max_new_tokens: 8}
  - name: acme-format
    options: {max_new_tokens: 8}
  - name: acme-hallucination
    options: {max_new_tokens: 8}
  - general
  - divergence
"""


def test_all_suites_store_metrics_with_intervals(tiny_experiment: Path) -> None:
    spec = tiny_experiment.read_text().replace("method: [lora, full]", "method: [lora]").replace("rank: [2, 4]", "rank: [2]")
    tiny_experiment.write_text(spec.split("suites:")[0] + SUITES)
    db = tiny_experiment.parent / "r.duckdb"
    with open(tiny_experiment.parent / "out.txt", "w") as out:
        rid = run_sweep(tiny_experiment, db, progress=Quiet(), out=out)
    assert rid is not None
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants")
        assert list(v["status"]) == ["finished", "finished"], v[["name", "error"]]
        base, lora = v["variant_id"]
        scores = s.run_table(rid, "scores")
        have = {(r.variant_id, r.suite, r.metric) for r in scores.itertuples()}
        for vid in (base, lora):
            for suite, metric in [("acme-format", "compliance"), ("acme-format", "schema_valid"),
                                  ("acme-hallucination", "fabrication_rate"), ("acme-hallucination", "abstention_rate"),
                                  ("general", "acc"), ("general", "acc_norm"), ("general", "perplexity"),
                                  ("general", "word_perplexity")]:
                assert (vid, suite, metric) in have, (vid, suite, metric)
        assert (lora, "divergence", "best_epoch") in have and not any(s_ == "divergence" and b == base
                                                                       for b, s_, _ in have)
        with_ci = scores[scores["suite"] != "divergence"]
        assert with_ci["ci_low"].notna().all()
        assert ((with_ci["ci_low"] <= with_ci["value"] + 1e-9) & (with_ci["value"] <= with_ci["ci_high"] + 1e-9)).all()
        general_n = scores[(scores["suite"] == "general") & (scores["metric"] == "acc")]["n"]
        assert set(general_n) == {224}
        rec = scores[scores["suite"] == "general"]["scorer"].iloc[0]
        assert rec["kind"] == "general" and rec["args"]["text"] == "text.jsonl"
        ex = s.run_table(rid, "examples")
        assert ex.groupby(["variant_id", "suite"]).size().to_dict() == {
            (vid, suite): n for vid in (base, lora)
            for suite, n in (("heldout", 10), ("acme-format", 40), ("acme-hallucination", 40), ("general", 224))}
