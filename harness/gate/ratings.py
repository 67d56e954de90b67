"""The gate's rules on human ratings (`gate.ratings`): each rule with the candidate's and the baseline's rating of
its criterion (from the snapshots' `ratings`), or the reason it is blind, and the comparison a drop rule makes."""

from __future__ import annotations

from dataclasses import dataclass

from harness.gate.rules import METRIC_RULES, MetricRule
from harness.gate.snapshot import RatingEntry, Snapshot
from harness.spec.gate import GateRules
from harness.verdicts.compare import Comparison, Settings, paired, unpaired


@dataclass(frozen=True)
class RatingRule:
    """One rule on one criterion: the metric is 'ratings.<criterion>'; `blind` says why it cannot be checked."""

    rule: MetricRule
    candidate: RatingEntry | None
    baseline: RatingEntry | None
    blind: str = ""


def rating_rules(rules: GateRules, baseline: Snapshot, candidate: Snapshot) -> list[RatingRule]:
    """Every `gate.ratings` rule, in criterion order; blind where a side has no rating of its criterion."""
    cand, base = candidate.get("ratings") or {}, baseline.get("ratings") or {}
    who = f"{candidate['variant'].get('name')} ({candidate['variant'].get('variant_id')})"
    out = []
    for kind in METRIC_RULES:
        for criterion, limit in rules.ratings.table(kind).items():
            if limit is None:
                continue
            rule = MetricRule(kind, f"ratings.{criterion}", float(limit), "spec")
            c, b = cand.get(criterion), base.get(criterion)
            blind = ""
            if c is None:
                blind = (f"the candidate {who} has no human rating of {criterion}"
                         + ("" if cand else " (no ratings at all)") + ": export a sheet with `harness review export`, "
                         "rate it and `harness review import` it, or drop the rule")
            elif kind in ("max_drop", "max_rise") and b is None:
                blind = (f"the baseline has no human rating of {criterion} to compare with: import ratings of the "
                         "baseline's variant and re-save the baseline (`harness baseline save`)")
            out.append(RatingRule(rule, c, b, blind))
    return sorted(out, key=lambda r: (r.rule.metric, METRIC_RULES.index(r.rule.kind)))


def rating_comparison(r: RatingRule, s: Settings, unpaired_why: str | None = None) -> Comparison:
    """candidate - baseline on the criterion: paired over the items both sides' raters rated, else (or when
    `unpaired_why` says the items are not the same) from the two intervals, saying so."""
    assert r.candidate is not None and r.baseline is not None
    if unpaired_why:
        return unpaired(r.candidate, r.baseline, unpaired_why, s)
    result = paired(r.candidate.get("items") or {}, r.baseline.get("items") or {}, s)
    return result if result is not None else unpaired(r.candidate, r.baseline, "no item rated on both sides", s)
