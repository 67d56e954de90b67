"""One recommendation policy: the report, the gate's default candidate and the sweep summary always agree."""

from __future__ import annotations

import io
import re
from pathlib import Path

from gate_fixtures import flips, outcomes, variant, write_run

from harness.gate.baseline import resolve_variant
from harness.report.build import build_report
from harness.store.db import Store
from harness.store.reads import load_run
from harness.sweep.summary import print_summary
from harness.verdicts.recommend import recommend

GOOD = outcomes(80, 0.6, seed=1)
FINDING = [{"check": "forgetting", "severity": "warning", "message": "forgot", "evidence": {"n": 1}}]


def three_views(db: Path, run: str) -> tuple[str, str, str, str, str]:
    """(report's recommended id or '', report html, gate's default id, gate's reason, summary text)."""
    html = build_report(db, run, output=db.parent / f"{run}.html").read_text()
    m = re.search(r'<tr data-vid="([0-9a-z]+)"[^>]*class="[^"]*\brec\b', html)
    with Store(db, read_only=True) as s:
        gate_id, how = resolve_variant(s, run, None)
        out = io.StringIO()
        print_summary(s, run, out)
    return (m.group(1) if m else ""), html, gate_id, how, out.getvalue()


def test_every_variant_flagged_no_recommendation_and_the_gate_names_the_same_best(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         variant("aaa1", "weak", flips(GOOD, down=10), findings=FINDING),
                         variant("bbb2", "strong", GOOD, findings=FINDING)])
    rec_id, html, gate_id, how, summary = three_views(db, run)
    with Store(db, read_only=True) as s:
        rec = recommend(load_run(s, run))
    assert rec.variant_id is None and rec.candidate_id == "bbb2" and rec.all_flagged
    assert rec.reason.startswith("No recommendation: every finished variant has findings")
    assert rec_id == "" and gate_id == "bbb2"
    # the same sentence everywhere (the report escapes it, so compare the parts without punctuation)
    assert how == rec.reason and rec.reason in summary
    assert "The best of them is strong" in html and "takes it as its default candidate" in html
    assert "*" not in summary.split("run ")[1].splitlines()[0]  # nothing marked recommended in the table


def _sized(v: dict, params: int) -> dict:
    v["variant"]["trainable_params"] = params
    return v


def test_tied_variants_are_broken_the_same_way_everywhere(tmp_path: Path) -> None:
    """Three variants that differ by noise share the top; one clearly worse is out; cost breaks the tie."""
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         _sized(variant("ccc1", "r16", GOOD), 4_000_000),
                         _sized(variant("ddd2", "r4", flips(GOOD, down=1, up=1)), 1_000_000),
                         _sized(variant("eee3", "r8", flips(GOOD, down=0, up=1)), 2_000_000),
                         _sized(variant("fff4", "worse", flips(GOOD, down=30)), 500_000)])
    rec_id, html, gate_id, how, summary = three_views(db, run)
    with Store(db, read_only=True) as s:
        rec = recommend(load_run(s, run))
    assert set(rec.tie_group) == {"ccc1", "ddd2", "eee3"} and rec.tie_group[0] == "eee3"  # best point estimate
    assert rec_id == gate_id == rec.variant_id == "ddd2"  # the cheapest of the tie
    assert "3 variants are statistically indistinguishable from the best on held-out field_accuracy" in how
    assert "the tie is broken by cost: of these it has the fewest trainable parameters (1,000,000 trainable parameters)" in how
    assert how in summary and "r4 *" in summary and "r16 =" in summary and "worse =" not in summary
    assert html.count('class="badge tie"') == 3


def _trained(v: dict, tokens: int | None, seconds: float | None) -> dict:
    v["variant"].update(trainable_params=1_000_000, train_tokens=tokens, train_seconds=seconds)
    return v


