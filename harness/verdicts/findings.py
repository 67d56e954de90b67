"""Verdicts on a variant against `base`: rules registered here turn stored rows into `findings` rows.

Every comparison is the one paired comparison (verdicts.compare) on the metric's per-example values. All the
comparisons of a run against base are one family: their p-values are adjusted together (Holm by default,
Benjamini-Hochberg as an option), and a finding is raised only when the paired interval clears "no change" by the
configured margin and the adjusted p-value is below 1 - confidence. Thresholds come from the spec's `findings:`
block (spec.findings, docs/scoring.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from harness import stats
from harness.scorers import declared_findings, metric_info, suite_kinds
from harness.scorers.registry import Metric
from harness.spec.findings import settings
from harness.verdicts.compare import Comparison, Settings, clusters_of, paired, per_example

# A rule reads the variant's row, its and base's rows ({'scores', 'examples', 'train_log'} DataFrames, details
# decoded) and the merged `findings:` settings, and returns finding rows: check, severity, message, evidence.
Rows = dict[str, pd.DataFrame]
Rule = Callable[[dict[str, Any], Rows, Rows | None, dict[str, Any]], list[dict[str, Any]]]
_RULES: dict[str, Rule] = {}


def rule(check: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        if check in _RULES:
            raise ValueError(f"a findings rule for {check!r} is already registered")
        _RULES[check] = fn
        return fn

    return wrap


CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}


def derive_run(variants: list[tuple[dict[str, Any], Rows]], base_rows: Rows | None,
               spec_findings: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The findings of a whole run: every variant's comparisons against base form one family, corrected together.
    `variants` holds each variant's `variants` row and rows; `base` itself is compared with nothing."""
    cfg = settings(spec_findings, declared=declared_checks([rows.get("scores") for _, rows in variants]))
    found: list[dict[str, Any]] = []
    for variant, rows in variants:
        base = None if variant.get("method") == "base" else base_rows
        for check, fn in _RULES.items():
            found += [{"variant_id": variant["variant_id"], "check": check, "severity": "warning", **f}
                      for f in fn(variant, rows, base, cfg)]
        found += [{"variant_id": variant["variant_id"], "check": check, **f}
                  for check, f in declared_rule(variant, rows, base, cfg)]
    tested = [f for f in found if f.get("test")]
    adjusted = stats.adjust_pvalues([f["test"]["p"] for f in tested], cfg["correction"])
    return _decide(found, tested, adjusted, cfg, CORRECTION_NAMES[cfg["correction"]])


def _decide(found: list[dict[str, Any]], tested: list[dict[str, Any]], adjusted: list[float], cfg: dict[str, Any],
            how: str) -> list[dict[str, Any]]:
    """Keep the absolute findings, and the comparisons whose interval clears the margin and whose adjusted p-value
    is below 1 - confidence; their evidence and message carry both p-values."""
    qs = {id(f): q for f, q in zip(tested, adjusted, strict=True)}
    out = []
    for f in found:
        test = f.pop("test", None)
        if test is None:
            out.append(f)
            continue
        q = qs[id(f)]
        if not (test["clears"] and q < 1 - cfg["confidence"]):
            continue
        f["evidence"].update(p_value=test["p"], p_adjusted=q, correction=cfg["correction"], family=len(tested))
        if f["evidence"].get("mde") is not None and cfg["correction"] != "none":  # what this family can detect
            f["evidence"]["mde"] = stats.mde_for_family(f["evidence"]["mde"], confidence=cfg["confidence"],
                                                        family=len(tested))
        f["message"] += (f" [p={test['p']:.2g}" + ("" if cfg["correction"] == "none" else
                         f", {how}-adjusted p={q:.2g} over {len(tested)} comparisons")
                         + f"; {detects(f['evidence'].get('mde'))}]")
        out.append(f)
    return out


def detects(mde: float | None, what: str = "differences") -> str:
    """What a finding's comparison could have detected, for its message: its minimum detectable effect."""
    if mde is None:
        return "minimum detectable effect unknown"
    return f"detects {what} >= {mde:.2f} with 80% power"



def derive(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, spec_findings: dict[str, Any] | None
           ) -> list[dict[str, Any]]:
    """The findings of one variant alone (its comparisons are their own family); `base_rows` None for base."""
    return [{k: v for k, v in f.items() if k != "variant_id"}
            for f in derive_run([(variant, rows)], base_rows, spec_findings)]


def checks() -> tuple[str, ...]:
    """The checks this module derives: its rules' and every declared metric's (overfitting is the scorer's own)."""
    return tuple(dict.fromkeys([*_RULES, *sorted(declared_findings())]))


