"""The release gate: a candidate variant against a baseline file under the spec's rules; exit 0 pass, 1 fail."""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from harness import stats
from harness.gate.baseline import check_same_experiment, finished_snapshot, load_baseline, resolve_variant
from harness.gate.rules import GateRules, MetricRule, expand, finding_checks, rules_from_file, rules_from_text
from harness.store.db import Store

PASS, FAIL, SKIP = "pass", "fail", "skip"
TOLERANCE = 1e-6  # per-example values must reproduce the stored aggregate this closely to be paired


@dataclass
class Check:
    """One rule's outcome: a row of the table, a JUnit testcase, a line of the summary."""

    rule: str  # max_drop | max_rise | min | max | no_findings | same_test_set | same_suite
    target: str  # the metric, finding check or suite it is about
    baseline: str
    candidate: str
    difference: str
    allowance: str
    verdict: str  # pass | fail | skip
    message: str
    seconds: float = 0.0
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.rule} {self.target}"


@dataclass
class GateResult:
    """Every check of one gate run, with what was compared."""

    baseline: dict[str, Any]
    candidate: dict[str, Any]
    baseline_path: str
    checks: list[Check]
    notes: list[str]
    confidence: float = 0.95

    @property
    def passed(self) -> bool:
        return not any(c.verdict == FAIL for c in self.checks)

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)


def _num(x: float | None, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.3f}" if sign else f"{x:.3f}" if abs(x) < 1000 else f"{x:,.1f}"


def _with_ci(s: dict[str, Any] | None) -> str:
    if not s:
        return ""
    if s.get("ci_low") is None or s.get("ci_high") is None:
        return _num(s.get("value"))
    return f"{_num(s['value'])} [{_num(s['ci_low'])}, {_num(s['ci_high'])}]"


class Side:
    """One snapshot (baseline or candidate) indexed for lookups."""

    def __init__(self, snap: dict[str, Any]):
        self.snap = snap
        self.scores = {f"{s['suite']}.{s['metric']}": s for s in snap["scores"]}
        self.examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in snap["examples"]:
            self.examples[e["suite"]].append(e)

    def per_example(self, score: dict[str, Any]) -> dict[str, float] | None:
        """Example id -> the metric's per-example value, from detail[metric] or `passed`, whichever reproduces
        the stored aggregate (mean and n); None when neither does."""
        rows = self.examples.get(score["suite"], [])
        value, n = score.get("value"), score.get("n")
        if value is None or not rows:
            return None
        for source in ("metric", "passed"):
            vals = {}
            for e in rows:
                x = (e.get("metrics") or {}).get(score["metric"]) if source == "metric" else e.get("passed")
                if isinstance(x, bool | int | float) and not (isinstance(x, float) and math.isnan(x)):
                    vals[str(e["example_id"])] = float(x)
            if not vals or (n is not None and n != len(vals)):
                continue
            if abs(float(np.mean(list(vals.values()))) - value) <= TOLERANCE * max(1.0, abs(value)):
                return vals
        return None


def _compare(b: dict[str, Any], c: dict[str, Any], base: Side, cand: Side, unpaired_why: str | None,
             rules: GateRules) -> dict[str, Any]:
    """candidate - baseline with a CI: paired bootstrap over matched examples, else from the stored CIs."""
    bv, cv = (base.per_example(b), cand.per_example(c)) if unpaired_why is None else (None, None)
    if bv and cv:
        ids = sorted(set(bv) & set(cv))
        unpaired_why = None if ids else "no example ids in common"
        if ids:
            x, y = np.array([cv[i] for i in ids]), np.array([bv[i] for i in ids])
            d, lo, hi = stats.paired_diff_ci(x, y, confidence=rules.confidence, resamples=rules.resamples)
            how = f"paired bootstrap over {len(ids)} examples"
            if np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all():
                how += f", McNemar p={stats.mcnemar_exact(x > 0.5, y > 0.5):.3g}"
            unmatched = len(set(bv) ^ set(cv))
            if unmatched:
                how += f", {unmatched} examples without a partner left out"
            return {"diff": d, "low": lo, "high": hi, "paired": True, "how": how}
    why = unpaired_why or "no per-example values that reproduce the stored score"
    d = c["value"] - b["value"]
    have_ci = None not in (c.get("ci_low"), c.get("ci_high"), b.get("ci_low"), b.get("ci_high"))
    if not have_ci:
        return {"diff": d, "low": d, "high": d, "paired": False, "how": f"point values only ({why}; no stored CI)"}
    # MOVER (Newcombe/Zou): combine the two stored 95% intervals into one for the difference.
    lo = d - math.hypot(c["value"] - c["ci_low"], b["ci_high"] - b["value"])
    hi = d + math.hypot(c["ci_high"] - c["value"], b["value"] - b["ci_low"])
    return {"diff": d, "low": lo, "high": hi, "paired": False, "how": f"unpaired, from the stored 95% CIs ({why})"}


