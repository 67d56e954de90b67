"""A user's own scorer (`kind: python`, `scorer: FILE.py:FUNCTION`) from a folder outside the package: declared with
the built-ins' decorator, it is stored per sample, compared paired against base, becomes a finding when it regresses,
is gated, and is in the report, with no other file changed. Real CLI processes on tiny-random-llama."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import make_rows, write_jsonl
from faults.faultlib import harness as run_harness

pytestmark = pytest.mark.slow

# The user's file. The planted regression: every output of `base` is polite, a trained variant's only every third.
SCORER = '''
from harness.scorers import Metric, scorer
from harness.scores import Sample, Score, SuiteResult
from harness import stats


@scorer("tone", metrics=[
    Metric("politeness", per_example=True, primary=True, finding="tone", margin=0.0, gate=("max_drop", 0.05),
           column="politeness"),
    Metric("rudeness", higher_is_better=False, per_example=True),
])
def tone_check(every: int = 3):
    """Planted for the test: base is always polite, any other variant only on every `every`-th example."""

    def score(ctx):
        outs = ctx.model.generate([e.prompt_messages for e in ctx.test], 4)
        polite = [1.0 if ctx.variant.method == "base" or i % every == 0 else 0.0 for i in range(len(outs))]
        samples = [Sample(e.example_id, e.prompt_messages[-1]["content"], o, None, p == 1.0,
                          {"politeness": p, "rudeness": 1.0 - p}, {"note": "planted"})
                   for e, o, p in zip(ctx.test, outs, polite)]
        return SuiteResult([Score.of("politeness", stats.wilson_ci(int(sum(polite)), len(polite)), len(polite)),
                            Score.of("rudeness", stats.wilson_ci(int(len(polite) - sum(polite)), len(polite)),
                                     len(polite))], samples)

    return score
'''

SPEC = """\
name: user-scorer
model: tiny-random-llama
data:
  train: train.jsonl
  validation: 0.25
  test: test.jsonl
sweep:
  method: [lora]
  rank: [2]
  epochs: [1]
  learning_rate: [1.0e-3]
train:
  max_seq_length: 96
  batch_size: 8
suites:
  - path: tone
findings: {tone: {margin: 0.0}}
gate:
  max_drop: {tone.politeness: 0.05}
"""


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` as the fault suite runs it (this checkout's code, no network)."""
    return run_harness(*args, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("user-scorer")
    write_jsonl(d / "train.jsonl", make_rows(16))
    write_jsonl(d / "test.jsonl", make_rows(12, offset=100))
    (d / "tone").mkdir()
    (d / "tone" / "suite.yaml").write_text(
        "name: tone\nversion: 1\nkind: python\ndescription: the user's tone check\n"
        "options:\n  scorer: my_scorers.py:tone_check\n  every: 3\n", encoding="utf-8")
    (d / "tone" / "my_scorers.py").write_text(SCORER, encoding="utf-8")
    (d / "spec.yaml").write_text(SPEC, encoding="utf-8")
    out = _harness("sweep", "spec.yaml", cwd=d)
    assert out.returncode == 0, out.stdout + out.stderr
    return d


def _q(d: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(d / "results.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_user_metric_stored_per_sample_and_declared(swept: Path) -> None:
    rows = _q(swept, "SELECT v.method, count(*), avg(s.value) FROM sample_scores s JOIN variant_results v "
                     "USING (variant_id) WHERE s.suite = 'tone' AND s.metric = 'politeness' GROUP BY ALL ORDER BY 1")
    assert rows == [("base", 12, 1.0), ("lora", 12, pytest.approx(4 / 12))]
    rec = json.loads(_q(swept, "SELECT scorer FROM scores WHERE suite = 'tone' AND metric = 'politeness' LIMIT 1")[0][0])
    assert rec["kind"] == "tone" and rec["python"]["function"] == "tone_check" and len(rec["python"]["sha256"]) == 64
    assert rec["metric"]["finding"] == "tone" and rec["metric"]["gate"] == ["max_drop", 0.05]
    detail = json.loads(_q(swept, "SELECT detail FROM examples WHERE suite = 'tone' LIMIT 1")[0][0])
    assert detail == {"note": "planted"}  # the values live in sample_scores, not in detail


def test_user_metric_regression_is_a_paired_corrected_finding(swept: Path) -> None:
    found = _q(swept, "SELECT f.message, f.evidence FROM findings f JOIN variant_results v USING (variant_id) "
                      "WHERE f.\"check\" = 'tone' AND v.method = 'lora'")
    assert len(found) == 1, found
    message, evidence = found[0][0], json.loads(found[0][1])
    assert "politeness on tone fell against base 1.00 -> 0.33" in message
    assert evidence["paired"] is True and evidence["n"] == 12 and "McNemar" in evidence["how"]
    assert evidence["p_adjusted"] >= evidence["p_value"] and evidence["family"] >= 1  # in the run's family
    assert not _q(swept, "SELECT 1 FROM findings WHERE \"check\" = 'tone' AND message LIKE '%rudeness%'")


def test_user_metric_is_gated_and_in_the_report(swept: Path) -> None:
    saved = _harness("baseline", "save", "latest", "--variant", "base", "-o", "base.json", cwd=swept)
    assert saved.returncode == 0, saved.stderr
    gate = _harness("gate", "latest", "--baseline", "base.json", "--variant", "lora-r2-e1", cwd=swept)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "tone.politeness" in gate.stdout
    report = _harness("report", "latest", "-o", "r.html", cwd=swept)
    assert report.returncode == 0, report.stderr
    html = (swept / "r.html").read_text(encoding="utf-8")
    assert ">politeness</th>" in html


def test_a_rule_against_the_declared_direction_exits_2(swept: Path) -> None:
    spec = swept / "wrong.yaml"
    spec.write_text(SPEC.replace("max_drop: {tone.politeness: 0.05}", "max_drop: {tone.rudeness: 0.05}"),
                    encoding="utf-8")
    out = _harness("sweep", "wrong.yaml", "--dry-run", cwd=swept)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "key 'gate.max_drop.tone.rudeness'" in out.stderr and "use 'gate.max_rise.tone.rudeness'" in out.stderr


def test_code_enters_the_fingerprint_of_a_python_suite_only(tmp_path: Path) -> None:
    """A `kind: python` suite's scorer file is an input of its scores (edited: new variant ids); a built-in suite's
    generator script (suites/general/build_items.py) is not, so adding one leaves ids as they were."""
    from harness.data.suites import load_suite

    user = tmp_path / "tone"
    user.mkdir()
    (user / "suite.yaml").write_text("name: tone\nversion: 1\nkind: python\noptions:\n  scorer: tone.py:tone_check\n")
    (user / "tone.py").write_text(SCORER)
    before = load_suite(user).fingerprint()
    (user / "tone.py").write_text(SCORER + "\n# edited\n")
    assert load_suite(user).fingerprint() != before
    builtin = tmp_path / "general"
    shutil.copytree(Path(__file__).resolve().parent.parent / "suites" / "general", builtin)
    kept = load_suite(builtin).fingerprint()
    (builtin / "build_items.py").write_text("# regenerated\n")
    assert load_suite(builtin).fingerprint() == kept