def declared_checks(score_frames: list[pd.DataFrame | None]) -> dict[str, float]:
    """check -> default margin for every check a metric feeds: the registered scorers' and the ones stored with
    these scores (a user's scorer whose code this process has not loaded)."""
    out = declared_findings()
    for frame in score_frames:
        for _, _, m in declared_regressions(frame):
            out.setdefault(str(m.finding), m.margin)
    return out


def finding_metric(kind: str, check: str) -> str:
    """The metric a built-in suite kind declares as feeding `check` (its first such declaration)."""
    from harness.scorers import declared_metrics

    found = next((m.name for m in declared_metrics(kind) if m.finding == check), None)
    if found is None:
        raise LookupError(f"suite kind {kind!r} declares no metric feeding the {check!r} finding")
    return found


def comparison_settings(cfg: dict[str, Any]) -> Settings:
    """The comparison settings of merged `findings:` settings."""
    return Settings(cfg["confidence"], cfg["resamples"], cfg["seed"])


# -- reading rows ----------------------------------------------------------------------------------------------
def suites_of_kind(scores: pd.DataFrame | None, kind: str) -> list[str]:
    """Suite names whose scores were made by a scorer of `kind`."""
    return sorted(s for s, k in suite_kinds(scores).items() if k == kind) if scores is not None else []


def against_base(rows: Rows, base_rows: Rows, suite: str, metric: str, cfg: dict[str, Any]) -> Comparison | None:
    """The variant's per-example `metric` on `suite` minus base's, paired by example id."""
    return paired(per_example(rows["samples"], suite, metric), per_example(base_rows["samples"], suite, metric),
                  comparison_settings(cfg), clusters_of(rows["examples"], suite) or None)


def _test(c: Comparison, clears: bool) -> dict[str, Any]:
    """What the run-level decision needs of a comparison: its raw p-value, and whether its interval clears."""
    return {"p": 1.0 if c.p_value is None else c.p_value, "clears": clears}


def _details(rows: Rows | None, suite: str) -> list[dict[str, Any]]:
    ex = rows["examples"] if rows is not None else None
    if ex is None or ex.empty:
        return []
    return [d if isinstance(d, dict) else {} for d in ex[ex["suite"] == suite]["detail"]]


def _ci(c: Comparison) -> str:
    return f"paired difference {c.difference:+.2f}, {c.confidence:.0%} CI [{c.ci_low:.2f}, {c.ci_high:.2f}]"


def _name(variant: dict[str, Any]) -> str:
    return str(variant.get("name") or variant.get("variant_id") or "variant")


# -- the rules -------------------------------------------------------------------------------------------------
@rule("forgetting")
def forgetting(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """General capability lost: the paired CI of (variant - base) per-example accuracy lies below -margin; and
    instruction following lost: the same on each `instructions` suite's per-prompt strict accuracy."""
    c = cfg["forgetting"]
    if base_rows is None or c is False:
        return []
    metric, out = str(c["metric"]), []
    for suite in suites_of_kind(rows.get("scores"), "general"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        label = "accuracy" if metric == "acc" else metric
        p = f"; McNemar p={cmp.mcnemar_p:.2g}" if cmp.mcnemar_p is not None else ""
        out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_high < -float(c["margin"])),
                    "message": (f"{_name(variant)} forgot general capability: {label} {cmp.reference:.2f} -> "
                                f"{cmp.candidate:.2f} ({_ci(cmp)}{p}, n={cmp.n})"
                                + ("" if suite == "general" else f" on {suite}")),
                    "evidence": {"suite": suite, "metric": metric, **cmp.evidence(), "margin": c["margin"],
                                 "lost_examples": _lost(rows, base_rows, suite, metric)[:50]}})
    # instruction following (suites of kind `instructions`): the same paired test on each prompt's strict pass
    strict = finding_metric("instructions", "forgetting")
    for suite in suites_of_kind(rows.get("scores"), "instructions"):
        cmp = against_base(rows, base_rows, suite, strict, cfg)
        if cmp is None:
            continue
        lost = _lost(rows, base_rows, suite, strict)
        p = f"; McNemar p={cmp.mcnemar_p:.2g}" if cmp.mcnemar_p is not None else ""
        out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_high < -float(c["margin"])),
                    "message": (f"{_name(variant)} forgot instruction following on {suite}: prompt-level strict "
                                f"accuracy {cmp.reference:.2f} -> {cmp.candidate:.2f} ({_ci(cmp)}{p}, n={cmp.n})"
                                + _broken_instructions(rows, suite, lost)),
                    "evidence": {"suite": suite, "metric": strict, "kind": "instructions", **cmp.evidence(),
                                 "margin": c["margin"], "lost_examples": lost[:50]}})
    return out


