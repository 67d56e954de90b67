"""Verdicts on a variant against `base`: the registered rules (verdicts.check_rules) and every declared metric's
regression turn stored rows into `findings` rows, decided for the whole run at once.

Every comparison is the one paired comparison (verdicts.compare) on the metric's per-example values. All the
comparisons of a run against base are one family: their p-values are adjusted together (Holm by default,
Benjamini-Hochberg as an option), and a finding is raised only when the paired interval clears "no change" by the
configured margin and the adjusted p-value is below 1 - confidence. Thresholds come from the spec's `findings:`
block (spec.findings, docs/scoring.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from harness import stats
from harness.scorers import declared_findings, metric_info, suite_kinds
from harness.scorers.registry import Metric
from harness.scores import JSONValue
from harness.spec.findings import settings
from harness.verdicts.check_rules import RULE_KINDS
from harness.verdicts.rulebook import (
    RULES,
    CheckConfig,
    CheckFinding,
    FindingRow,
    FindingsConfig,
    Raised,
    Rows,
    VariantInfo,
    against_base,
    ci_text,
    detects,
    flipped,
    name_of,
    paired_test,
)

__all__ = ["CORRECTION_NAMES", "CheckFinding", "FindingRow", "FindingsConfig", "checks", "declared_checks",
           "declared_regressions", "declared_rule", "derive", "derive_run", "detects", "run_config"]

CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "no"}


def run_config(spec_findings: Mapping[str, object] | None, score_frames: list[pd.DataFrame | None]) -> FindingsConfig:
    """The merged, validated `findings:` settings of a run whose scores are `score_frames`, typed."""
    return FindingsConfig.of(settings(dict(spec_findings) if spec_findings is not None else None,
                                      declared=declared_checks(score_frames)))


def derive_run(variants: Sequence[tuple[VariantInfo, Rows]], base_rows: Rows | None,
               spec_findings: Mapping[str, object] | None) -> list[FindingRow]:
    """The findings of a whole run: every variant's comparisons against base form one family, corrected together.
    `variants` holds each variant's `variants` row and rows; `base` itself is compared with nothing."""
    cfg = run_config(spec_findings, [rows.get("scores") for _, rows in variants])
    found: list[tuple[str, str, Raised]] = []
    for variant, rows in variants:
        base = None if variant.get("method") == "base" else base_rows
        vid = str(variant["variant_id"])
        for check, fn in RULES.items():
            found += [(vid, check, r) for r in fn(variant, rows, base, cfg)]
        found += [(vid, check, r) for check, r in declared_rule(variant, rows, base, cfg)]
    tested = [r for _, _, r in found if r.test is not None]
    adjusted = stats.adjust_pvalues([r.test.p for r in tested if r.test is not None], cfg.correction)
    return _decide(found, {id(r): q for r, q in zip(tested, adjusted, strict=True)}, cfg)


def _decide(found: list[tuple[str, str, Raised]], adjusted: dict[int, float], cfg: FindingsConfig) -> list[FindingRow]:
    """Keep the absolute findings, and the comparisons whose interval clears the margin and whose adjusted p-value
    is below 1 - confidence (`adjusted`: id of each tested finding -> its adjusted p-value); their evidence and
    message carry both p-values."""
    how, family = CORRECTION_NAMES[cfg.correction], len(adjusted)
    out: list[FindingRow] = []
    for vid, check, f in found:
        message, evidence = f.message, f.evidence
        if f.test is not None:
            q = adjusted[id(f)]
            if not (f.test.clears and q < 1 - cfg.confidence):
                continue
            evidence.update(p_value=f.test.p, p_adjusted=q, correction=cfg.correction, family=family)
            mde = evidence.get("mde")
            if isinstance(mde, int | float) and cfg.correction != "none":  # what this family can detect
                mde = evidence["mde"] = stats.mde_for_family(float(mde), confidence=cfg.confidence, family=family)
            message += (f" [p={f.test.p:.2g}" + ("" if cfg.correction == "none" else
                        f", {how}-adjusted p={q:.2g} over {family} comparisons")
                        + f"; {detects(float(mde) if isinstance(mde, int | float) else None)}]")
        out.append(FindingRow(variant_id=vid, check=check, severity=f.severity, message=message, evidence=evidence))
    return out


