"""The one recommendation policy, used by the report, the gate's default candidate and the sweep's summary.

Among the run's finished variants other than `base`: the best on the held-out suite's primary metric (its
direction from the scorer registry), ties broken by the smaller forgetting (the paired general-accuracy delta
against base), then by plan order. Variants with findings are passed over. When every finished variant has
findings there is no recommendation; the best of them is still named as the gate's default candidate, and every
caller says so in the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness import stats
from harness.scorers import metric_info, primary_metric
from harness.scores import MEASUREMENT_CHECKS
from harness.spec.findings import settings_from_text
from harness.store.reads import RunData, ScoreCell
from harness.verdicts.compare import Comparison, Interval, Settings, compare, paired
from harness.verdicts.findings import declared_checks
from harness.verdicts.rulebook import FindingsConfig
from harness.verdicts.search_outcome import SearchOutcome, search_outcome

Record = dict[str, object]  # a stored `variants` row (DataFrame.to_dict('records'))


@dataclass(frozen=True)
class Recommendation:
    """What the policy picked, and why, in one sentence every caller prints as is."""

    variant_id: str | None  # the recommended variant; None when there is none
    candidate_id: str | None  # the gate's default candidate: the recommended one, else the best flagged one
    reason: str
    all_flagged: bool = False
    suite: str | None = None
    metric: str | None = None
    tie_group: tuple[str, ...] = ()  # variants statistically indistinguishable from the best (the best first)


def run_settings(data: RunData) -> Settings:
    """The comparison settings of the run's own spec (its `findings:` block), as its findings used them."""
    return FindingsConfig.of(settings_from_text(data.run.get("spec"), declared_checks([data.scores]))).comparison


def forgetting(data: RunData, s: Settings | None = None) -> dict[str, Comparison]:
    """variant -> its general suite's paired per-example accuracy minus base's (the forgetting delta)."""
    suite, base = data.suite_of("general"), data.base_id
    if suite is None or base is None or data.samples.empty:
        return {}
    s = s or run_settings(data)
    ref = data.values(base, suite, "acc")
    out = {}
    for vid in data.variants["variant_id"]:
        if vid != base:
            c = paired(data.values(str(vid), suite, "acc"), ref, s)
            if c is not None:
                out[str(vid)] = c
    return out


def primary(data: RunData) -> tuple[str | None, str | None]:
    """(suite, metric) that ranks variants: the held-out suite's primary metric, as its scorer declares it."""
    suite = data.suite_of("heldout")
    return suite, primary_metric(data.kinds.get(suite or ""), data.metrics_of(suite))


def _number(x: object) -> float | None:
    """A stored figure as a float; None where it is missing (None or NaN)."""
    if not isinstance(x, int | float | np.integer | np.floating) or isinstance(x, bool):
        return None
    return None if math.isnan(float(x)) else float(x)


def _fmt(x: float) -> str:
    return "" if math.isnan(x) else f"{x:.3f}"


def _cell_text(s: ScoreCell) -> str:
    v, lo, hi, n = s
    ci = "" if math.isnan(lo) else f", 95% CI [{_fmt(lo)}, {_fmt(hi)}]"
    return f"{_fmt(v)}{ci}, n={n}"


