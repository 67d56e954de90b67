"""Verdicts on a variant against `base`: rules registered here turn stored rows into `findings` rows.

Every comparison is paired by example_id; a finding is raised only when the paired bootstrap interval excludes
"no change" by the configured margin and McNemar's exact test agrees (p < 1 - confidence). Thresholds come from the
spec's `findings:` mapping, merged over DEFAULTS (see docs/scoring.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import HarnessInputError, did_you_mean

# A rule reads the variant's and base's rows ({'scores', 'examples', 'train_log'} DataFrames) and the
# spec's `findings:` thresholds, and returns finding rows: check, severity, message, evidence.
Rule = Callable[[dict[str, Any], dict[str, pd.DataFrame], dict[str, pd.DataFrame] | None, dict[str, Any]],
                list[dict[str, Any]]]
_RULES: dict[str, Rule] = {}

DEFAULTS: dict[str, Any] = {
    "confidence": 0.95,  # of the paired bootstrap CIs and Wilson intervals; McNemar must reach p < 1 - confidence
    "resamples": 2000,
    "seed": 0,
    # general suites: the per-example metric compared with base, and how far below 0 the CI's upper bound must lie
    "forgetting": {"metric": "acc", "margin": 0.0, "severity": "warning"},
    # format suites: compliance drop vs base (CI upper bound < -margin); floor: absolute compliance the CI must reach
    "format": {"margin": 0.0, "floor": None, "severity": "warning"},
    # hallucination suites: fabrication rise vs base (CI lower bound > margin); ceiling: absolute fabrication rate
    "hallucination": {"margin": 0.0, "ceiling": None, "severity": "warning"},
}


def rule(check: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        if check in _RULES:
            raise ValueError(f"a findings rule for {check!r} is already registered")
        _RULES[check] = fn
        return fn

    return wrap


def settings(spec_findings: dict[str, Any] | None, *, where: str = "findings") -> dict[str, Any]:
    """The spec's `findings:` mapping merged over DEFAULTS; a check set to false is off. Lists every bad key."""
    cfg = copy.deepcopy(DEFAULTS)
    problems: list[str] = []
    for key, value in (spec_findings or {}).items():
        if key not in DEFAULTS:
            problems.append(f"key '{where}.{key}': unknown.{did_you_mean(str(key), list(DEFAULTS))} "
                            f"Allowed: {', '.join(DEFAULTS)}")
        elif isinstance(DEFAULTS[key], dict):
            if value is False or value is None:
                cfg[key] = False
            elif not isinstance(value, dict):
                problems.append(f"key '{where}.{key}': a mapping of {', '.join(DEFAULTS[key])}, or false to turn "
                                f"the check off; got {value!r}")
            else:
                for k, v in value.items():
                    if k not in DEFAULTS[key]:
                        problems.append(f"key '{where}.{key}.{k}': unknown.{did_you_mean(str(k), list(DEFAULTS[key]))}"
                                        f" Allowed: {', '.join(DEFAULTS[key])}")
                    elif k in ("margin", "floor", "ceiling") and v is not None and (
                            not isinstance(v, int | float) or not 0 <= v <= 1):
                        problems.append(f"key '{where}.{key}.{k}': a rate difference or rate in [0, 1], got {v!r}")
                    else:
                        cfg[key][k] = v
        else:
            cfg[key] = value
    if not isinstance(cfg["confidence"], float) or not 0.5 <= cfg["confidence"] < 1:
        problems.append(f"key '{where}.confidence': a number in [0.5, 1), e.g. 0.95; got {cfg['confidence']!r}")
    if not isinstance(cfg["resamples"], int) or cfg["resamples"] < 100:
        problems.append(f"key '{where}.resamples': a whole number >= 100; got {cfg['resamples']!r}")
    if problems:
        raise HarnessInputError(problems, title="findings thresholds")
    return cfg


