"""`harness gate`: read the candidate from the store and the rules from its spec, evaluate, print, write reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from harness.gate.baseline import check_same_experiment, finished_snapshot, load_baseline, resolve_variant
from harness.gate.evaluate import evaluate
from harness.gate.junit import write_junit
from harness.gate.output import append_summary, print_result
from harness.gate.result import GateResult
from harness.spec.gate import rules_from_file, rules_from_text
from harness.store.db import Store


def run_gate(db: str | Path, run: str | None = "latest", *, baseline: str | Path, variant: str | None = None,
             junit: str | Path | None = None, summary: str | Path | None = None, spec: str | Path | None = None,
             out: TextIO | None = None) -> int:
    """Gate a stored variant against a baseline file; print the table, write JUnit/summary; 0 pass, 1 fail."""
    result = gate_result(db, run, baseline=baseline, variant=variant, spec=spec)
    print_result(result, out or sys.stdout)
    if junit:
        write_junit(result, junit)
    if summary:
        append_summary(result, summary)
    return 0 if result.passed else 1


def gate_result(db: str | Path, run: str | None = "latest", *, baseline: str | Path, variant: str | None = None,
                spec: str | Path | None = None) -> GateResult:
    """Evaluate the gate on a stored variant (the recommended one by default) against a baseline file."""
    base = load_baseline(baseline)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        variant_id, how = resolve_variant(store, run_id, variant)
        cand = finished_snapshot(store, run_id, variant_id, incomplete=True)  # its failed suites fail the gate
        row = store.run_row(run_id)
    if spec:
        rules, where = rules_from_file(spec), str(spec)
    else:
        where = f"{row.get('spec_path') or 'the spec'} (as stored with run {run_id})"
        rules = rules_from_text(row.get("spec"), where)
    check_same_experiment(base, cand, baseline)
    result = evaluate(base, cand, rules, where=where, baseline_path=str(baseline))
    result.notes.insert(0, how)
    return result