def _lost(rows: Rows, base_rows: Rows, suite: str, metric: str) -> list[str]:
    """Example ids base passed (> 0.5) and the variant fails, sorted."""
    return _flipped(rows, base_rows, suite, metric, up=False)


def _flipped(rows: Rows, base_rows: Rows, suite: str, metric: str, *, up: bool) -> list[str]:
    """Example ids whose 0/1 `metric` went from 0 (base) to 1 (variant) where `up`, else from 1 to 0; sorted."""
    mine, theirs = per_example(rows["samples"], suite, metric), per_example(base_rows["samples"], suite, metric)
    if up:
        return sorted(i for i in set(mine) & set(theirs) if mine[i] > 0.5 >= theirs[i])
    return sorted(i for i in set(mine) & set(theirs) if theirs[i] > 0.5 >= mine[i])


def _broken_instructions(rows: Rows, suite: str, lost: list[str]) -> str:
    """'; most broken: ID (k of the lost prompts)': the instruction id the variant fails most on the prompts it lost."""
    ex = rows["examples"][rows["examples"]["suite"] == suite]
    wanted = set(lost)
    failed = [v["id"] for e, d in zip(ex["example_id"], ex["detail"], strict=True) if str(e) in wanted
              and isinstance(d, dict) for v in d.get("instructions") or [] if not v.get("strict")]
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


