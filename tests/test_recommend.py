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


def test_tied_variants_are_broken_the_same_way_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         variant("ccc1", "first", GOOD), variant("ddd2", "second", GOOD),
                         variant("eee3", "worse", flips(GOOD, down=5))])
    rec_id, _, gate_id, how, summary = three_views(db, run)
    assert rec_id == gate_id == "ccc1"  # equal scores, no forgetting suite: plan order decides
    assert how.startswith("Recommended: first: it has the highest") and how in summary
    assert "It ties with second on field_accuracy (0.775); the tie is broken by less forgetting" in how
    assert "first *" in summary and "second *" not in summary


def test_a_variant_with_findings_is_passed_over_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", flips(GOOD, down=40), method="base"),
                         variant("fff1", "best-but-flagged", GOOD, findings=FINDING),
                         variant("ggg2", "clean", flips(GOOD, down=3))])
    rec_id, html, gate_id, how, summary = three_views(db, run)
    assert rec_id == gate_id == "ggg2"
    assert "Passed over for findings: best-but-flagged (forgetting)" in how and how in summary
    assert "best-but-flagged (forgetting)" in html