def recommend(data: RunData, forget: dict[str, Comparison] | None = None) -> Recommendation:
    """The recommended variant of a run, the gate's default candidate, and the reason."""
    searched = search_outcome(data.run, data.variants, data.train_log)
    if searched is not None:  # a search's winner is picked on validation alone (harness.verdicts.search_outcome)
        return _search_pick(data, searched)
    done = [v for v in data.variants.to_dict("records") if v["method"] != "base" and v["status"] == "finished"]
    if not done:
        return Recommendation(None, None, f"No recommendation: run {data.run.get('run_id')} has no finished "
                              "variant besides base.")
    suite, metric = primary(data)
    forget = forgetting(data) if forget is None else forget
    sign = -1.0 if metric and metric_info(data.kinds.get(suite or ""), metric).higher_is_better is False else 1.0

    def key(iv: tuple[int, Record]) -> tuple[float, float, int]:
        i, v = iv
        s = data.score(str(v["variant_id"]), suite, metric) if metric else None
        value = -math.inf if s is None or math.isnan(s[0]) else sign * s[0]
        f = forget.get(str(v["variant_id"]))
        return (-value, -(f.difference if f is not None else 0.0), i)

    ranked = [v for _, v in sorted(enumerate(done), key=key)]
    flagged = _flagged(data)
    clean = [v for v in ranked if v["variant_id"] not in flagged]
    excluded = [f"{v['name']} ({', '.join(flagged[v['variant_id']])})" for v in ranked if v["variant_id"] in flagged]
    best = clean[0] if clean else ranked[0]
    why = _why(data, best, suite, metric, len(clean) if clean else len(ranked))
    if clean:
        more = f" Passed over for findings: {'; '.join(excluded[:5])}" + (
            f" and {len(excluded) - 5} more." if len(excluded) > 5 else ".") if excluded else ""
        group = tie_group(data, clean, suite, metric)
        if len(group) > 1:
            pick, text = _break_tie(data, group, suite, metric)
            return Recommendation(str(pick["variant_id"]), str(pick["variant_id"]), f"Recommended: {pick['name']}: "
                                  f"{text}{more}", False, suite, metric, tuple(str(v["variant_id"]) for v in group))
        runner_up = _runner_up(data, clean, suite, metric)
        return Recommendation(str(best["variant_id"]), str(best["variant_id"]),
                              f"Recommended: {best['name']}: {why}{runner_up}{more}", False, suite, metric,
                              (str(best["variant_id"]),))
    return Recommendation(None, str(best["variant_id"]),
                          f"No recommendation: every finished variant has findings ({'; '.join(excluded[:5])}"
                          f"{' and more' if len(excluded) > 5 else ''}). The best of them is {best['name']}: {why} "
                          "`harness gate` takes it as its default candidate, and its findings rules decide.",
                          True, suite, metric)


def _search_pick(data: RunData, out: SearchOutcome) -> Recommendation:
    """A searched run's recommendation: the search's winner on validation loss, or none; never another variant
    chosen on test-set figures (docs/search.md)."""
    suite, metric = primary(data)
    if out.winner_id is None:
        return Recommendation(None, None, f"No recommendation: no variant of the search finished. {out.selection()} "
                              f"{out.saving()}", False, suite, metric)
    loss = "n/a" if out.winner_loss is None else f"{out.winner_loss:.4f}"
    why = (f"the lowest validation loss ({loss}) of the variants the search trained to the end. {out.selection()} "
           f"{out.saving()}")
    flags = _flagged(data).get(out.winner_id)
    if flags:
        return Recommendation(None, out.winner_id, f"No recommendation: the search's winner {out.winner_name} has "
                              f"findings ({', '.join(flags)}): {why} Another variant is not put forward instead, "
                              "since passing over the winner on test-set findings would select on test. "
                              "`harness gate` takes the winner as its default candidate.", True, suite, metric)
    return Recommendation(out.winner_id, out.winner_id, f"Recommended: {out.winner_name}: {why}", False, suite,
                          metric, (out.winner_id,))


def _flagged(data: RunData) -> dict[str, list[str]]:
    if data.findings.empty:
        return {}
    about = data.findings[~data.findings["check"].isin(MEASUREMENT_CHECKS)]  # the variant's, not its measurement's
    return {str(vid): sorted(set(map(str, part["check"]))) for vid, part in about.groupby("variant_id")}


def _why(data: RunData, best: Record, suite: str | None, metric: str | None, pool: int) -> str:
    if metric is None:
        return (f"there is no held-out score to rank by, so it is the first of {pool} finished variant(s) in plan "
                "order.")
    s = data.score(str(best["variant_id"]), suite, metric)
    direction = "lowest" if metric_info(data.kinds.get(suite or ""), metric).higher_is_better is False else "highest"
    text = (f"it has the {direction} held-out {metric} ({_cell_text(s) if s else 'n/a'}) of {pool} "
            f"finished variant{'s' if pool != 1 else ''}{' without findings' if best['variant_id'] not in _flagged(data) else ''}.")
    base = data.score(data.base_id, suite, metric) if data.base_id else None
    if base is not None and not math.isnan(base[0]):
        text += f" Base scores {_fmt(base[0])}."
    return text