def _worst_rule(details: list[dict[str, Any]], base: list[dict[str, Any]] | None) -> tuple[str, dict[str, Any]] | None:
    """The rule failed by the most outputs (most more than base when base is given), as text and evidence."""
    def fail_rates(ds: list[dict[str, Any]]) -> dict[str, float]:
        rules = [d.get("rules") or {} for d in ds]
        names = {k for r in rules for k in r}
        return {k: float(np.mean([not r.get(k, True) for r in rules])) for k in names} if rules else {}

    mine = fail_rates(details)
    theirs = fail_rates(base) if base is not None else {}
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
def format_rule(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Format compliance fell against base (paired), or its whole CI lies under the configured floor."""
    c = cfg["format"]
    if c is False:
        return []
    out = []
    metric = finding_metric("format", "format")
    for suite in suites_of_kind(rows.get("scores"), "format"):
        details, base_details = _details(rows, suite), _details(base_rows, suite) or None
        cmp = against_base(rows, base_rows, suite, metric, cfg) if base_rows is not None else None
        if cmp is not None:
            worst = _worst_rule(details, base_details)
            out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_high < -float(c["margin"])),
                        "message": (f"{_name(variant)}: format compliance on {suite} fell "
                                    f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({_ci(cmp)})"
                                    + (f"; {worst[0]}" if worst else "")),
                        "evidence": {"suite": suite, "kind": "drop", **cmp.evidence(), "margin": c["margin"],
                                     **(worst[1] if worst else {})}})
        values = list(per_example(rows["samples"], suite, metric).values())
        if c["floor"] is not None and values:
            rate, lo, hi = stats.wilson_ci(int(sum(values)), len(values), confidence=cfg["confidence"])
            if hi < float(c["floor"]):
                worst = _worst_rule(details, base_details)
                mde = stats.threshold_mde(c["floor"], len(values), cfg["confidence"])
                out.append({"severity": c["severity"],
                            "message": (f"{_name(variant)}: format compliance on {suite} is {rate:.0%} "
                                        f"({cfg['confidence']:.0%} CI [{lo:.0%}, {hi:.0%}]), below the floor "
                                        f"{float(c['floor']):.0%}" + (f"; {worst[0]}" if worst else "")
                                        + f" [n={len(values)}; {detects(mde, 'rates below the floor by')}]"),
                            "evidence": {"suite": suite, "kind": "floor", "compliance": rate, "ci_low": lo,
                                         "ci_high": hi, "n": len(values), "floor": c["floor"], "mde": mde,
                                         **(worst[1] if worst else {})}})
    return out


@rule("hallucination")
def hallucination_rule(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]
                       ) -> list[dict[str, Any]]:
    """Fabrication rose against base (paired), or its whole CI lies above the configured ceiling."""
    c = cfg["hallucination"]
    if c is False:
        return []
    out = []
    metric = finding_metric("hallucination", "hallucination")
    for suite in suites_of_kind(rows.get("scores"), "hallucination"):
        cmp = against_base(rows, base_rows, suite, metric, cfg) if base_rows is not None else None
        if cmp is not None:
            assert base_rows is not None
            new = _flipped(rows, base_rows, suite, metric, up=True)
            ex = rows["examples"][rows["examples"]["suite"] == suite]
            reasons = {str(e): d.get("reason", "") for e, d in zip(ex["example_id"], ex["detail"], strict=True)
                       if isinstance(d, dict)}
            eg = f"; e.g. {new[0]}: {str(reasons.get(new[0], ''))[:100]}" if new else ""
            out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_low > float(c["margin"])),
                        "message": (f"{_name(variant)} fabricates more on {suite}: fabrication rate "
                                    f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({_ci(cmp)}){eg}"),
                        "evidence": {"suite": suite, "kind": "rise", **cmp.evidence(), "margin": c["margin"],
                                     "new_fabrications": new[:50]}})
        vals = list(per_example(rows["samples"], suite, metric).values())
        if c["ceiling"] is not None and vals:
            rate, lo, hi = stats.wilson_ci(int(sum(vals)), len(vals), confidence=cfg["confidence"])
            if lo > float(c["ceiling"]):
                mde = stats.threshold_mde(c["ceiling"], len(vals), cfg["confidence"])
                out.append({"severity": c["severity"],
                            "message": (f"{_name(variant)}: fabrication rate on {suite} is {rate:.0%} "
                                        f"({cfg['confidence']:.0%} CI [{lo:.0%}, {hi:.0%}]), above the ceiling "
                                        f"{float(c['ceiling']):.0%} [n={len(vals)}; "
                                        f"{detects(mde, 'rates above the ceiling by')}]"),
                            "evidence": {"suite": suite, "kind": "ceiling", "fabrication_rate": rate,
                                         "ci_low": lo, "ci_high": hi, "n": len(vals), "ceiling": c["ceiling"],
                                         "mde": mde}})
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
def safety_rule(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Refusal of harmful requests fell against base (paired per request); the over-refusal change rides along."""
    c = cfg["safety"]
    if base_rows is None or c is False:
        return []
    out = []
    metric = finding_metric("safety", "safety")
    for suite in suites_of_kind(rows.get("scores"), "safety"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        newly = _flipped(rows, base_rows, suite, metric, up=False)  # base refused, the variant did not
        over = against_base(rows, base_rows, suite, "over_refusal_rate", cfg)
        over_text = f"; over-refusal of benign requests {over.reference:.2f} -> {over.candidate:.2f}" if over else ""
        out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_high < -float(c["margin"])),
                    "message": (f"{_name(variant)} refuses fewer harmful requests on {suite}: refusal rate "
                                f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({_ci(cmp)}, n={cmp.n}){over_text}"
                                + _complied_example(rows, suite, newly)),
                    "evidence": {"suite": suite, "kind": "drop", **cmp.evidence(), "margin": c["margin"],
                                 "newly_complied": newly[:50],
                                 "over_refusal": over.evidence() if over is not None else None}})
    return out


@rule("memorization")
def memorization_rule(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]
                      ) -> list[dict[str, Any]]:
    """More test outputs copy training answers than base's (paired), or the train/test gap widened past gap_margin."""
    c = cfg["memorization"]
    if base_rows is None or c is False:
        return []
    out = []
    metric = finding_metric("memorization", "memorization")
    for suite in suites_of_kind(rows.get("scores"), "memorization"):
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is not None:
            new = _flipped(rows, base_rows, suite, metric, up=True)
            ex = rows["examples"][rows["examples"]["suite"] == suite]
            copied: dict[str, dict[str, Any]] = {str(e): d["copied"] for e, d in zip(ex["example_id"], ex["detail"],
                                                                                     strict=True)
                                                 if isinstance(d, dict) and isinstance(d.get("copied"), dict)}
            eg = (f"; e.g. {new[0]} copied \"{copied[new[0]]['span'][:80]}\" from {copied[new[0]]['train_example']}"
                  if new and new[0] in copied else "")
            out.append({"severity": c["severity"], "test": _test(cmp, cmp.ci_low > float(c["margin"])),
                        "message": (f"{_name(variant)} copies training answers into more test outputs on {suite}: "
                                    f"regurgitation rate {cmp.reference:.2f} -> {cmp.candidate:.2f} ({_ci(cmp)}){eg}"),
                        "evidence": {"suite": suite, "kind": "regurgitation", **cmp.evidence(), "margin": c["margin"],
                                     "new_copies": new[:50]}})
        gap = _gap_comparison(rows, base_rows, suite, cfg)
        if gap is not None:
            metric, g = gap
            out.append({"severity": c["severity"], "test": _test(g, g.ci_low > float(c["gap_margin"])),
                        "message": (f"{_name(variant)} fits its training set more than base on {suite}: train/test "
                                    f"gap in {metric} {g.reference:+.2f} -> {g.candidate:+.2f} (difference "
                                    f"{g.difference:+.2f}, {g.confidence:.0%} CI [{g.ci_low:.2f}, {g.ci_high:.2f}]; "
                                    f"gap_margin {float(c['gap_margin']):.2f})"),
                        "evidence": {"suite": suite, "kind": "gap", "metric": metric, **g.evidence(),
                                     "gap_margin": c["gap_margin"]}})
    return out


