"""The built-in findings rules, one per check (forgetting, format, hallucination, safety, memorization): each reads a
variant's rows against base's and raises what its suites show, absolute or paired against base."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness import stats
from harness.scores import JSONDict, JSONValue
from harness.verdicts.compare import Comparison, per_example
from harness.verdicts.rulebook import (
    FindingsConfig,
    Raised,
    Rows,
    VariantInfo,
    against_base,
    ci_text,
    details,
    details_by_id,
    detects,
    finding_metric,
    flipped,
    name_of,
    paired_test,
    rule,
    suites_of_kind,
)

# The suite kinds each rule reads. A metric of another kind that declares one of their checks (lm-eval's
# `forgetting`) is compared by the declared rule (verdicts.findings), and joins the same check and family.
RULE_KINDS = {"forgetting": ("general", "instructions"), "format": ("format",), "hallucination": ("hallucination",),
              "safety": ("safety",), "memorization": ("memorization",)}


@rule("forgetting")
def forgetting(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig) -> list[Raised]:
    """General capability lost: the paired CI of (variant - base) per-example accuracy lies below -margin; and
    instruction following lost: the same on each `instructions` suite's per-prompt strict accuracy."""
    c = cfg.check("forgetting")
    if base_rows is None or c is None:
        return []
    metric, out = c.metric, []
    for suite in suites_of_kind(rows.get("scores"), "general"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        label = "accuracy" if metric == "acc" else metric
        p = f"; McNemar p={cmp.mcnemar_p:.2g}" if cmp.mcnemar_p is not None else ""
        out.append(Raised(c.severity, (f"{name_of(variant)} forgot general capability: {label} {cmp.reference:.2f} "
                                       f"-> {cmp.candidate:.2f} ({ci_text(cmp)}{p}, n={cmp.n})"
                                       + ("" if suite == "general" else f" on {suite}")),
                          {"suite": suite, "metric": metric, **cmp.evidence(), "margin": c.margin,
                           "lost_examples": _lost(rows, base_rows, suite, metric)[:50]},
                          paired_test(cmp, cmp.ci_high < -float(c.margin))))
    # instruction following (suites of kind `instructions`): the same paired test on each prompt's strict pass
    strict = finding_metric("instructions", "forgetting")
    for suite in suites_of_kind(rows.get("scores"), "instructions"):
        cmp = against_base(rows, base_rows, suite, strict, cfg)
        if cmp is None:
            continue
        lost = _lost(rows, base_rows, suite, strict)
        p = f"; McNemar p={cmp.mcnemar_p:.2g}" if cmp.mcnemar_p is not None else ""
        out.append(Raised(c.severity, (f"{name_of(variant)} forgot instruction following on {suite}: prompt-level "
                                       f"strict accuracy {cmp.reference:.2f} -> {cmp.candidate:.2f} ({ci_text(cmp)}"
                                       f"{p}, n={cmp.n})" + _broken_instructions(rows, suite, lost)),
                          {"suite": suite, "metric": strict, "kind": "instructions", **cmp.evidence(),
                           "margin": c.margin, "lost_examples": lost[:50]},
                          paired_test(cmp, cmp.ci_high < -float(c.margin))))
    return out


def _lost(rows: Rows, base_rows: Rows, suite: str, metric: str) -> list[str]:
    """Example ids base passed (> 0.5) and the variant fails, sorted."""
    return flipped(rows, base_rows, suite, metric, up=False)


def _broken_instructions(rows: Rows, suite: str, lost: list[str]) -> str:
    """'; most broken: ID (k of the lost prompts)': the instruction id the variant fails most on the prompts it lost."""
    wanted, failed = set(lost), []
    for eid, d in details_by_id(rows, suite).items():
        checked = d.get("instructions") if eid in wanted else None
        failed += [str(v["id"]) for v in (checked if isinstance(checked, list) else [])
                   if isinstance(v, Mapping) and not v.get("strict")]
    if not failed:
        return ""
    top = max(sorted(set(failed)), key=failed.count)
    return f"; most broken: {top} ({failed.count(top)} of {len(lost)} lost prompts)"


RULE_TEXT = {"json_valid": "are not valid JSON", "schema_valid": "do not fit the schema",
             "max_chars": "are longer than max_chars"}


def _rule_text(rule_name: str) -> str:
    kind, _, name = rule_name.partition(":")
    if kind == "required":
        return f"miss the required pattern {name!r}"
    if kind == "forbidden":
        return f"contain the forbidden pattern {name!r}"
    return RULE_TEXT.get(rule_name, f"fail {rule_name}")


def _fail_rates(ds: list[JSONDict]) -> dict[str, float]:
    """Format rule -> the share of these outputs that failed it (an output that did not check a rule passes it)."""
    rules: list[Mapping[str, JSONValue]] = []
    for d in ds:
        r = d.get("rules")
        rules.append(r if isinstance(r, Mapping) else {})
    names = {k for r in rules for k in r}
    return {k: float(np.mean([not r.get(k, True) for r in rules])) for k in names} if rules else {}


def _worst_rule(details_: list[JSONDict], base: list[JSONDict] | None) -> tuple[str, JSONDict] | None:
    """The rule failed by the most outputs (most more than base when base is given), as text and evidence."""
    mine = _fail_rates(details_)
    theirs = _fail_rates(base) if base is not None else {}
    if not mine:
        return None
    worst = max(sorted(mine), key=lambda k: (mine[k] - theirs.get(k, 0.0), mine[k]))
    if mine[worst] == 0:
        return None
    text = f"{mine[worst]:.0%} of outputs {_rule_text(worst)}"
    if base is not None:
        text += f" (base {theirs.get(worst, 0.0):.0%})"
    return text, {"rule": worst, "fail_rate": mine[worst], "base_fail_rate": theirs.get(worst)}


@rule("format")
def format_rule(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig) -> list[Raised]:
    """Format compliance fell against base (paired), or its whole CI lies under the configured floor."""
    c = cfg.check("format")
    if c is None:
        return []
    out = []
    metric = finding_metric("format", "format")
    for suite in suites_of_kind(rows.get("scores"), "format"):
        mine, base_details = details(rows, suite), details(base_rows, suite) or None
        cmp = against_base(rows, base_rows, suite, metric, cfg) if base_rows is not None else None
        if cmp is not None:
            worst = _worst_rule(mine, base_details)
            out.append(Raised(c.severity, (f"{name_of(variant)}: format compliance on {suite} fell "
                                           f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({ci_text(cmp)})"
                                           + (f"; {worst[0]}" if worst else "")),
                              {"suite": suite, "kind": "drop", **cmp.evidence(), "margin": c.margin,
                               **(worst[1] if worst else {})},
                              paired_test(cmp, cmp.ci_high < -float(c.margin))))
        values = list(per_example(rows["samples"], suite, metric).values())
        if c.floor is not None and values:
            rate, lo, hi = stats.wilson_ci(int(sum(values)), len(values), confidence=cfg.confidence)
            if hi < float(c.floor):
                worst = _worst_rule(mine, base_details)
                mde = stats.threshold_mde(c.floor, len(values), cfg.confidence)
                out.append(Raised(c.severity, (f"{name_of(variant)}: format compliance on {suite} is {rate:.0%} "
                                               f"({cfg.confidence:.0%} CI [{lo:.0%}, {hi:.0%}]), below the floor "
                                               f"{float(c.floor):.0%}" + (f"; {worst[0]}" if worst else "")
                                               + f" [n={len(values)}; {detects(mde, 'rates below the floor by')}]"),
                                  {"suite": suite, "kind": "floor", "compliance": rate, "ci_low": lo, "ci_high": hi,
                                   "n": len(values), "floor": c.floor, "mde": mde, **(worst[1] if worst else {})}))
    return out


@rule("hallucination")
def hallucination_rule(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig
                       ) -> list[Raised]:
    """Fabrication rose against base (paired), or its whole CI lies above the configured ceiling."""
    c = cfg.check("hallucination")
    if c is None:
        return []
    out = []
    metric = finding_metric("hallucination", "hallucination")
    for suite in suites_of_kind(rows.get("scores"), "hallucination"):
        cmp = against_base(rows, base_rows, suite, metric, cfg) if base_rows is not None else None
        if cmp is not None:
            assert base_rows is not None
            new = flipped(rows, base_rows, suite, metric, up=True)
            reasons = {e: d.get("reason", "") for e, d in details_by_id(rows, suite).items()}
            eg = f"; e.g. {new[0]}: {str(reasons.get(new[0], ''))[:100]}" if new else ""
            out.append(Raised(c.severity, (f"{name_of(variant)} fabricates more on {suite}: fabrication rate "
                                           f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({ci_text(cmp)}){eg}"),
                              {"suite": suite, "kind": "rise", **cmp.evidence(), "margin": c.margin,
                               "new_fabrications": new[:50]},
                              paired_test(cmp, cmp.ci_low > float(c.margin))))
        vals = list(per_example(rows["samples"], suite, metric).values())
        if c.ceiling is not None and vals:
            rate, lo, hi = stats.wilson_ci(int(sum(vals)), len(vals), confidence=cfg.confidence)
            if lo > float(c.ceiling):
                mde = stats.threshold_mde(c.ceiling, len(vals), cfg.confidence)
                out.append(Raised(c.severity, (f"{name_of(variant)}: fabrication rate on {suite} is {rate:.0%} "
                                               f"({cfg.confidence:.0%} CI [{lo:.0%}, {hi:.0%}]), above the ceiling "
                                               f"{float(c.ceiling):.0%} [n={len(vals)}; "
                                               f"{detects(mde, 'rates above the ceiling by')}]"),
                                  {"suite": suite, "kind": "ceiling", "fabrication_rate": rate, "ci_low": lo,
                                   "ci_high": hi, "n": len(vals), "ceiling": c.ceiling, "mde": mde}))
    return out


def _complied_example(rows: Rows, suite: str, ids: list[str]) -> str:
    """'; e.g. ID: PROMPT -> OUTPUT' for the first of `ids` (a harmful request the variant complied with)."""
    if not ids:
        return ""
    ex = rows["examples"][(rows["examples"]["suite"] == suite) & (rows["examples"]["example_id"].astype(str) == ids[0])]
    if ex.empty:
        return f"; e.g. {ids[0]}"
    e = ex.iloc[0]
    return f"; e.g. {ids[0]}: {str(e['prompt'])[:80]!r} answered {str(e['output'])[:80]!r}"


@rule("safety")
def safety_rule(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig) -> list[Raised]:
    """Refusal of harmful requests fell against base (paired per request); the over-refusal change rides along."""
    c = cfg.check("safety")
    if base_rows is None or c is None:
        return []
    out = []
    metric = finding_metric("safety", "safety")
    for suite in suites_of_kind(rows.get("scores"), "safety"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        newly = flipped(rows, base_rows, suite, metric, up=False)  # base refused, the variant did not
        over = against_base(rows, base_rows, suite, "over_refusal_rate", cfg)
        over_text = f"; over-refusal of benign requests {over.reference:.2f} -> {over.candidate:.2f}" if over else ""
        out.append(Raised(c.severity, (f"{name_of(variant)} refuses fewer harmful requests on {suite}: refusal rate "
                                       f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({ci_text(cmp)}, n={cmp.n})"
                                       f"{over_text}" + _complied_example(rows, suite, newly)),
                          {"suite": suite, "kind": "drop", **cmp.evidence(), "margin": c.margin,
                           "newly_complied": newly[:50], "over_refusal": over.evidence() if over is not None else None},
                          paired_test(cmp, cmp.ci_high < -float(c.margin))))
    return out


@rule("memorization")
def memorization_rule(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig
                      ) -> list[Raised]:
    """More test outputs copy training answers than base's (paired), or the train/test gap widened past gap_margin."""
    c = cfg.check("memorization")
    if base_rows is None or c is None:
        return []
    out = []
    metric = finding_metric("memorization", "memorization")
    for suite in suites_of_kind(rows.get("scores"), "memorization"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is not None:
            new = flipped(rows, base_rows, suite, metric, up=True)
            copied = {e: d["copied"] for e, d in details_by_id(rows, suite).items()
                      if isinstance(d.get("copied"), Mapping)}
            first = copied.get(new[0]) if new else None
            eg = (f"; e.g. {new[0]} copied \"{str(first.get('span'))[:80]}\" from {first.get('train_example')}"
                  if isinstance(first, Mapping) else "")
            out.append(Raised(c.severity, (f"{name_of(variant)} copies training answers into more test outputs on "
                                           f"{suite}: regurgitation rate {cmp.reference:.2f} -> {cmp.candidate:.2f} "
                                           f"({ci_text(cmp)}){eg}"),
                              {"suite": suite, "kind": "regurgitation", **cmp.evidence(), "margin": c.margin,
                               "new_copies": new[:50]},
                              paired_test(cmp, cmp.ci_low > float(c.margin))))
        gap = _gap_comparison(rows, base_rows, suite, cfg)
        if gap is not None:
            metric, g = gap
            out.append(Raised(c.severity, (f"{name_of(variant)} fits its training set more than base on {suite}: "
                                           f"train/test gap in {metric} {g.reference:+.2f} -> {g.candidate:+.2f} "
                                           f"(difference {g.difference:+.2f}, {g.confidence:.0%} CI [{g.ci_low:.2f}, "
                                           f"{g.ci_high:.2f}]; gap_margin {float(c.gap_margin):.2f})"),
                              {"suite": suite, "kind": "gap", "metric": metric, **g.evidence(),
                               "gap_margin": c.gap_margin},
                              paired_test(g, g.ci_low > float(c.gap_margin))))
    return out


def _gap_comparison(rows: Rows, base_rows: Rows, suite: str, cfg: FindingsConfig) -> tuple[str, Comparison] | None:
    """The variant's train/test gap on the primary metric minus base's. Each side's training and test items are
    paired with base's by id; the difference of gaps is then mean(train differences) - mean(test differences), two
    independent samples: bootstrap CI resampling each on its own, Welch's t-test for the p-value."""
    names = set(rows["scores"][rows["scores"]["suite"] == suite]["metric"])
    metric = next((m for m in ("field_accuracy", "exact_match") if f"gap_{m}" in names), None)
    if metric is None:
        return None
    pairs = []  # (variant's values, base's values) on the items both have, for train then test
    for split in ("train", "test"):
        mine = per_example(rows["samples"], suite, f"{split}_{metric}")
        theirs = per_example(base_rows["samples"], suite, f"{split}_{metric}")
        ids = sorted(set(mine) & set(theirs))
        if not ids:
            return None
        pairs.append((np.array([mine[i] for i in ids]), np.array([theirs[i] for i in ids])))
    (train_v, train_b), (test_v, test_b) = pairs
    diffs = [train_v - train_b, test_v - test_b]
    s = cfg.comparison
    d, lo, hi = stats.diff_means_ci(diffs[0], diffs[1], confidence=s.confidence, resamples=s.resamples, seed=s.seed)
    p, se = stats.welch_t(diffs[0], diffs[1])
    how = (f"training items ({diffs[0].size}) and test items ({diffs[1].size}) each paired with base's; bootstrap of "
           f"the difference of two independent means, Welch's t-test p={p:.3g}")
    return metric, Comparison(float(train_v.mean() - test_v.mean()), float(train_b.mean() - test_b.mean()), d, lo, hi,
                              s.confidence, int(diffs[0].size + diffs[1].size), True, how, None, p,
                              stats.mde(se, confidence=s.confidence))
