"""The release gate's verdicts: a candidate snapshot against a baseline snapshot under the spec's rules."""

from __future__ import annotations

import math
import time
from collections import defaultdict

from harness.gate.ratings import RatingRule, rating_comparison, rating_rules
from harness.gate.result import FAIL, PASS, SKIP, Check, GateResult, num, with_ci
from harness.gate.rules import METRIC_RULES, MetricRule, expand, finding_checks
from harness.gate.snapshot import SnapExample, SnapScore, Snapshot
from harness.scorers import metric_info
from harness.scores import SUITE_FAILED
from harness.spec.gate import GateRules
from harness.verdicts.compare import Comparison, Interval, Settings, compare


class Side:
    """One snapshot (baseline or candidate) indexed for lookups."""

    def __init__(self, snap: Snapshot):
        self.snap = snap
        self.scores = {f"{s['suite']}.{s['metric']}": s for s in snap["scores"]}
        self.kinds = {name: s.get("kind") for name, s in snap["suites"].items()}
        self.examples: dict[str, list[SnapExample]] = defaultdict(list)
        for e in snap["examples"]:
            self.examples[e["suite"]].append(e)

    def per_example(self, score: SnapScore) -> dict[str, float]:
        """Example id -> the metric's value for that example, as its scorer stored it under the metric's name."""
        out: dict[str, float] = {}
        for e in self.examples.get(score["suite"], []):
            x = (e.get("metrics") or {}).get(score["metric"])
            if isinstance(x, bool | int | float) and not (isinstance(x, float) and math.isnan(x)):
                out[str(e["example_id"])] = float(x)
        return out


def _compare(b: SnapScore, c: SnapScore, base: Side, cand: Side, unpaired_why: str | None,
             rules: GateRules, confidence: float) -> Comparison:
    """candidate - baseline: the one paired comparison where the metric has per-example values on both sides."""
    kind = cand.kinds.get(c["suite"]) or base.kinds.get(b["suite"])
    result = compare(kind, c["metric"], cand.per_example(c), base.per_example(b), Settings(confidence, rules.resamples),
                     scores=(c, b), unpaired_why=unpaired_why, declared=c.get("declared") or b.get("declared"))
    assert result is not None  # stored scores are given, so an unpaired answer is always possible
    return result


def _limit_check(r: MetricRule, c: Interval, b: Interval | None, rules: GateRules) -> Check:
    """min / max: an absolute floor or ceiling on the candidate's value (or on its whole CI)."""
    src = "" if r.source == "spec" else " (default)"
    at_least = r.kind == "min"
    probe = c.get("value") if rules.limits_on == "value" else c.get("ci_high") if at_least else c.get("ci_low")
    allowance = f"{'>=' if at_least else '<='} {r.limit:g}{src}"
    check = Check(r.kind, r.metric, with_ci(b), with_ci(c), "", allowance, PASS, "",
                  numbers={"value": c.get("value"), "limit": r.limit})
    if probe is None:
        check.verdict, check.message = FAIL, f"{r.metric} has no value for the candidate"
    elif (probe < r.limit) if at_least else (probe > r.limit):
        what = "value" if rules.limits_on == "value" else "whole 95% CI"
        side = "below the floor" if at_least else "above the ceiling"
        check.verdict, check.message = FAIL, f"{r.metric} = {with_ci(c)}: the {what} is {side} {r.limit:g}"
    else:
        check.message = f"{r.metric} = {with_ci(c)} is within {allowance}"
    return check


def _metric_check(r: MetricRule, base: Side, cand: Side, suite_state: dict[str, str], test_changed: bool,
                  rules: GateRules, confidence: float) -> Check:
    c, b = cand.scores[r.metric], base.scores.get(r.metric)
    if r.kind in ("min", "max"):
        return _limit_check(r, c, b, rules)
    assert b is not None  # expand() only makes drop/rise rules for metrics on both sides
    drop = r.kind == "max_drop"
    word = "drop" if drop else "rise"
    allowance = f"{word} <= {r.limit:g}{'' if r.source == 'spec' else ' (default)'}"
    check = Check(r.kind, r.metric, with_ci(b), with_ci(c), "", allowance, PASS, "")
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
    cmp = _compare(b, c, base, cand, unpaired_why, rules, confidence)
    _judge_difference(check, r, cmp, b, c, rules, confidence)
    return check