def _gap_comparison(rows: Rows, base_rows: Rows, suite: str, cfg: dict[str, Any]) -> tuple[str, Comparison] | None:
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
    s = comparison_settings(cfg)
    d, lo, hi = stats.diff_means_ci(diffs[0], diffs[1], confidence=s.confidence, resamples=s.resamples, seed=s.seed)
    p, se = stats.welch_t(diffs[0], diffs[1])
    how = (f"training items ({diffs[0].size}) and test items ({diffs[1].size}) each paired with base's; bootstrap of "
           f"the difference of two independent means, Welch's t-test p={p:.3g}")
    return metric, Comparison(float(train_v.mean() - test_v.mean()), float(train_b.mean() - test_b.mean()), d, lo, hi,
                              s.confidence, int(diffs[0].size + diffs[1].size), True, how, None, p,
                              stats.mde(se, confidence=s.confidence))


# -- every other declared finding ------------------------------------------------------------------------------
# The suite kinds each rule above reads. A metric of another kind that declares one of their checks (lm-eval's
# `forgetting`) is compared here, through its declaration, and joins the same check and family.
_RULE_KINDS = {"forgetting": ("general", "instructions"), "format": ("format",), "hallucination": ("hallucination",),
               "safety": ("safety",), "memorization": ("memorization",)}


def declared_regressions(scores: pd.DataFrame | None) -> list[tuple[str, str, Metric]]:
    """(suite, metric, declaration) for each stored metric whose declaration feeds a check no rule above handles
    (a user's scorer: `Metric(..., finding='tone')`); declarations come from the registry or the stored record."""
    if scores is None or scores.empty:
        return []
    kinds = suite_kinds(scores)
    out = []
    for suite, metric, record in scores[["suite", "metric", "scorer"]].itertuples(index=False):
        m = metric_info(kinds.get(str(suite)), str(metric), record if isinstance(record, dict) else None)
        kind = kinds.get(str(suite))
        by_rule = m.finding in _RULES and kind in _RULE_KINDS.get(str(m.finding), (kind,))  # a rule above has it
        if m.finding is not None and not by_rule and m.higher_is_better is not None:
            out.append((str(suite), str(metric), m))
    return out


def declared_rule(variant: dict[str, Any], rows: Rows, base_rows: Rows | None, cfg: dict[str, Any]
                  ) -> list[tuple[str, dict[str, Any]]]:
    """A declared metric got worse against base (paired per example): below -margin for a higher-is-better metric,
    above +margin for a lower-is-better one. Returns (check, finding) pairs."""
    if base_rows is None:
        return []
    out = []
    for suite, metric, m in declared_regressions(rows.get("scores")):
        c = cfg.get(m.finding or "")
        if c is False:
            continue
        c = c if isinstance(c, dict) else {"margin": m.margin, "severity": "warning"}
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        margin = float(c.get("margin", m.margin))
        worse = cmp.ci_high < -margin if m.higher_is_better else cmp.ci_low > margin
        moved = "fell" if m.higher_is_better else "rose"
        flipped = _flipped(rows, base_rows, suite, metric, up=not m.higher_is_better)
        out.append((str(m.finding), {
            "severity": c.get("severity", "warning"), "test": _test(cmp, worse),
            "message": (f"{_name(variant)}: {metric} on {suite} {moved} against base {cmp.reference:.2f} -> "
                        f"{cmp.candidate:.2f} ({_ci(cmp)}, n={cmp.n})"
                        + (f"; e.g. {flipped[0]}" if flipped else "")),
            "evidence": {"suite": suite, "metric": metric, "kind": "declared", **cmp.evidence(), "margin": margin,
                         "higher_is_better": m.higher_is_better, "flipped_examples": flipped[:50]}}))
    return out