def derive(variant: VariantInfo, rows: Rows, base_rows: Rows | None, spec_findings: Mapping[str, object] | None
           ) -> list[CheckFinding]:
    """The findings of one variant alone (its comparisons are their own family); `base_rows` None for base."""
    return [CheckFinding(check=f["check"], severity=f["severity"], message=f["message"], evidence=f["evidence"])
            for f in derive_run([(variant, rows)], base_rows, spec_findings)]


def checks() -> tuple[str, ...]:
    """The checks this module derives: its rules' and every declared metric's (overfitting is the scorer's own)."""
    return tuple(dict.fromkeys([*RULES, *sorted(declared_findings())]))


def declared_checks(score_frames: list[pd.DataFrame | None]) -> dict[str, float]:
    """check -> default margin for every check a metric feeds: the registered scorers' and the ones stored with
    these scores (a user's scorer whose code this process has not loaded)."""
    out = declared_findings()
    for frame in score_frames:
        for _, _, m in declared_regressions(frame):
            out.setdefault(str(m.finding), m.margin)
    return out


# -- every other declared finding ------------------------------------------------------------------------------
def declared_regressions(scores: pd.DataFrame | None) -> list[tuple[str, str, Metric]]:
    """(suite, metric, declaration) for each stored metric whose declaration feeds a check no registered rule
    handles (a user's scorer: `Metric(..., finding='tone')`); declarations come from the registry or the stored
    record."""
    if scores is None or scores.empty:
        return []
    kinds = suite_kinds(scores)
    out = []
    for suite, metric, record in scores[["suite", "metric", "scorer"]].itertuples(index=False):
        m = metric_info(kinds.get(str(suite)), str(metric), record if isinstance(record, dict) else None)
        kind = kinds.get(str(suite))
        by_rule = m.finding in RULES and kind in RULE_KINDS.get(str(m.finding), (kind,))  # a registered rule has it
        if m.finding is not None and not by_rule and m.higher_is_better is not None:
            out.append((str(suite), str(metric), m))
    return out


def declared_rule(variant: VariantInfo, rows: Rows, base_rows: Rows | None, cfg: FindingsConfig
                  ) -> list[tuple[str, Raised]]:
    """A declared metric got worse against base (paired per example): below -margin for a higher-is-better metric,
    above +margin for a lower-is-better one. Returns (check, finding) pairs."""
    if base_rows is None:
        return []
    out = []
    for suite, metric, m in declared_regressions(rows.get("scores")):
        check = m.finding or ""
        c = cfg.check(check) if check in cfg.checks else CheckConfig(margin=m.margin)
        if c is None:
            continue
        cmp = against_base(rows, base_rows, suite, metric, cfg)
        if cmp is None:
            continue
        margin = float(c.margin)
        worse = cmp.ci_high < -margin if m.higher_is_better else cmp.ci_low > margin
        moved = "fell" if m.higher_is_better else "rose"
        changed = flipped(rows, base_rows, suite, metric, up=not m.higher_is_better)
        evidence: dict[str, JSONValue] = {"suite": suite, "metric": metric, "kind": "declared", **cmp.evidence(),
                                          "margin": margin, "higher_is_better": m.higher_is_better,
                                          "flipped_examples": changed[:50]}
        out.append((check, Raised(c.severity, (f"{name_of(variant)}: {metric} on {suite} {moved} against base "
                                               f"{cmp.reference:.2f} -> {cmp.candidate:.2f} ({ci_text(cmp)}, "
                                               f"n={cmp.n})" + (f"; e.g. {changed[0]}" if changed else "")),
                                  evidence, paired_test(cmp, worse))))
    return out
