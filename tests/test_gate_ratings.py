"""The gate's rules on human ratings: a floor, a ceiling and a drop against the baseline's ratings; blind without
ratings."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gate_fixtures import outcomes, variant, write_run

import harness.cli
from harness.gate.baseline import finished_snapshot, load_baseline, save_baseline
from harness.gate.evaluate import evaluate
from harness.gate.run import run_gate
from harness.spec.gate import parse_rules
from harness.store.db import Store
from harness.store.review import load_sheet, store_ratings

RULES = {"defaults": False, "no_findings": [],
         "ratings": {"min": {"accuracy": 3.5}, "max_drop": {"accuracy": 0.5}, "max": {"hallucination": 0.2}}}


def _run(tmp_path: Path) -> Path:
    db = tmp_path / "g.duckdb"
    passed = outcomes(20, 0.6, seed=1)
    write_run(db, [variant("b0", "base", passed, method="base"), variant("c1", "lora-a", passed)])
    assert harness.cli.main(["review", "export", "--db", str(db), "-o", str(tmp_path / "s"), "--sample", "10",
                             "--variants", "lora-a"]) == 0
    return db


def _rate(db: Path, rater: str, values: dict[str, dict[str, float]]) -> None:
    """Every item of the sheet rated: values[variant_id][criterion]."""
    with Store(db) as s:
        sid = str(s.query("SELECT sheet_id FROM review_sheets").iloc[0, 0])
        sheet = load_sheet(s, sid)
        assert sheet is not None
        rows = [{"sheet_id": sid, "rater": rater, "example_id": e, "variant_id": v, "criterion": c, "value": x,
                 "comment": None, "rated_at": datetime(2026, 1, 1), "label": label}
                for e, labels in sheet["items"].items() for label, v in labels.items()
                for c, x in values.get(v, {}).items()]
        store_ratings(s, sid, rater, rows)


def _gate(db: Path, baseline: Path, rules: dict[str, Any]) -> dict[str, Any]:
    with Store(db, read_only=True) as s:
        cand = finished_snapshot(s, s.resolve_run("latest"), "c1")
    result = evaluate(load_baseline(baseline), cand, parse_rules(rules, "test"), where="test")
    return {c.name: c for c in result.checks if c.target.startswith("ratings.")} | {"_passed": result.passed}


def test_rating_rules_pass_and_fail_against_the_baseline_ratings(tmp_path: Path) -> None:
    db = _run(tmp_path)
    _rate(db, "ann", {"b0": {"accuracy": 4.0, "hallucination": 0.0}, "c1": {"accuracy": 4.0, "hallucination": 0.0}})
    baseline = save_baseline(db, "latest", variant="base", output=tmp_path / "base.json")
    saved = json.loads(baseline.read_text())["ratings"]
    assert saved["accuracy"]["value"] == 4.0 and saved["accuracy"]["n"] == 10 and len(saved["accuracy"]["items"]) == 10
    ok = _gate(db, baseline, RULES)
    assert ok["_passed"] and {n: c.verdict for n, c in ok.items() if n != "_passed"} == {
        "min ratings.accuracy": "pass", "max_drop ratings.accuracy": "pass", "max ratings.hallucination": "pass"}
    assert ok["max_drop ratings.accuracy"].numbers["paired"] and ok["max_drop ratings.accuracy"].numbers["n"] == 10
    _rate(db, "ann", {"b0": {"accuracy": 4.0, "hallucination": 0.0},
                      "c1": {"accuracy": 2.0, "hallucination": 1.0}})  # the same rater re-rates: replaces
    bad = _gate(db, baseline, RULES)
    assert not bad["_passed"]
    assert bad["min ratings.accuracy"].verdict == "fail" and "below the floor 3.5" in bad["min ratings.accuracy"].message
    drop = bad["max_drop ratings.accuracy"]
    assert drop.verdict == "fail" and drop.numbers["diff"] == pytest.approx(-2.0) and "fell by 2.000" in drop.message
    assert bad["max ratings.hallucination"].verdict == "fail"
    out = io.StringIO()
    spec = tmp_path / "rules.yaml"
    spec.write_text(json.dumps({"gate": RULES}))
    assert run_gate(db, "latest", baseline=baseline, variant="lora-a", spec=spec, out=out) == 1
    assert "ratings.accuracy" in out.getvalue()


def test_rating_rules_are_blind_without_ratings(tmp_path: Path) -> None:
    db = _run(tmp_path)
    baseline = save_baseline(db, "latest", variant="base", output=tmp_path / "base.json")  # before any rating
    assert "ratings" not in json.loads(baseline.read_text())
    none = _gate(db, baseline, RULES)
    assert none["_passed"]
    for name in ("min ratings.accuracy", "max_drop ratings.accuracy", "max ratings.hallucination"):
        assert none[name].verdict == "skip" and "no human rating" in none[name].warning
    assert "harness review export" in none["min ratings.accuracy"].warning
    strict = _gate(db, baseline, {**RULES, "blind_rules": "fail"})
    assert not strict["_passed"] and strict["min ratings.accuracy"].verdict == "fail"
    assert strict["min ratings.accuracy"].message.startswith("blind rule (gate.blind_rules: fail)")
    _rate(db, "ann", {"c1": {"accuracy": 4.0, "hallucination": 0.0}})  # the candidate rated, the baseline not
    half = _gate(db, baseline, RULES)
    assert half["min ratings.accuracy"].verdict == "pass" and half["max ratings.hallucination"].verdict == "pass"
    drop = half["max_drop ratings.accuracy"]
    assert drop.verdict == "skip" and "the baseline has no human rating of accuracy" in drop.warning
