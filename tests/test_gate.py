"""The release gate: noise-aware rules against a baseline, comparability checks, JUnit, summary, exit codes."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import make_rows, write_jsonl
from gate_fixtures import HELDOUT, JUNIT_XSD, flips, outcomes, variant, write_run

from harness.cli import main
from harness.errors import HarnessInputError
from harness.gate.baseline import load_baseline, save_baseline
from harness.gate.evaluate import evaluate
from harness.gate.result import FAIL, PASS, SKIP, GateResult
from harness.gate.run import run_gate
from harness.progress import Quiet
from harness.spec.gate import parse_rules
from harness.store.db import Store

GOOD = outcomes(80, 0.75, seed=7)


def gate(db: Path, run: str, baseline: Path, **kw: Any) -> tuple[int, str]:
    out = io.StringIO()
    return run_gate(db, run, baseline=baseline, out=out, **kw), out.getvalue()


def result_of(db: Path, run: str, baseline: Path, variant_id: str, rules: dict | None = None) -> GateResult:
    with Store(db, read_only=True) as s:
        from harness.gate.baseline import snapshot

        cand = snapshot(s, run, variant_id)
    return evaluate(load_baseline(baseline), cand, parse_rules(rules or {}, "test"), where="test")


def by_name(result: GateResult) -> dict[str, Any]:
    return {c.name: c for c in result.checks}


@pytest.fixture
def planted(tmp_path: Path) -> SimpleNamespace:
    """A baseline run (75% exact match on 80 items) saved as a baseline file."""
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("base0", "base", outcomes(80, 0.2, seed=1), method="base"),
                         variant("good1", "lora-good", GOOD)], name="baseline-run")
    path = save_baseline(db, run, variant="good1", output=tmp_path / "baselines" / "b.json")
    return SimpleNamespace(db=db, run=run, baseline=path, dir=tmp_path)


def candidate(p: SimpleNamespace, vid: str, passed: list[bool], **kw: Any) -> str:
    run_kw = {k: kw.pop(k) for k in ("test_fp", "suites", "spec") if k in kw}
    name = kw.pop("experiment", f"cand-{vid}")
    return write_run(p.db, [variant("base0", "base", outcomes(80, 0.2, seed=1), method="base"),
                            variant(vid, f"cand-{vid}", passed, **kw)], name=name, **run_kw)


# -- real sweeps on tiny-random-llama -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """lora seeds 0 and 1 trained into a store, then a `given` spec scoring seed 0's saved adapter."""
    from harness.sweep.runner import run_sweep

    d = tmp_path_factory.mktemp("gate-sweep")
    write_jsonl(d / "train.jsonl", make_rows(12))
    write_jsonl(d / "test.jsonl", make_rows(10, offset=100))
    suites = "suites:\n  - name: heldout\n    options: {max_new_tokens: 8}\n"
    (d / "spec.yaml").write_text(
        "name: tiny-gate\nmodel: tiny-random-llama\ndata: {train: train.jsonl, validation: 0.25, test: test.jsonl}\n"
        "sweep: {method: [lora], rank: [2], epochs: [1], learning_rate: [1.0e-3], seed: [0, 1]}\n"
        "train: {max_seq_length: 96, batch_size: 8}\n" + suites)
    db = d / "results.duckdb"
    run = run_sweep(d / "spec.yaml", db, progress=Quiet(), out=io.StringIO())
    with Store(db, read_only=True) as s:
        v = s.run_table(run, "variants").set_index("name")
    artifact = Path(v.loc["lora-r2-e1-s0", "artifact"]).relative_to(d)
    (d / "given.yaml").write_text(
        f"name: tiny-given\nmodel: tiny-random-llama\ndata: {{test: test.jsonl}}\n"
        f"sweep: {{method: [given], checkpoint: [{artifact}]}}\n" + suites)
    given_run = run_sweep(d / "given.yaml", db, progress=Quiet(), out=io.StringIO())
    baseline = save_baseline(db, run, variant="lora-r2-e1-s0", output=d / "baselines" / "tiny.json")
    return SimpleNamespace(dir=d, db=db, run=run, given_run=given_run, baseline=baseline, ids=v["variant_id"])


