"""`harness selftest`: planted defects are found at and above the MDE, noise alone stays quiet, on stored runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.testing.synthetic import Synthetic, make_synthetic_store
from harness.verdicts.selftest import design_mde


def test_selftest_on_a_stored_run_prints_power_and_false_alarms_and_passes(tmp_path: Path, capsys) -> None:
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=3, n_heldout=30, n_general=80, n_format=60, n_hallucination=60))
    assert main(["selftest", "--db", str(db), "--repetitions", "15"]) == 0
    out = capsys.readouterr().out
    assert "MDE (80% power)" in out and "false alarms on 30 null copies" in out and "selftest PASSED" in out
    for defect in ("format (compliance drop)", "hallucination (fabrication_rate rise)", "forgetting (acc drop)",
                   "overfitting (validation rise)"):
        assert defect in out, defect
    assert "(below MDE)" in out  # the half-MDE plant is reported for what it is


def test_selftest_fails_when_the_findings_cannot_see_a_defect_the_data_supports(tmp_path: Path, capsys) -> None:
    """A margin so wide that forgetting can never be flagged: the planted accuracy drops go unseen, exit 1."""
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=3, n_general=80, spec_extra="findings:\n  forgetting: {margin: 0.9}\n"))
    assert main(["selftest", "--db", str(db), "--repetitions", "10"]) == 1
    out = capsys.readouterr().out
    assert "MISSED" in out and "selftest FAILED" in out


def test_item20_selftest_nothing_to_check_is_not_a_pass(tmp_path: Path, capsys) -> None:
    """A run with only a held-out suite has no outcome any finding compares: the selftest says it checked nothing
    (no "0.0%" false-alarm rate over 0 copies) and exits 1, never "PASSED"."""
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=2, n_heldout=20, kinds=("heldout",), failed=False, given=False))
    assert main(["selftest", "--db", str(db), "--repetitions", "5"]) == 1
    out = capsys.readouterr().out
    assert "false alarms: nothing to check" in out and "null copies" not in out and "0.0%" not in out
    assert "selftest NOTHING TO CHECK" in out and "is not a pass (exit 1)" in out and "PASSED" not in out
    assert "not checked (no such suite" in out and "format, hallucination, general" in out


def test_selftest_covers_the_newer_suites_findings(tmp_path: Path, capsys) -> None:
    """Safety, instruction-following and regurgitation findings are planted and found like the others."""
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=2, kinds=("heldout", "safety", "instructions", "memorization"),
                                       failed=False, given=False))
    main(["selftest", "--db", str(db), "--repetitions", "5"])
    out = capsys.readouterr().out
    for defect in ("safety (refusal_rate drop)", "forgetting (prompt_strict drop)",
                   "memorization (regurgitation_rate rise)"):
        assert defect in out, defect
    assert "false alarms on 10 null copies" in out and "selftest PASSED" in out
    # 20 prompts of which the variant follows about half: a drop of 1.5x the MDE cannot be planted, so that verdict
    # is listed as untested where it counts rather than passed
    assert "not tested at or above the MDE" in out and "forgetting (prompt_strict drop) on instructions" in out


def test_item20_untested_verdicts_and_an_empty_selftest_are_not_passes() -> None:
    """A defect whose every size at or above its MDE could not be planted is untested; with none tested (or no null
    copy made) the selftest has nothing to check, its false-alarm rate is undefined, and it does not pass."""
    from harness.verdicts.selftest import Row, SelfTest

    found = Row("format (compliance drop)", "fmt", 0.3, 0.2, 10, 10)
    below = Row("safety (refusal_rate drop)", "safety", 0.1, 0.2, 0, 10)
    unplantable = Row("safety (refusal_rate drop)", "safety", 0.3, 0.2, 0, 0)
    curve = Row("overfitting (validation rise)", "divergence", 0.05, 0.02, 10, 10, from_run=False)
    partial = SelfTest("v", [found, below, unplantable, curve], 0, 20)
    assert partial.untested == ["safety (refusal_rate drop) on safety"] and partial.passed
    assert not partial.nothing_to_check
    empty = SelfTest("v", [below, unplantable, curve], 0, 20)
    assert empty.nothing_to_check and not empty.passed  # the synthetic curve is not this run's data
    none = SelfTest("v", [curve], 0, 0)
    assert none.nothing_to_check and not none.passed and none.false_alarm_rate != none.false_alarm_rate  # NaN


def test_design_mde_is_the_fixed_point_of_the_formula() -> None:
    from harness import stats

    m = design_mde(200, 0.95, 1)
    assert m == pytest.approx(stats.mde(((0.05 + m - m * m) / 200) ** 0.5), rel=1e-6)
    assert design_mde(200, 0.95, 3) > m > design_mde(800, 0.95, 1)  # a larger family or fewer items: bigger


def test_selftest_refuses_too_few_repetitions(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=2))
    assert main(["selftest", "--db", str(db), "--repetitions", "2"]) == 2


@pytest.mark.slow
def test_selftest_train_plants_real_defects_by_training_and_cleans_up(tiny_experiment: Path, capsys) -> None:
    from harness.progress import Quiet
    from harness.sweep.runner import run_sweep

    db = tiny_experiment.parent / "r.duckdb"
    with open(tiny_experiment.parent / "out.txt", "w") as out:
        run_sweep(tiny_experiment, db, progress=Quiet(), out=out)
    code = main(["selftest", "--db", str(db), "--repetitions", "5", "--train"])
    out = capsys.readouterr().out
    assert "trained defect: destructive learning rate: findings" in out
    assert "trained defect: many epochs on a small subset: findings" in out
    assert code == (1 if "MISSED" in out else 0)
    assert not list(tiny_experiment.parent.glob(".selftest-*"))  # scratch specs and subsets removed


def test_dry_run_and_data_check_say_what_each_size_can_detect(tiny_experiment: Path, capsys) -> None:
    from harness import stats

    assert main(["sweep", str(tiny_experiment), "--dry-run", "--db", str(tiny_experiment.parent / "r.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "what each suite's size can detect" in out
    # 10 items cannot show any difference at the assumed 20% discordance (an MDE of 0.40 > 0.20): it says so
    assert "heldout: with n=10 a paired comparison cannot reliably detect any difference if 20% of outcomes" in out
    assert f"needs {stats.planning_n()} items or more" in out
    assert main(["data", "check", str(tiny_experiment.parent / "test.jsonl"), "--model", "none"]) == 0
    assert "with n=10 a paired comparison cannot reliably detect" in " ".join(capsys.readouterr().out.split())
    # the planning figure is the MDE formula at a 20% discordance: 2.8 * sqrt(0.2 / n)
    assert stats.planning_mde(100) == pytest.approx(2.80158 * (0.2 / 100) ** 0.5, rel=1e-4)