def derive(variant: dict[str, Any], rows: dict[str, pd.DataFrame], base_rows: dict[str, pd.DataFrame] | None,
           thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """All findings for one variant; `base_rows` is None for base itself."""
    out: list[dict[str, Any]] = []
    for check, fn in _RULES.items():
        for f in fn(variant, rows, base_rows, thresholds):
            out.append({"check": check, "severity": "warning", **f})
    return out


# -- reading rows ----------------------------------------------------------------------------------------------
def _json(x: Any) -> Any:
    if isinstance(x, str):
        try:
            return json.loads(x)
        except ValueError:
            return None
    return x


def suites_of_kind(scores: pd.DataFrame, kind: str) -> list[str]:
    """Suite names whose scores were made by a scorer of `kind` (the `scorer` record: dict or JSON text)."""
    if scores is None or scores.empty or "scorer" not in scores:
        return []
    names = {str(s) for s, rec in zip(scores["suite"], scores["scorer"], strict=True)
             if isinstance(_json(rec), dict) and _json(rec).get("kind") == kind}
    return sorted(names)


def paired(rows: dict[str, pd.DataFrame], base_rows: dict[str, pd.DataFrame], suite: str,
           value: Callable[[dict[str, Any], Any], float | None]) -> pd.DataFrame:
    """Per example_id of `suite` in both: columns example_id, v (variant), b (base), v_detail, b_detail, output."""
    frames = []
    for who, r in (("v", rows), ("b", base_rows)):
        ex = r.get("examples")
        if ex is None or ex.empty or "suite" not in ex:
            return pd.DataFrame(columns=["example_id", "v", "b"])
        ex = ex[ex["suite"] == suite]
        details = [(_json(d) or {}) for d in ex["detail"]]
        vals = [value(d, p) for d, p in zip(details, ex["passed"], strict=True)]
        frames.append(pd.DataFrame({"example_id": ex["example_id"].astype(str).to_numpy(), who: vals,
                                    f"{who}_detail": details, f"{who}_output": ex["output"].to_numpy()}))
    both = frames[0].merge(frames[1], on="example_id").dropna(subset=["v", "b"])
    return both.drop_duplicates("example_id").sort_values("example_id").reset_index(drop=True)


def compare(v: np.ndarray, b: np.ndarray, cfg: dict[str, Any]) -> dict[str, Any]:
    """Variant minus base, paired: mean difference with its bootstrap CI, both rates, McNemar's exact p."""
    d, lo, hi = stats.paired_diff_ci(v, b, confidence=cfg["confidence"], resamples=cfg["resamples"], seed=cfg["seed"])
    return {"variant": float(np.mean(v)), "base": float(np.mean(b)), "difference": d, "ci_low": lo, "ci_high": hi,
            "confidence": cfg["confidence"], "mcnemar_p": stats.mcnemar_exact(v > 0.5, b > 0.5), "n": len(v)}


def _ci(c: dict[str, Any]) -> str:
    return f"paired difference {c['difference']:+.2f}, {c['confidence']:.0%} CI [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"


def _name(variant: dict[str, Any]) -> str:
    return str(variant.get("name") or variant.get("variant_id") or "variant")


# -- the rules -------------------------------------------------------------------------------------------------
@rule("forgetting")
def forgetting(variant: dict[str, Any], rows: dict[str, pd.DataFrame], base_rows: dict[str, pd.DataFrame] | None,
               thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """General capability lost: the paired CI of (variant - base) per-example accuracy lies below -margin."""
    cfg = settings(thresholds)
    c = cfg["forgetting"]
    if base_rows is None or c is False:
        return []
    metric, out = str(c["metric"]), []
    for suite in suites_of_kind(rows.get("scores"), "general"):
        pairs = paired(rows, base_rows, suite, lambda d, _p: float(d[metric]) if isinstance(
            d.get(metric), int | float | bool) else None)
        if pairs.empty:
            continue
        cmp = compare(pairs["v"].to_numpy(float), pairs["b"].to_numpy(float), cfg)
        if cmp["ci_high"] < -float(c["margin"]) and cmp["mcnemar_p"] < 1 - cfg["confidence"]:
            label = "accuracy" if metric == "acc" else metric
            lost = pairs[(pairs["b"] > 0.5) & (pairs["v"] <= 0.5)]["example_id"].tolist()
            out.append({"severity": c["severity"],
                        "message": (f"{_name(variant)} forgot general capability: {label} {cmp['base']:.2f} -> "
                                    f"{cmp['variant']:.2f} ({_ci(cmp)}; McNemar p={cmp['mcnemar_p']:.2g}, "
                                    f"n={cmp['n']})" + ("" if suite == "general" else f" on {suite}")),
                        "evidence": {"suite": suite, "metric": metric, **cmp, "margin": c["margin"],
                                     "lost_examples": lost[:50]}})
    return out


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
def format_rule(variant: dict[str, Any], rows: dict[str, pd.DataFrame], base_rows: dict[str, pd.DataFrame] | None,
                thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """Format compliance fell against base (paired), or its whole CI lies under the configured floor."""
    cfg = settings(thresholds)
    c = cfg["format"]
    if c is False:
        return []
    out = []
    for suite in suites_of_kind(rows.get("scores"), "format"):
        ex = rows["examples"]
        ex = ex[ex["suite"] == suite]
        details = [_json(d) or {} for d in ex["detail"]]
        if base_rows is not None:
            pairs = paired(rows, base_rows, suite, lambda _d, p: None if p is None or pd.isna(p) else float(bool(p)))
            if not pairs.empty:
                cmp = compare(pairs["v"].to_numpy(float), pairs["b"].to_numpy(float), cfg)
                if cmp["ci_high"] < -float(c["margin"]) and cmp["mcnemar_p"] < 1 - cfg["confidence"]:
                    worst = _worst_rule(list(pairs["v_detail"]), list(pairs["b_detail"]))
                    out.append({"severity": c["severity"],
                                "message": (f"{_name(variant)}: format compliance on {suite} fell "
                                            f"{cmp['base']:.2f} -> {cmp['variant']:.2f} ({_ci(cmp)})"
                                            + (f"; {worst[0]}" if worst else "")),
                                "evidence": {"suite": suite, "kind": "drop", **cmp, "margin": c["margin"],
                                             **(worst[1] if worst else {})}})
        if c["floor"] is not None and len(ex):
            rate, lo, hi = stats.wilson_ci(int(ex["passed"].fillna(False).astype(bool).sum()), len(ex),
                                           confidence=cfg["confidence"])
            if hi < float(c["floor"]):
                base_details = None
                if base_rows is not None and not base_rows["examples"].empty:
                    bex = base_rows["examples"]
                    base_details = [_json(d) or {} for d in bex[bex["suite"] == suite]["detail"]] or None
                worst = _worst_rule(details, base_details)
                out.append({"severity": c["severity"],
                            "message": (f"{_name(variant)}: format compliance on {suite} is {rate:.0%} "
                                        f"({cfg['confidence']:.0%} CI [{lo:.0%}, {hi:.0%}]), below the floor "
                                        f"{float(c['floor']):.0%}" + (f"; {worst[0]}" if worst else "")),
                            "evidence": {"suite": suite, "kind": "floor", "compliance": rate, "ci_low": lo,
                                         "ci_high": hi, "n": len(ex), "floor": c["floor"],
                                         **(worst[1] if worst else {})}})
    return out


def _fabricated(d: dict[str, Any], _passed: Any) -> float | None:
    if "fabricated" in d:
        return float(bool(d["fabricated"]))
    return float(d["verdict"] == "fabricated") if "verdict" in d else None


@rule("hallucination")
def hallucination_rule(variant: dict[str, Any], rows: dict[str, pd.DataFrame],
                       base_rows: dict[str, pd.DataFrame] | None, thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """Fabrication rose against base (paired), or its whole CI lies above the configured ceiling."""
    cfg = settings(thresholds)
    c = cfg["hallucination"]
    if c is False:
        return []
    out = []
    for suite in suites_of_kind(rows.get("scores"), "hallucination"):
        if base_rows is not None:
            pairs = paired(rows, base_rows, suite, _fabricated)
            if not pairs.empty:
                cmp = compare(pairs["v"].to_numpy(float), pairs["b"].to_numpy(float), cfg)
                if cmp["ci_low"] > float(c["margin"]) and cmp["mcnemar_p"] < 1 - cfg["confidence"]:
                    new = pairs[(pairs["v"] > 0.5) & (pairs["b"] <= 0.5)]
                    eg = ""
                    if len(new):
                        first = new.iloc[0]
                        eg = f"; e.g. {first['example_id']}: {str(first['v_detail'].get('reason', ''))[:100]}"
                    out.append({"severity": c["severity"],
                                "message": (f"{_name(variant)} fabricates more on {suite}: fabrication rate "
                                            f"{cmp['base']:.2f} -> {cmp['variant']:.2f} ({_ci(cmp)}){eg}"),
                                "evidence": {"suite": suite, "kind": "rise", **cmp, "margin": c["margin"],
                                             "new_fabrications": new["example_id"].tolist()[:50]}})
        if c["ceiling"] is not None:
            ex = rows["examples"]
            vals = [v for d in ex[ex["suite"] == suite]["detail"] if (v := _fabricated(_json(d) or {}, None)) is not None]
            if vals:
                rate, lo, hi = stats.wilson_ci(int(sum(vals)), len(vals), confidence=cfg["confidence"])
                if lo > float(c["ceiling"]):
                    out.append({"severity": c["severity"],
                                "message": (f"{_name(variant)}: fabrication rate on {suite} is {rate:.0%} "
                                            f"({cfg['confidence']:.0%} CI [{lo:.0%}, {hi:.0%}]), above the ceiling "
                                            f"{float(c['ceiling']):.0%}"),
                                "evidence": {"suite": suite, "kind": "ceiling", "fabrication_rate": rate,
                                             "ci_low": lo, "ci_high": hi, "n": len(vals), "ceiling": c["ceiling"]}})
    return out