def _judge_difference(check: Check, r: MetricRule, cmp: Comparison, b: Interval, c: Interval,
                      rules: GateRules, confidence: float) -> None:
    word = "drop" if r.kind == "max_drop" else "rise"
    check.numbers = {"diff": cmp.difference, "low": cmp.ci_low, "high": cmp.ci_high, "paired": cmp.paired,
                     "how": cmp.how, "n": cmp.n, "mcnemar_p": cmp.mcnemar_p, "mde": cmp.mde,
                     "confidence": confidence}
    _judge(check, r, cmp, b, c, word, f"{confidence:.1%}".replace(".0%", "%"))
    _blind(check, r, cmp, word, rules)


def _rating_check(r: RatingRule, rules: GateRules, confidence: float, test_changed: bool) -> Check:
    """A rule on human ratings: like a metric rule, but blind (skipped with a warning, or failed under
    blind_rules: fail) while a side it needs has no ratings."""
    rule = r.rule
    if r.blind:
        allowance = (f"{'>=' if rule.kind == 'min' else '<='} {rule.limit:g}" if rule.kind in ("min", "max") else
                     f"{'drop' if rule.kind == 'max_drop' else 'rise'} <= {rule.limit:g}")
        check = Check(rule.kind, rule.metric, with_ci(r.baseline), with_ci(r.candidate), "", allowance, SKIP,
                      f"blind: {r.blind}", warning=r.blind)
        if rules.blind_rules == "fail":
            check.verdict, check.message = FAIL, f"blind rule (gate.blind_rules: fail): {r.blind}"
        return check
    assert r.candidate is not None
    if rule.kind in ("min", "max"):
        return _limit_check(rule, r.candidate, r.baseline, rules)
    assert r.baseline is not None
    word = "drop" if rule.kind == "max_drop" else "rise"
    check = Check(rule.kind, rule.metric, with_ci(r.baseline), with_ci(r.candidate), "", f"{word} <= {rule.limit:g}",
                  PASS, "")
    cmp = rating_comparison(r, Settings(confidence, rules.resamples), "the test set changed" if test_changed else None)
    _judge_difference(check, rule, cmp, r.baseline, r.candidate, rules, confidence)
    return check


def _judge(check: Check, r: MetricRule, cmp: Comparison, b: Interval, c: Interval, word: str,
           pct: str) -> None:
    """Fail where the whole interval lies beyond the allowance; say "within noise" where only the point does."""
    drop = word == "drop"
    check.difference = f"{num(cmp.difference, True)} [{num(cmp.ci_low, True)}, {num(cmp.ci_high, True)}]"
    check.mde = "n/a" if cmp.mde is None else f"{cmp.mde:.3f}"
    beyond = cmp.ci_high < -r.limit if drop else cmp.ci_low > r.limit
    point_beyond = cmp.difference < -r.limit if drop else cmp.difference > r.limit
    if beyond:
        check.verdict = FAIL
        check.message = (f"{r.metric} {'fell' if drop else 'rose'} by {abs(cmp.difference):.3f} ({with_ci(b)} -> "
                         f"{with_ci(c)}); the {pct} CI of the difference {check.difference} lies entirely beyond "
                         f"the allowed {word} of {r.limit:g} ({cmp.how})")
    elif point_beyond:
        check.message = (f"the point estimate {num(cmp.difference, True)} exceeds the allowed {word} of {r.limit:g}, "
                         f"but the {pct} CI {check.difference} does not support it: within noise ({cmp.how})")
    else:
        check.message = f"difference {check.difference} within the allowed {word} of {r.limit:g} ({cmp.how})"
    if cmp.mde is not None:
        check.message += f"; detects {word}s >= {cmp.mde:.3f} with 80% power"


def _blind(check: Check, r: MetricRule, cmp: Comparison, word: str, rules: GateRules) -> None:
    """A rule whose allowance is below its minimum detectable effect cannot catch the change it allows."""
    if cmp.mde is None or cmp.mde <= r.limit:
        return
    check.warning = (f"with n={cmp.n} this rule can only detect {word}s >= {cmp.mde:.2f}; its allowance is "
                     f"{r.limit:g}: a {word} between the two passes unseen (more test examples, or a larger "
                     "allowance, closes the gap)")
    if rules.blind_rules == "fail" and check.verdict == PASS:
        check.verdict = FAIL
        check.message = f"blind rule (gate.blind_rules: fail): {check.warning}"


def _test_set_check(base: Snapshot, cand: Snapshot, rules: GateRules) -> tuple[Check, bool]:
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