def _metric_check(r: MetricRule, base: Side, cand: Side, suite_state: dict[str, str], test_changed: bool,
                  rules: GateRules) -> Check:
    c, b = cand.scores[r.metric], base.scores.get(r.metric)
    src = "" if r.source == "spec" else " (default)"
    if r.kind in ("min", "max"):
        at_least = r.kind == "min"
        probe = c.get("value") if rules.limits_on == "value" else c.get("ci_high" if at_least else "ci_low")
        allowance = f"{'>=' if at_least else '<='} {r.limit:g}{src}"
        check = Check(r.kind, r.metric, _with_ci(b), _with_ci(c), "", allowance, PASS, "",
                      numbers={"value": c.get("value"), "limit": r.limit})
        if probe is None:
            check.verdict, check.message = FAIL, f"{r.metric} has no value for the candidate"
        elif (probe < r.limit) if at_least else (probe > r.limit):
            what = "value" if rules.limits_on == "value" else "whole 95% CI"
            check.verdict = FAIL
            check.message = (f"{r.metric} = {_with_ci(c)}: the {what} is {'below the floor' if at_least else 'above the ceiling'} "
                             f"{r.limit:g}")
        else:
            check.message = f"{r.metric} = {_with_ci(c)} is within {allowance}"
        return check
    assert b is not None  # expand() only makes drop/rise rules for metrics on both sides
    drop = r.kind == "max_drop"
    allowance = f"{'drop' if drop else 'rise'} <= {r.limit:g}{src}"
    check = Check(r.kind, r.metric, _with_ci(b), _with_ci(c), "", allowance, PASS, "")
    state = suite_state.get(c["suite"], "same")
    if state == "version" and rules.require_same_suite_versions:
        check.verdict, check.message = SKIP, f"suite {c['suite']} changed version: scores are not comparable"
        return check
    if c.get("value") is None or b.get("value") is None:
        check.verdict = FAIL
        check.message = f"{r.metric} has no value to compare (baseline {b.get('value')}, candidate {c.get('value')})"
        return check
    unpaired_why = (f"suite {c['suite']} changed version" if state == "version" else
                    f"suite {c['suite']}'s content changed" if state == "content" else
                    "the test set changed" if test_changed else None)
    cmp = _compare(b, c, base, cand, unpaired_why, rules)
    check.numbers = cmp
    pct = f"{rules.confidence:.0%}"
    check.difference = f"{_num(cmp['diff'], True)} [{_num(cmp['low'], True)}, {_num(cmp['high'], True)}]"
    beyond = cmp["high"] < -r.limit if drop else cmp["low"] > r.limit
    point_beyond = cmp["diff"] < -r.limit if drop else cmp["diff"] > r.limit
    word = "drop" if drop else "rise"
    if beyond:
        check.verdict = FAIL
        check.message = (f"{r.metric} {'fell' if drop else 'rose'} by {abs(cmp['diff']):.3f} ({_with_ci(b)} -> "
                         f"{_with_ci(c)}); the {pct} CI of the difference {check.difference} lies entirely beyond "
                         f"the allowed {word} of {r.limit:g} ({cmp['how']})")
    elif point_beyond:
        check.message = (f"the point estimate {_num(cmp['diff'], True)} exceeds the allowed {word} of {r.limit:g}, "
                         f"but the {pct} CI {check.difference} does not support it: within noise ({cmp['how']})")
    else:
        check.message = f"difference {check.difference} within the allowed {word} of {r.limit:g} ({cmp['how']})"
    return check


def _test_set_check(base: dict[str, Any], cand: dict[str, Any], rules: GateRules) -> tuple[Check, bool]:
    bt, ct = base["data_fingerprints"].get("test"), cand["data_fingerprints"].get("test")
    check = Check("same_test_set", "data.test", (bt or "n/a")[:12], (ct or "n/a")[:12], "", "identical", PASS,
                  "the candidate was scored on the baseline's test set")
    changed = bool(bt and ct and bt != ct)
    if not (bt and ct):
        check.verdict, check.message = SKIP, "no test-set fingerprint on one side; cannot tell whether it changed"
    elif changed:
        check.verdict = FAIL if rules.require_same_test_set else SKIP
        check.message = (f"the test set changed (fingerprint {bt[:12]} -> {ct[:12]}): held-out scores are not "
                         "comparable; re-save the baseline on the new test set"
                         + ("" if rules.require_same_test_set else " (require_same_test_set: false)"))
    return check, changed