def test_sweep_gate_passes_on_baselines_own_run(sweep: SimpleNamespace) -> None:
    code, out = gate(sweep.db, sweep.run, sweep.baseline, variant="lora-r2-e1-s0", junit=sweep.dir / "own.xml")
    assert code == 0, out
    assert "gate PASSED" in out and "the candidate is the baseline's own variant" in out
    suite = ET.parse(sweep.dir / "own.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests", 0)) >= 5


def test_sweep_gate_passes_on_retrain_with_another_seed(sweep: SimpleNamespace) -> None:
    code, out = gate(sweep.db, sweep.run, sweep.baseline, variant="lora-r2-e1-s1")
    assert code == 0, out
    assert "max_drop" in out and "heldout.exact_match" in out and "lora-r2-e1-s1" in out


def test_sweep_gate_scores_a_given_checkpoint(sweep: SimpleNamespace) -> None:
    # default candidate: the given run's recommended variant, i.e. the adapter scored without training
    code, out = gate(sweep.db, sweep.given_run, sweep.baseline)
    assert code == 0, out
    assert "Recommended: given-model:" in out
    with Store(sweep.db, read_only=True) as s:
        given = s.run_table(sweep.given_run, "variants").set_index("method").loc["given"]
        rows = s.query("""SELECT g.example_id, g.output AS g_out, l.output AS l_out, gs.value AS g_loss,
                          ls.value AS l_loss
                          FROM examples g JOIN examples l USING (suite, example_id)
                          JOIN sample_scores gs ON gs.variant_id = g.variant_id AND gs.suite = g.suite
                               AND gs.example_id = g.example_id AND gs.metric = 'loss'
                          JOIN sample_scores ls ON ls.variant_id = l.variant_id AND ls.suite = l.suite
                               AND ls.example_id = l.example_id AND ls.metric = 'loss'
                          WHERE g.variant_id = ? AND l.variant_id = ?""",
                       [given["variant_id"], sweep.ids["lora-r2-e1-s0"]])
    assert given["artifact"].endswith("model") and len(rows) == 10
    # the given adapter is the trained one: same outputs, same per-example reference loss
    assert (rows["g_out"] == rows["l_out"]).all()
    assert ((rows["g_loss"] - rows["l_loss"]).abs() < 1e-3).all()