def _runner_up(data: RunData, clean: list[Record], suite: str | None, metric: str | None) -> str:
    if len(clean) < 2 or metric is None:
        return ""
    best = data.score(str(clean[0]["variant_id"]), suite, metric)
    second = data.score(str(clean[1]["variant_id"]), suite, metric)
    if best is None or second is None or math.isnan(second[0]):
        return ""
    if second[0] == best[0]:
        return (f" It ties with {clean[1]['name']} on {metric} ({_fmt(second[0])}); the tie is broken by less "
                "forgetting against base, then by plan order.")
    overlap = not (math.isnan(best[1]) or math.isnan(second[2])) and (
        second[2] >= best[1] if best[0] >= second[0] else second[1] <= best[2])
    return (f" Runner-up {clean[1]['name']} at {_fmt(second[0])}"
            + ("; the intervals overlap, so the lead may be noise." if overlap else "; the intervals do not overlap."))


def tie_group(data: RunData, ranked: list[Record], suite: str | None, metric: str | None
              ) -> list[Record]:
    """The best variant and those statistically indistinguishable from it on the primary metric: each compared
    with the best (paired where the metric is per-example), the p-values Holm-corrected together."""
    if metric is None or len(ranked) < 2:
        return ranked[:1]
    s, kind = run_settings(data), data.kinds.get(suite or "")
    best = ranked[0]

    def values(v: Record) -> dict[str, float]:
        return data.values(str(v["variant_id"]), suite, metric)

    def stored(v: Record) -> Interval:
        cell = data.score(str(v["variant_id"]), suite, metric) or (math.nan, math.nan, math.nan, 0)
        return Interval(value=cell[0], ci_low=cell[1], ci_high=cell[2], n=cell[3])

    ref = values(best)
    comps = [compare(kind, metric, values(v), ref, s, scores=(stored(v), stored(best))) for v in ranked[1:]]
    p = [1.0 if c is None or c.p_value is None else c.p_value for c in comps]
    adjusted = stats.adjust_pvalues(p, "holm")
    return [best] + [v for v, q in zip(ranked[1:], adjusted, strict=True) if q >= 1 - s.confidence]


# The cost figures that break a tie, in order: what a variant is (trainable parameters) and what it trained on
# (tokens) come before wall-clock seconds, which move with the machine's load. Each with its unit.
TIE_BREAKS = (("trainable_params", "the fewest trainable parameters", "{:,.0f} trainable parameters"),
              ("train_tokens", "the fewest trained tokens", "{:,.0f} tokens"),
              ("train_seconds", "the shortest training", "{:,.0f} s of wall-clock training"))


def _break_tie(data: RunData, group: list[Record], suite: str | None, metric: str | None
               ) -> tuple[Record, str]:
    """Among indistinguishable variants: fewer trainable parameters, then fewer trained tokens, then less training
    time, then plan order; a figure decides only where every tied variant has it (a variant of a shared
    epochs_from_one_run training records none)."""
    def cost(v: Record, key: str) -> float | None:
        return _number(v.get(key))

    figures = [(k, words, unit) for k, words, unit in TIE_BREAKS if all(cost(v, k) is not None for v in group)]
    costs = {str(v["variant_id"]): [cost(v, k) or 0.0 for k, _, _ in figures] for v in group}
    order = {str(v["variant_id"]): i for i, v in enumerate(data.variants.to_dict("records"))}
    pick = min(group, key=lambda v: (*costs[str(v["variant_id"])], order[str(v["variant_id"])]))
    mine = costs[str(pick["variant_id"])]
    reason = "it comes first in the plan"
    rivals = [v for v in group if v is not pick]
    for i, (_, words, unit) in enumerate(figures):
        if rivals and mine[i] < min(costs[str(v["variant_id"])][i] for v in rivals):
            reason = f"of these it has {words} ({unit.format(mine[i])})"
            break
        rivals = [v for v in rivals if costs[str(v["variant_id"])][i] == mine[i]]
    best = group[0]
    names = ", ".join(str(v["name"]) for v in group)
    cell = data.score(str(best["variant_id"]), suite, metric or "")
    return pick, (f"{len(group)} variants are statistically indistinguishable from the best on held-out {metric} "
                  f"({names}; each compared with {best['name']}, {_cell_text(cell) if cell else 'n/a'}, "
                  f"Holm-corrected), so the tie is broken by cost: {reason}.")