def test_item17_tie_broken_by_trained_tokens_before_seconds_with_units(tmp_path: Path) -> None:
    """Equal trainable parameters: the fewest trained tokens decide, not wall-clock seconds (which move with load),
    and every figure is printed with its unit (issue 23, item 17)."""
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         _trained(variant("ccc1", "fast-but-more", GOOD), 90_000, 20.0),
                         _trained(variant("ddd2", "fewer-tokens", flips(GOOD, down=1, up=1)), 60_000, 50.0),
                         _trained(variant("eee3", "most", flips(GOOD, down=0, up=1)), 120_000, 27.0)])
    _, _, gate_id, how, summary = three_views(db, run)
    assert gate_id == "ddd2" and "fewer-tokens *" in summary
    assert "the tie is broken by cost: of these it has the fewest trained tokens (60,000 tokens)." in how
    assert how in summary and re.search(r"\(\d[\d,]*\)", how) is None  # no figure without its unit
    db2 = tmp_path / "r2.duckdb"  # the same tokens: then seconds decide, and say that they are wall-clock seconds
    run = write_run(db2, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                          _trained(variant("ccc1", "slow", GOOD), 60_000, 50.0),
                          _trained(variant("ddd2", "quick", flips(GOOD, down=1, up=1)), 60_000, 27.0),
                          _trained(variant("eee3", "unknown", flips(GOOD, down=0, up=1)), 60_000, 30.0)])
    _, _, gate_id, how, _ = three_views(db2, run)
    assert gate_id == "ddd2" and "of these it has the shortest training (27 s of wall-clock training)." in how
    db3 = tmp_path / "r3.duckdb"  # a figure some tied variant lacks (a shared one-run checkpoint) decides nothing
    run = write_run(db3, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                          _trained(variant("ccc1", "e1of3", GOOD), None, None),
                          _trained(variant("ddd2", "e3of3", flips(GOOD, down=1, up=1)), 60_000, 27.0)])
    _, _, gate_id, how, _ = three_views(db3, run)
    assert gate_id == "ccc1" and "the tie is broken by cost: it comes first in the plan." in how


def test_one_clearly_better_variant_ties_with_nobody(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    noisy = [_sized(variant(f"n{i}", f"noisy{i}", flips(GOOD, down=25 + i)), 1000) for i in range(3)]
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"), *noisy,
                         _sized(variant("top", "clearly-better", GOOD), 9_000_000)])
    rec_id, _, gate_id, how, _ = three_views(db, run)
    with Store(db, read_only=True) as s:
        rec = recommend(load_run(s, run))
    assert rec.tie_group == ("top",) and rec_id == gate_id == "top"
    assert how.startswith("Recommended: clearly-better: it has the highest held-out field_accuracy")


def test_a_variant_with_findings_is_passed_over_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         variant("fff1", "best-but-flagged", GOOD, findings=FINDING),
                         variant("ggg2", "clean", flips(GOOD, down=3))])
    rec_id, html, gate_id, how, summary = three_views(db, run)
    assert rec_id == gate_id == "ggg2"
    assert "Passed over for findings: best-but-flagged (forgetting)" in how and how in summary
    assert "best-but-flagged (forgetting)" in html


def _costed(v: dict, prompt_tokens: float, seconds: float, train_s: float | None) -> dict:
    v["variant"].update(prompt_tokens_per_request=prompt_tokens, seconds_per_request=seconds, train_seconds=train_s)
    return v


def test_prompt_vs_finetuning_is_one_paired_verdict_with_costs_everywhere(tmp_path: Path) -> None:
    """The best prompt variant against the best fine-tuned one, paired per example, in the report and the summary."""
    from harness.verdicts.recommend import prompt_vs_finetuning

    db = tmp_path / "r.duckdb"
    weak = flips(GOOD, down=30)
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         _costed(variant("ppp1", "prompt-3shot", weak, method="prompt"), 600.0, 0.9, 0.0),
                         _costed(variant("ppp2", "prompt-0shot", flips(GOOD, down=35), method="prompt"), 200.0, 0.4, 0.0),
                         _costed(variant("lll1", "lora-r4-e2", GOOD), 120.0, 0.3, 95.0)])
    with Store(db, read_only=True) as s:
        verdict = prompt_vs_finetuning(load_run(s, run))
    assert verdict is not None and (verdict.prompt_id, verdict.tuned_id) == ("ppp1", "lll1")
    c = verdict.comparison
    assert c is not None and c.paired and c.n == 80
    # field_accuracy is 1 for a pass and 0.5 otherwise: 30 flips of 1 -> 0.5 make a paired difference of 15/80
    assert abs(c.difference - 30 * 0.5 / 80) < 1e-9 and c.ci_low > 0
    assert verdict.text.startswith("Fine-tuning beats the best prompt: lora-r4-e2 over prompt-3shot")
    assert "600 prompt tokens per request against 120 (5.0x)" in verdict.text and "95 s to train" in verdict.text
    _, html, _, _, summary = three_views(db, run)
    assert 'id="prompt-vs-finetuning"' in html and "Fine-tuning beats the best prompt" in summary


def test_no_prompt_verdict_without_both_kinds(tmp_path: Path) -> None:
    from harness.verdicts.recommend import prompt_vs_finetuning

    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", GOOD, method="base"), variant("lll1", "lora", GOOD)])
    with Store(db, read_only=True) as s:
        assert prompt_vs_finetuning(load_run(s, run)) is None