def test_gate_command_does_not_import_torch(sweep: SimpleNamespace) -> None:
    code = ("import sys; from harness.cli import main; rc = main(['gate', 'latest', '--baseline', sys.argv[1], "
            "'--db', sys.argv[2]]); assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(sweep.baseline), str(sweep.db)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr + proc.stdout


# -- planted stores with exact outcomes -------------------------------------------------------------------
def test_planted_regression_fails(planted: SimpleNamespace) -> None:
    run = candidate(planted, "bad1", flips(GOOD, down=30))  # 75% -> ~38% exact match
    code, out = gate(planted.db, run, planted.baseline, junit=planted.dir / "g.xml")
    assert code == 1
    assert "gate FAILED" in out and "FAIL max_drop heldout.exact_match" in out
    r = by_name(result_of(planted.db, run, planted.baseline, "bad1"))
    em = r["max_drop heldout.exact_match"]
    assert em.verdict == FAIL and em.numbers["paired"] and em.numbers["high"] < -0.05
    assert em.numbers["diff"] == pytest.approx(-30 / 80)
    assert "McNemar p=" in em.message and "[a default rule" in em.message
    assert r["max_drop heldout.field_accuracy"].verdict == FAIL
    assert r["same_test_set data.test"].verdict == PASS and r["same_suite heldout"].verdict == PASS


def test_drop_beyond_allowance_but_within_noise_passes(planted: SimpleNamespace) -> None:
    run = candidate(planted, "noisy", flips(GOOD, down=4, up=1))  # -3/80 = -0.0375 on the point estimate
    c = by_name(result_of(planted.db, run, planted.baseline, "noisy",
                          {"max_drop": {"heldout.exact_match": 0.02}}))["max_drop heldout.exact_match"]
    assert c.numbers["diff"] == pytest.approx(-0.0375) and c.numbers["paired"]
    assert c.numbers["low"] < -0.02 < c.numbers["high"]
    assert c.verdict == PASS and "within noise" in c.message


def test_retrain_with_overlapping_cis_passes(planted: SimpleNamespace) -> None:
    run = candidate(planted, "seed1", flips(GOOD, down=3, up=2), seed=1)
    code, out = gate(planted.db, run, planted.baseline)
    assert code == 0, out
    c = by_name(result_of(planted.db, run, planted.baseline, "seed1"))["max_drop heldout.exact_match"]
    assert c.numbers["diff"] == pytest.approx(-1 / 80) and c.verdict == PASS


def test_changed_suite_version_fails_and_skips_its_metrics(planted: SimpleNamespace) -> None:
    v2 = {**HELDOUT, "version": "2", "fingerprint": "f-heldout-2"}
    run = candidate(planted, "v2", GOOD, suite=v2, suites=[v2])
    code, out = gate(planted.db, run, planted.baseline)
    assert code == 1 and "changed version (1 -> 2)" in out
    r = by_name(result_of(planted.db, run, planted.baseline, "v2"))
    assert r["same_suite heldout"].verdict == FAIL
    assert r["max_drop heldout.exact_match"].verdict == SKIP


def test_changed_suite_content_is_compared_unpaired_or_fails_when_required(planted: SimpleNamespace) -> None:
    changed = {**HELDOUT, "fingerprint": "f-heldout-edited"}
    run = candidate(planted, "edit", GOOD, suites=[changed])
    r = by_name(result_of(planted.db, run, planted.baseline, "edit"))
    assert r["same_suite heldout"].verdict == PASS and "without a version bump" in r["same_suite heldout"].message
    assert not r["max_drop heldout.exact_match"].numbers["paired"]
    strict = by_name(result_of(planted.db, run, planted.baseline, "edit", {"require_same_suite_content": True}))
    assert strict["same_suite heldout"].verdict == FAIL


def test_changed_test_set_fails(planted: SimpleNamespace) -> None:
    run = candidate(planted, "newtest", GOOD, test_fp="test-fp-2", experiment="baseline-run")  # same experiment
    code, out = gate(planted.db, run, planted.baseline)
    assert code == 1 and "the test set changed" in out
    r = by_name(result_of(planted.db, run, planted.baseline, "newtest"))
    assert r["same_test_set data.test"].verdict == FAIL
    em = r["max_drop heldout.exact_match"]
    assert not em.numbers["paired"] and "the test set changed" in em.message
    loose = by_name(result_of(planted.db, run, planted.baseline, "newtest", {"require_same_test_set": False}))
    assert loose["same_test_set data.test"].verdict == SKIP


def test_suite_in_baseline_but_not_scored_fails(planted: SimpleNamespace, tmp_path: Path) -> None:
    extra_suite = {"name": "extra", "version": "1", "kind": "custom", "options": {}, "fingerprint": "e"}
    db = tmp_path / "two.duckdb"
    run = write_run(db, [variant("two", "two-suites", GOOD)], suites=[HELDOUT, extra_suite])
    b = save_baseline(db, run, variant="two", output=tmp_path / "two.json")
    cand = candidate(SimpleNamespace(db=db), "one", GOOD)
    r = by_name(result_of(db, cand, b, "one"))
    assert r["same_suite extra"].verdict == FAIL and "did not score it" in r["same_suite extra"].message


def test_overfitting_finding_fails_unless_allowed(planted: SimpleNamespace) -> None:
    finding = {"check": "overfitting", "severity": "warning", "message": "validation loss rose 0.8 -> 1.1",
               "evidence": {}}
    run = candidate(planted, "over", GOOD, findings=[finding])
    assert gate(planted.db, run, planted.baseline, variant="over")[0] == 1
    c = by_name(result_of(planted.db, run, planted.baseline, "over"))["no_findings overfitting"]
    assert c.verdict == FAIL and "validation loss rose" in c.message
    relaxed = result_of(planted.db, run, planted.baseline, "over", {"no_findings": []})
    assert relaxed.passed


def _format_and_hallucination(passed: list[bool], fabricated: list[bool]) -> tuple[list, list]:
    from harness import stats

    ok = [float(p) for p in passed]
    fab = [float(f) for f in fabricated]
    scores = [
        {"suite": "acme-format", "metric": "compliance", "value": v, "ci_low": lo, "ci_high": hi, "n": len(ok),
         "suite_version": "1"} for v, lo, hi in [stats.wilson_ci(int(sum(ok)), len(ok))]
    ] + [
        {"suite": "acme-hallucination", "metric": "fabrication_rate", "value": v, "ci_low": lo, "ci_high": hi,
         "n": len(fab), "suite_version": "1"} for v, lo, hi in [stats.wilson_ci(int(sum(fab)), len(fab))]
    ]
    # as the scorers store them: each example's value under the metric's name
    examples = [{"suite": "acme-format", "example_id": f"fmt:{i}", "passed": p,
                 "detail": {"compliance": float(p), "reasons": []}} for i, p in enumerate(passed)]
    examples += [{"suite": "acme-hallucination", "example_id": f"probe:{i}", "passed": not f,
                  "detail": {"fabrication_rate": float(f), "fabricated": f}} for i, f in enumerate(fabricated)]
    return scores, examples


SUITES = [HELDOUT, {"name": "acme-format", "version": "1", "kind": "format", "options": {}, "fingerprint": "fm"},
          {"name": "acme-hallucination", "version": "1", "kind": "hallucination", "options": {}, "fingerprint": "h"}]


def test_absolute_floor_and_ceiling_from_defaults(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    good = _format_and_hallucination([True] * 50, [False] * 40)
    run = write_run(db, [variant("ref", "ref", GOOD, extra=good)], suites=SUITES)
    b = save_baseline(db, run, variant="ref", output=tmp_path / "b.json")
    bad = _format_and_hallucination([True] * 48 + [False] * 2, [True] * 4 + [False] * 36)
    cand = write_run(db, [variant("c", "c", GOOD, extra=bad)], suites=SUITES)
    r = by_name(result_of(db, cand, b, "c"))
    floor, ceiling = r["min acme-format.compliance"], r["max acme-hallucination.fabrication_rate"]
    assert floor.verdict == FAIL and "below the floor 0.98" in floor.message
    assert ceiling.verdict == FAIL and "above the ceiling 0.05" in ceiling.message
    # limits_on: ci fails only when the whole interval is beyond the limit
    on_ci = by_name(result_of(db, cand, b, "c", {"limits_on": "ci"}))
    assert on_ci["min acme-format.compliance"].verdict == PASS
    # a paired drop rule on compliance pairs through each example's stored compliance
    drop = by_name(result_of(db, cand, b, "c", {"max_drop": {"acme-format.compliance": 0.0}, "defaults": False}))
    assert set(drop) >= {"max_drop acme-format.compliance"} and "min acme-format.compliance" not in drop
    c = drop["max_drop acme-format.compliance"]
    assert c.numbers["paired"] and c.numbers["diff"] == pytest.approx(-0.04)
    # the fabrication rate is compared paired too (each probe's fabrication_rate is stored under its name)
    rise = by_name(result_of(db, cand, b, "c", {"max_rise": {"acme-hallucination.fabrication_rate": 0.0}}))
    fr = rise["max_rise acme-hallucination.fabrication_rate"]
    assert fr.numbers["paired"] and "paired bootstrap over 40 examples, McNemar" in fr.message
    assert fr.numbers["diff"] == pytest.approx(0.1)


def test_per_example_values_are_read_under_the_metric_name_never_guessed(tmp_path: Path) -> None:
    """`passed` reproduces compliance here, but with no `compliance` stored per example the gate does not use it."""
    db = tmp_path / "r.duckdb"
    ok, bad = [True] * 50, [True] * 40 + [False] * 10
    strip = lambda rows: ([*rows[0]], [{**e, "detail": {"reasons": []}} for e in rows[1]])  # noqa: E731
    run = write_run(db, [variant("ref", "ref", GOOD, extra=strip(_format_and_hallucination(ok, [False] * 40)))],
                    suites=SUITES)
    b = save_baseline(db, run, variant="ref", output=tmp_path / "b.json")
    cand = write_run(db, [variant("c", "c", GOOD, extra=strip(_format_and_hallucination(bad, [False] * 40)))],
                     suites=SUITES)
    r = by_name(result_of(db, cand, b, "c", {"max_drop": {"acme-format.compliance": 0.0}, "defaults": False}))
    c = r["max_drop acme-format.compliance"]
    assert not c.numbers["paired"] and "stores no per-example values" in c.message


def test_stored_ci_fallback_for_corpus_metrics(planted: SimpleNamespace) -> None:
    worse = variant("bleu", "bleu", GOOD)
    for s in worse["scores"]:
        if s["metric"] == "bleu":
            s.update(value=0.1, ci_low=0.05, ci_high=0.15)
    run = write_run(planted.db, [worse])
    c = by_name(result_of(planted.db, run, planted.baseline, "bleu",
                          {"max_drop": {"heldout.bleu": 0.05}}))["max_drop heldout.bleu"]
    assert c.verdict == FAIL and not c.numbers["paired"] and "unpaired, from the stored 95% CIs" in c.message
    same = by_name(result_of(planted.db, planted.run, planted.baseline, "good1",
                             {"max_drop": {"heldout.bleu": 0.05}}))["max_drop heldout.bleu"]
    assert same.verdict == PASS and same.numbers["low"] < 0 < same.numbers["high"]


def test_unseen_suite_and_pattern_rules(tmp_path: Path) -> None:
    reading = {"name": "reading.v2", "version": "7", "kind": "qa-f1", "options": {}, "fingerprint": "r"}
    f1 = [0.9, 0.8, 0.7, 0.95] * 10

    def rows(vals: list[float]) -> tuple[list, list]:
        from harness import stats

        v, lo, hi = stats.mean_ci(vals)
        return ([{"suite": "reading.v2", "metric": "token_f1", "value": v, "ci_low": lo, "ci_high": hi,
                  "n": len(vals), "suite_version": "7"}],
                [{"suite": "reading.v2", "example_id": f"q{i}", "passed": x > 0.5, "detail": {"token_f1": x}}
                 for i, x in enumerate(vals)])

    from harness.scorers import Metric, scorer

    scorer("qa-f1", metrics=[Metric("token_f1", per_example=True)])(lambda: None)  # a user's own scorer kind
    db = tmp_path / "r.duckdb"
    run = write_run(db, [variant("a", "a", GOOD, extra=rows(f1))], suites=[HELDOUT, reading])
    b = save_baseline(db, run, variant="a", output=tmp_path / "b.json")
    cand = write_run(db, [variant("b", "b", GOOD, extra=rows([x - 0.2 for x in f1]))], suites=[HELDOUT, reading])
    r = by_name(result_of(db, cand, b, "b", {"max_drop": {"reading.v2.*": 0.05}}))
    c = r["max_drop reading.v2.token_f1"]
    assert c.verdict == FAIL and c.numbers["paired"] and c.numbers["diff"] == pytest.approx(-0.2)


def test_rules_come_from_the_runs_stored_spec(planted: SimpleNamespace) -> None:
    spec = "name: x\ngate:\n  max_drop: {heldout.exact_match: 0.5, heldout.field_accuracy: 0.5}\n"
    run = candidate(planted, "lenient", flips(GOOD, down=30), spec=spec)
    assert gate(planted.db, run, planted.baseline)[0] == 0
    override = planted.dir / "strict.yaml"
    override.write_text("gate:\n  max_drop: {heldout.exact_match: 0.01}\n")
    assert gate(planted.db, run, planted.baseline, spec=override)[0] == 1


def test_bad_rules_are_bad_input(planted: SimpleNamespace) -> None:
    run = candidate(planted, "typo", GOOD, spec="name: x\ngate:\n  max_dropp: {heldout.exact_match: 0.1}\n")
    with pytest.raises(HarnessInputError, match="Did you mean 'max_drop'"):
        gate(planted.db, run, planted.baseline)
    rules = planted.dir / "rules.yaml"
    rules.write_text("gate:\n  min: {heldout.exact_macth: 0.5, heldout.nothing: 1}\n")
    with pytest.raises(HarnessInputError) as exc:
        gate(planted.db, planted.run, planted.baseline, spec=rules)
    text = str(exc.value)
    assert "heldout.nothing" in text and "Did you mean 'heldout.exact_match'" in text
    assert "Available: heldout.bleu, heldout.exact_match, heldout.field_accuracy" in text
    with pytest.raises(HarnessInputError, match="allowances must be >= 0"):
        parse_rules({"max_drop": {"a.b": -0.1}}, "spec.yaml")


def test_junit_is_valid_with_right_counts(planted: SimpleNamespace) -> None:
    from lxml import etree  # installed with sacrebleu

    hostile = {"check": "overfitting", "severity": "warning", "message": "bell \x07 <script>alert(1)</script> & ]]>",
               "evidence": {}}
    v2 = {**HELDOUT, "version": "2"}
    run = candidate(planted, "mixed", flips(GOOD, down=30), findings=[hostile], suite=v2, suites=[v2])
    path = planted.dir / "reports" / "gate.xml"
    code, _ = gate(planted.db, run, planted.baseline, junit=path)
    assert code == 1
    etree.XMLSchema(etree.fromstring(JUNIT_XSD.encode())).assertValid(etree.parse(str(path)))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    cases = suites[0].findall("testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    # test set ok; suite version FAIL; overfitting FAIL; the two heldout drop rules SKIP (versions differ)
    assert len(cases) == 5 and len(failed) == 2 and len(skipped) == 2
    for el in (root, suites[0]):
        assert el.get("tests") == "5" and el.get("failures") == "2" and el.get("errors") == "0"
    assert suites[0].get("skipped") == "2"
    assert {c.get("classname") for c in failed} == {"harness.gate.same_suite", "harness.gate.no_findings"}
    msg = next(c for c in failed if "overfitting" in c.get("name", "")).find("failure").get("message")
    assert "<script>alert(1)</script>" in msg and "\x07" not in msg  # escaped by XML, control char replaced
    assert all(float(c.get("time")) >= 0 and c.get("name") for c in cases)


def test_markdown_summary_appends_and_escapes(planted: SimpleNamespace) -> None:
    finding = {"check": "overfitting", "severity": "warning", "message": "a | b <img src=x onerror=alert(1)>",
               "evidence": {}}
    run = candidate(planted, "md", flips(GOOD, down=30), findings=[finding])
    summary = planted.dir / "summary.md"
    summary.write_text("earlier step\n")
    assert gate(planted.db, run, planted.baseline, summary=summary)[0] == 1
    assert gate(planted.db, planted.run, planted.baseline, summary=summary, variant="good1")[0] == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "### ❌ Release gate FAILED" in text and "### ✅ Release gate PASSED" in text
    assert re.search(r"(?<!\\)<img", text) is None and "a \\| b \\<img" in text  # no live HTML
    table = [ln for ln in text.splitlines() if ln.startswith("| max\\_drop")]
    assert len(table) == 4 and all(ln.count(" | ") == 7 for ln in table)


def test_cli_exit_codes(planted: SimpleNamespace, capsys: pytest.CaptureFixture) -> None:
    bad = candidate(planted, "cli-bad", flips(GOOD, down=30))
    args = ["--baseline", str(planted.baseline), "--db", str(planted.db)]
    assert main(["gate", planted.run, *args, "--variant", "good1"]) == 0
    assert main(["gate", bad, *args]) == 1
    assert main(["gate", "latest", *args, "--variant", "nope"]) == 2
    assert "--variant 'nope' is not in this run" in capsys.readouterr().err
    assert main(["gate", "latest", "--baseline", str(planted.dir / "none.json"), "--db", str(planted.db)]) == 2
    assert main(["gate", "no-such-run", *args]) == 2
    assert "is not in this store" in capsys.readouterr().err


def test_spec_gate_block_is_checked_before_a_sweep(tmp_path: Path) -> None:
    from harness.spec.schema import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\ndata: {test: test.jsonl}\nsweep: {method: [given], checkpoint: [m]}\n"
                    "gate:\n  max_drop: {heldout.exact_match: -0.1}\n  limits_on: mean\n")
    with pytest.raises(HarnessInputError) as exc:
        load_spec(spec)
    text = str(exc.value)
    assert "spec.yaml:5: key 'gate.max_drop'" in text and "gate.limits_on" in text


# -- power: minimum detectable effects and blind rules --------------------------------------------------------
def test_mde_of_paired_binary_outcomes_matches_the_closed_form() -> None:
    from harness import stats

    n, discordant = 100, 20  # 10 pairs flip each way: mean difference 0, variance of the differences 20/99
    d = np.array([1.0] * 10 + [-1.0] * 10 + [0.0] * 80)
    se = stats.paired_se(d)
    assert se == pytest.approx(np.sqrt(discordant / (n - 1) / n))
    # (z_0.975 + z_0.8) * se = (1.95996 + 0.84162) * se
    assert stats.mde(se) == pytest.approx(2.80158 * se, rel=1e-4)
    assert stats.mde(se, confidence=0.99) == pytest.approx((2.57583 + 0.84162) * se, rel=1e-4)
    # no discordant pair at all: at least one is assumed, never "detects everything"
    assert stats.paired_se(np.zeros(50)) == pytest.approx(np.sqrt(1 / 50 / 50))


def test_a_difference_of_one_mde_is_detected_about_80_percent_of_the_time() -> None:
    """Simulation: paired 0/1 outcomes with a 30% discordance rate and a true difference equal to the MDE."""
    from harness import stats

    rng = np.random.default_rng(0)
    n, rate = 200, 0.3
    mde = stats.mde(np.sqrt(rate / n))
    p_up, p_down = (rate + mde) / 2, (rate - mde) / 2
    hits = 0
    for _ in range(2000):
        u = rng.random(n)
        d = np.where(u < p_up, 1.0, np.where(u < p_up + p_down, -1.0, 0.0))
        hits += abs(d.mean()) / stats.paired_se(d) > stats.z(0.95)
    assert 0.74 <= hits / 2000 <= 0.86, hits / 2000


def test_a_rule_whose_allowance_is_below_its_mde_warns_and_can_be_made_to_fail(planted: SimpleNamespace) -> None:
    run = candidate(planted, "same", flips(GOOD, down=8, up=8))  # 16 of 80 outcomes differ, no net change
    code, out = gate(planted.db, run, planted.baseline, variant="same")
    assert code == 0 and "MDE (80% power)" in out
    assert "warn max_drop heldout.exact_match: with n=80 this rule can only detect drops >= " in out
    assert "its allowance is 0.05" in out
    r = by_name(result_of(planted.db, run, planted.baseline, "same"))["max_drop heldout.exact_match"]
    assert r.numbers["mde"] > 0.05 and r.warning and r.verdict == PASS
    strict = by_name(result_of(planted.db, run, planted.baseline, "same", {"blind_rules": "fail"}))
    assert strict["max_drop heldout.exact_match"].verdict == FAIL
    assert "blind rule (gate.blind_rules: fail)" in strict["max_drop heldout.exact_match"].message
    roomy = by_name(result_of(planted.db, run, planted.baseline, "same", {"max_drop": {"heldout.exact_match": 0.5}}))
    assert not roomy["max_drop heldout.exact_match"].warning  # an allowance the data can resolve


def test_the_gate_corrects_its_comparative_rules_together_and_says_so(planted: SimpleNamespace) -> None:
    run = candidate(planted, "same2", GOOD)
    result = result_of(planted.db, run, planted.baseline, "same2")
    assert any(n.startswith("correction: Bonferroni over the 2 rules") for n in result.notes)
    assert by_name(result)["max_drop heldout.exact_match"].numbers["confidence"] == pytest.approx(0.975)
    plain = result_of(planted.db, run, planted.baseline, "same2", {"correction": "none"})
    assert by_name(plain)["max_drop heldout.exact_match"].numbers["confidence"] == pytest.approx(0.95)
    assert not any(n.startswith("correction:") for n in plain.notes)