TRAINED = ("lora", "qlora", "full", "openai")


@dataclass(frozen=True)
class PromptVerdict:
    """The guides' first question: does fine-tuning beat a good prompt here, and what does each cost per request?"""

    prompt_id: str
    tuned_id: str
    comparison: Comparison | None  # the fine-tuned variant minus the prompt variant on the primary metric
    text: str


def prompt_vs_finetuning(data: RunData) -> PromptVerdict | None:
    """The best finished prompt variant against the best finished fine-tuned one on the held-out primary metric,
    paired per example, with what each costs per request and to train; None unless the run has both."""
    suite, metric = primary(data)
    done = [v for v in data.variants.to_dict("records") if v["status"] == "finished"]
    prompts = [v for v in done if v["method"] == "prompt"]
    tuned = [v for v in done if v["method"] in TRAINED]
    if not prompts or not tuned or metric is None:
        return None
    kind = data.kinds.get(suite or "")
    sign = -1.0 if metric_info(kind, metric).higher_is_better is False else 1.0

    def best(vs: list[Record]) -> Record:
        def value(v: Record) -> float:
            cell = data.score(str(v["variant_id"]), suite, metric)
            return -math.inf if cell is None or math.isnan(cell[0]) else sign * cell[0]
        return max(vs, key=value)  # the first of equals: plan order

    p, t = best(prompts), best(tuned)

    def values(v: Record) -> dict[str, float]:
        return data.values(str(v["variant_id"]), suite, metric)

    def stored(v: Record) -> Interval:
        cell = data.score(str(v["variant_id"]), suite, metric) or (math.nan, math.nan, math.nan, 0)
        return Interval(value=cell[0], ci_low=cell[1], ci_high=cell[2], n=cell[3])

    c = compare(kind, metric, values(t), values(p), run_settings(data), scores=(stored(t), stored(p)))
    if c is None:
        verdict = f"{t['name']} and {p['name']} cannot be compared on held-out {metric}."
    else:
        better = sign * c.difference > 0
        clear = c.ci_low > 0 or c.ci_high < 0
        ci = (f"{'paired ' if c.paired else ''}difference {c.difference:+.3f}, {c.confidence:.0%} CI "
              f"[{c.ci_low:.3f}, {c.ci_high:.3f}], n={c.n}")
        if not clear:
            verdict = (f"Fine-tuning does not clearly beat a prompt here: {t['name']} and {p['name']} are "
                       f"indistinguishable on held-out {metric} ({ci}).")
        elif better:
            verdict = f"Fine-tuning beats the best prompt: {t['name']} over {p['name']} on held-out {metric} ({ci})."
        else:
            verdict = f"The prompt beats fine-tuning: {p['name']} over {t['name']} on held-out {metric} ({ci})."
    return PromptVerdict(str(p["variant_id"]), str(t["variant_id"]), c, verdict + " " + _per_request(t, p))


def _per_request(t: Record, p: Record) -> str:
    """What each costs: prompt tokens and generation seconds per request, and training time."""
    def num(v: Record, key: str) -> float | None:
        return _number(v.get(key))

    parts = []
    tp, pp = num(t, "prompt_tokens_per_request"), num(p, "prompt_tokens_per_request")
    if tp and pp:
        parts.append(f"{p['name']} sends {pp:,.0f} prompt tokens per request against {tp:,.0f} ({pp / tp:.1f}x)")
    ts, ps = num(t, "seconds_per_request"), num(p, "seconds_per_request")
    if ts and ps:
        parts.append(f"generates in {ps:.3f} s per request against {ts:.3f} s")
    train = num(t, "train_seconds")
    if train:
        parts.append(f"{t['name']} took {train:,.0f} s to train")
    return ("Per request, " + "; ".join(parts) + ".") if parts else ""