def _suite_checks(base: dict[str, Any], cand: dict[str, Any], rules: GateRules
                  ) -> tuple[list[Check], dict[str, str], list[str]]:
    """A check per baseline suite (same version, and content when required); each suite's state; notes."""
    checks, state, notes = [], {}, []
    for name in sorted(set(base["suites"]) | set(cand["suites"])):
        b, c = base["suites"].get(name), cand["suites"].get(name)
        if b is None:
            notes.append(f"suite {name} is new (not in the baseline): only absolute rules apply to it")
            continue
        check = Check("same_suite", name, f"v{b.get('version')}", f"v{c.get('version')}" if c else "not scored",
                      "", "same version", PASS, f"suite {name} version {b.get('version')} on both sides")
        strict = rules.require_same_suite_versions
        if c is None:
            state[name] = "missing"
            check.verdict = FAIL if strict else SKIP
            check.message = (f"the baseline has suite {name} (version {b.get('version')}) but the candidate's run "
                             "did not score it: add it to the spec's suites, or re-save the baseline")
        elif str(b.get("version")) != str(c.get("version")):
            state[name] = "version"
            check.verdict = FAIL if strict else SKIP
            check.message = (f"suite {name} changed version ({b.get('version')} -> {c.get('version')}): scores are "
                             "not comparable across versions; re-save the baseline with this suite version")
        elif b.get("fingerprint") and c.get("fingerprint") and b["fingerprint"] != c["fingerprint"]:
            state[name] = "content"
            if rules.require_same_suite_content:
                check.verdict = FAIL
            check.message = (f"suite {name}'s items or options changed without a version bump (fingerprint "
                             f"{b['fingerprint']} -> {c['fingerprint']}); its metrics are compared unpaired")
            check.allowance = "same version and content" if rules.require_same_suite_content else check.allowance
        else:
            state[name] = "same"
        checks.append(check)
    return checks, state, notes


def _finding_checks(base: dict[str, Any], cand: dict[str, Any], rules: GateRules) -> list[Check]:
    out = []
    for name in finding_checks(rules):
        hits = [f for f in cand["findings"] if name == "any" or f["check"] == name]
        before = [f for f in base["findings"] if name == "any" or f["check"] == name]
        check = Check("no_findings", name, str(len(before)), str(len(hits)), "", "none", PASS,
                      f"the candidate has no {name} finding")
        if hits:
            check.verdict = FAIL
            check.message = f"the candidate has {len(hits)} {name} finding(s): " + "; ".join(
                f"[{f.get('severity')}] {f['check']}: {f.get('message')}" for f in hits)
        out.append(check)
    return out


def evaluate(baseline: dict[str, Any], candidate: dict[str, Any], rules: GateRules, *, where: str,
             baseline_path: str = "") -> GateResult:
    """Every check of the gate: comparability (test set, suites), findings, then each metric rule."""
    base, cand = Side(baseline), Side(candidate)
    test_check, test_changed = _test_set_check(baseline, candidate, rules)
    suite_checks, suite_state, notes = _suite_checks(baseline, candidate, rules)
    checks = [test_check, *suite_checks, *_finding_checks(baseline, candidate, rules)]
    kinds = {name: s.get("kind") for name, s in candidate["suites"].items()}
    metrics = {k: (kinds.get(s["suite"]), s["metric"]) for k, s in cand.scores.items()}
    who = f"candidate {candidate['variant'].get('name')} ({candidate['variant'].get('variant_id')})"
    metric_rules = expand(rules, metrics, set(base.scores), where, who)
    for r in metric_rules:
        t0 = time.perf_counter()
        check = _metric_check(r, base, cand, suite_state, test_changed, rules)
        check.seconds = time.perf_counter() - t0
        if check.verdict == FAIL and r.source == "default":
            check.message += (f" [a default rule: set gate.{r.kind}.{r.metric} in the spec to change it, "
                              "or to null to drop it]")
        checks.append(check)
    if not metric_rules:
        notes.append("no metric rule applied: add max_drop/min/max rules to the spec's gate: block")
    if baseline["variant"]["variant_id"] == candidate["variant"]["variant_id"]:
        notes.append("the candidate is the baseline's own variant")
    if baseline.get("model_fingerprint") != candidate.get("model_fingerprint"):
        notes.append(f"base model differs: baseline {baseline.get('model_fingerprint')}, "
                     f"candidate {candidate.get('model_fingerprint')}")
    return GateResult(baseline, candidate, baseline_path, checks, notes, rules.confidence)


def run_gate(db: str | Path, run: str | None = "latest", *, baseline: str | Path, variant: str | None = None,
             junit: str | Path | None = None, summary: str | Path | None = None, spec: str | Path | None = None,
             out: TextIO | None = None) -> int:
    """Gate a stored variant against a baseline file; print the table, write JUnit/summary; 0 pass, 1 fail."""
    from harness.gate.output import append_summary, print_result
    from harness.gate.junit import write_junit

    base = load_baseline(baseline)
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        variant_id, how = resolve_variant(store, run_id, variant)
        cand = finished_snapshot(store, run_id, variant_id)
        row = store.run_row(run_id)
    if spec:
        rules, where = rules_from_file(spec), str(spec)
    else:
        where = f"{row.get('spec_path') or 'the spec'} (as stored with run {run_id})"
        rules = rules_from_text(row.get("spec"), where)
    check_same_experiment(base, cand, baseline)
    result = evaluate(base, cand, rules, where=where, baseline_path=str(baseline))
    result.notes.insert(0, how)
    print_result(result, out or sys.stdout)
    if junit:
        write_junit(result, junit)
    if summary:
        append_summary(result, summary)
    return 0 if result.passed else 1