def _suite_checks(base: Snapshot, cand: Snapshot, rules: GateRules
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


def _finding_checks(base: Snapshot, cand: Snapshot, rules: GateRules) -> list[Check]:
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


def failed_suites(snap: Snapshot) -> dict[str, str]:
    """Suite -> why it failed, from a snapshot's `suite_failed` findings (an incomplete variant's)."""
    out = {}
    for f in snap["findings"]:
        evidence = f.get("evidence")
        if f["check"] == SUITE_FAILED and isinstance(evidence, dict) and evidence.get("suite"):
            out[str(evidence["suite"])] = str(evidence.get("error") or f.get("message") or "")
    return out


def rule_confidence(rules: GateRules, k: int) -> tuple[float, str]:
    """The confidence of each drop/rise rule's interval, and a note saying which correction applies and why."""
    if rules.correction == "none" or k <= 1:
        return rules.confidence, ""
    each = 1 - (1 - rules.confidence) / k
    return each, (f"correction: Bonferroni over the {k} rules that compare with the baseline, each interval at "
                  f"{each:.2%}, so that noise alone fails this gate at most {1 - rules.confidence:.0%} of the time "
                  "(a release passes only if every rule passes, so each extra rule is another chance of a false "
                  "failure); gate.correction: none turns it off")


def evaluate(baseline: Snapshot, candidate: Snapshot, rules: GateRules, *, where: str,
             baseline_path: str = "") -> GateResult:
    """Every check of the gate: comparability (test set, suites), findings, then each metric rule."""
    base, cand = Side(baseline), Side(candidate)
    test_check, test_changed = _test_set_check(baseline, candidate, rules)
    suite_checks, suite_state, notes = _suite_checks(baseline, candidate, rules)
    checks = [test_check, *suite_checks, *_finding_checks(baseline, candidate, rules)]
    kinds = {name: s.get("kind") for name, s in candidate["suites"].items()}
    metrics = {k: metric_info(kinds.get(s["suite"]), s["metric"], {"metric": s["declared"]} if s.get("declared")
                              else None) for k, s in cand.scores.items()}
    who = f"candidate {candidate['variant'].get('name')} ({candidate['variant'].get('variant_id')})"
    failed = failed_suites(candidate)  # an incomplete candidate: rules on these suites' metrics fail, never pass
    checks += [Check("suite_scored", suite, "", "failed", "", "scored", FAIL,
                     f"suite {suite} failed on the candidate ({error}): its metrics have no value, so no rule on them "
                     "can pass; run the sweep again, which scores only the missing suites")
               for suite, error in failed.items()]
    for key in {*base.scores, *(k for kind in METRIC_RULES for k in rules.table(kind))}:
        suite, _, metric = key.partition(".")
        if suite in failed and key not in metrics and metric and not any(ch in key for ch in "*?["):
            metrics[key] = metric_info(kinds.get(suite) or base.kinds.get(suite), metric)
    metric_rules = expand(rules, metrics, set(base.scores), where, who)
    rated = rating_rules(rules, baseline, candidate)
    confidence, note = rule_confidence(rules, sum(r.kind in ("max_drop", "max_rise") for r in metric_rules)
                                       + sum(r.rule.kind in ("max_drop", "max_rise") and not r.blind for r in rated))
    if note:
        notes.append(note)
    for r in metric_rules:
        t0 = time.perf_counter()
        if r.metric not in cand.scores:  # its suite failed on the candidate
            checks.append(Check(r.kind, r.metric, with_ci(base.scores[r.metric]) if r.metric in base.scores else "",
                                "not scored", "", f"{r.limit:g}", FAIL,
                                f"{r.metric} has no value: suite {r.metric.partition('.')[0]} failed on the candidate"))
            continue
        check = _metric_check(r, base, cand, suite_state, test_changed, rules, confidence)
        check.seconds = time.perf_counter() - t0
        if check.verdict == FAIL and r.source == "default":
            check.message += (f" [a default rule: set gate.{r.kind}.{r.metric} in the spec to change it, "
                              "or to null to drop it]")
        checks.append(check)
    for rr in rated:
        t0 = time.perf_counter()
        check = _rating_check(rr, rules, confidence, test_changed)
        check.seconds = time.perf_counter() - t0
        checks.append(check)
    if not metric_rules and not rated:
        notes.append("no metric rule applied: add max_drop/min/max rules to the spec's gate: block")
    if baseline["variant"]["variant_id"] == candidate["variant"]["variant_id"]:
        notes.append("the candidate is the baseline's own variant")
    if baseline.get("model_fingerprint") != candidate.get("model_fingerprint"):
        notes.append(f"base model differs: baseline {baseline.get('model_fingerprint')}, "
                     f"candidate {candidate.get('model_fingerprint')}")
    return GateResult(baseline, candidate, baseline_path, checks, notes, rules.confidence)
