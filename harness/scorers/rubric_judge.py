"""judge: a judge model grades the held-out outputs on a rubric (pointwise), or against base's outputs (pairwise).

Pointwise, per criterion a score (or yes/no) and a one-line rationale, filled into a JSON Schema; each example's
scores are stored in `examples.detail` under `judge:<criterion>`, so comparisons with base are paired. Pairwise
(`pairwise_against: base`), the judge sees the variant's and base's outputs in both orders, and a preference counts
only when both orders agree (a judge that prefers whatever it reads first says nothing about the outputs).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import harness.scorers.judgments as judging
from harness import stats
from harness.data.chat import Example
from harness.errors import HarnessInputError
from harness.models.protocol import JudgeModel
from harness.scorers.common import rate_row
from harness.scorers.heldout import heldout_outputs
from harness.scorers.judgments import Criterion, choice_of, conversation_text, grade_of, one_line, read_judgment
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, JSONValue, Sample, Score, SuiteResult

POINTWISE_SYSTEM = (
    "You are an impartial expert evaluator. You grade one response of an AI assistant on a rubric. Judge only what "
    "the response says, against the request and the reference answer where one is given; do not reward length. "
    "For each criterion give its score and a one-line rationale (at most 25 words) that names the evidence.")
PAIRWISE_SYSTEM = (
    "You are an impartial expert evaluator. You compare two responses of AI assistants to the same request on a "
    "rubric and say which one is better overall. The order in which they are shown is arbitrary: do not let it, "
    "their length or their style alone decide. Answer 'tie' when neither is better. Give a one-line rationale.")
WIN_VALUE = {"win": 1.0, "loss": 0.0, "tie": 0.5, "inconsistent": 0.5}  # no preference counts half


def _request(e: Example, reference: bool, guidance: str | None) -> str:
    parts = [f"<conversation>\n{conversation_text(e.prompt_messages)}\n</conversation>"]
    if reference and e.reference:
        parts.append(f"<reference>\n{e.reference}\n</reference>")
    if guidance:
        parts.append(f"<guidance>\n{guidance}\n</guidance>")
    return "\n\n".join(parts)


def pointwise_prompt(criteria: list[Criterion], e: Example, output: str, *, reference: bool = True,
                     guidance: str | None = None) -> list[dict[str, str]]:
    rubric = "\n".join(c.line() for c in criteria)
    user = (f"Rubric:\n{rubric}\n\n{_request(e, reference, guidance)}\n\n<response>\n{output}\n</response>\n\n"
            "Grade the response on every criterion of the rubric.")
    return [{"role": "system", "content": POINTWISE_SYSTEM}, {"role": "user", "content": user}]


def pairwise_prompt(criteria: list[Criterion], e: Example, first: str, second: str, *, reference: bool = True,
                    guidance: str | None = None) -> list[dict[str, str]]:
    rubric = "\n".join(c.line() for c in criteria)
    user = (f"Rubric:\n{rubric}\n\n{_request(e, reference, guidance)}\n\n<response_A>\n{first}\n</response_A>\n\n"
            f"<response_B>\n{second}\n</response_B>\n\nWhich response is better overall on the rubric: A, B or tie?")
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


def outcome(variant_first: str, base_first: str) -> str:
    """Both orders' winners ('A', 'B', 'tie') -> win, loss, tie, or inconsistent (the orders disagree)."""
    a = {"A": "variant", "B": "base"}.get(variant_first, "tie")
    b = {"A": "base", "B": "variant"}.get(base_first, "tie")
    if a != b:
        return "inconsistent"
    return {"variant": "win", "base": "loss", "tie": "tie"}[a]


def _errors_row(errors: int, n: int) -> Score:
    return Score("judge_errors", float(errors), float(errors), float(errors), n)


@scorer("judge", metrics=[
    Metric("judge:hallucination", higher_is_better=False, per_example=True),  # the rate of 'yes'
    Metric("judge:accuracy", per_example=True, primary=True),
    Metric("judge_win_rate", per_example=True, primary=True),  # pairwise: wins, ties and disagreements count half
    Metric("judge_tie_rate", higher_is_better=None),
    Metric("judge_inconsistent_rate", higher_is_better=None),  # the orders disagreed: the judge's position bias
    Metric("judge_errors", higher_is_better=False),  # malformed or refused judgments (a count)
    Metric("judge:*", per_example=True),  # every other criterion: mean score, or the rate of 'yes'
])
def judge_suite(judge: str | None = None, base_url: str | None = None, rubric: list[JSONValue] | None = None,
                pairwise_against: str | None = None, guidance: str | None = None, show_reference: bool = True,
                max_new_tokens: int | None = None, judge_max_tokens: int = 512) -> ScoreFn:
    """Grade the held-out outputs with a judge model on a rubric, or against base's outputs in both orders."""
    judging.check_judge_options(judge, base_url, "judge")
    criteria = judging.parse_rubric(rubric)
    judging.known_mode(pairwise_against, "pairwise_against", ["base"])
    for name, value in (("judge_max_tokens", judge_max_tokens), ("max_new_tokens", max_new_tokens)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise HarnessInputError(f"judge option {name!r}: a whole number >= 1, got {value!r}")
    if guidance is not None and not isinstance(guidance, str):
        raise HarnessInputError(f"judge option 'guidance': text for the judge, got {guidance!r}")
    mode = "pairwise" if pairwise_against else "pointwise"
    version = judging.rubric_version(criteria, mode)
    assert judge is not None

    def score(ctx: ScoreContext) -> SuiteResult:
        outs = heldout_outputs(ctx, max_new_tokens)
        model = judging.open_judge(ctx, judge, base_url, "judge")
        provenance = {"judge_identity": model.identity, "rubric_version": version}
        if pairwise_against:
            out = _pairwise(ctx, model, criteria, outs, version)
        else:
            out = _pointwise(ctx, model, criteria, outs, version)
        out.scores = [replace(r, how={**provenance, **(r.how or {})}) for r in out.scores]
        return out

    def _pointwise(ctx: ScoreContext, model: JudgeModel, criteria: list[Criterion], outs: list[str],
                   version: str) -> SuiteResult:
        schema = judging.rubric_schema(criteria)
        convs = [pointwise_prompt(criteria, e, o, reference=show_reference, guidance=guidance)
                 for e, o in zip(ctx.test, outs, strict=True)]
        replies = model.complete(convs, schema, judge_max_tokens, version)
        examples = []
        for e, out, reply in zip(ctx.test, outs, replies, strict=True):
            doc, error = (None, reply.error) if reply.error else read_judgment(reply.text, schema)
            detail: JSONDict = {"cached": reply.cached}
            values: dict[str, float] = {}
            passed = None
            if doc is None:
                detail.update(judge_error=error, judge_reply=(reply.text or "")[:judging.RAW_KEPT] or None)
            else:
                grades = {c.name: grade_of(doc, c.name) for c in criteria}
                detail["judgment"] = {c.name: {"score": grades[c.name].score,
                                               "rationale": one_line(grades[c.name].rationale)} for c in criteria}
                values = {c.metric: c.value(grades[c.name].score) for c in criteria}
                passed = all(c.passes(grades[c.name].score) for c in criteria)
            examples.append(_example(e, out, passed, detail, values))
        rows: list[Score] = []
        for c in criteria:
            vals = [x.scores[c.metric] for x in examples if c.metric in x.scores]
            if not vals:
                continue
            if c.scale is None:
                rows.append(rate_row(c.metric, int(sum(vals)), len(vals)))
            else:
                rows.append(Score.of(c.metric, stats.mean_ci(vals), len(vals)))
        rows.append(_errors_row(sum("judge_error" in x.detail for x in examples), len(examples)))
        return SuiteResult(rows, examples)

    def _pairwise(ctx: ScoreContext, model: JudgeModel, criteria: list[Criterion], outs: list[str],
                  version: str) -> SuiteResult:
        if ctx.variant.method == "base":  # the reference the others are compared with: its outputs, no metric
            return SuiteResult(samples=[_example(e, o, None, {"pairwise": "reference (base)"})
                                        for e, o in zip(ctx.test, outs, strict=True)])
        refs = ctx.base_outputs
        if refs is None:
            raise RuntimeError("judge option 'pairwise_against: base': base's outputs on this suite are not available "
                               "(base failed, or was scored at the same time as this variant: Ray, API variants). "
                               "Run the sweep again: it resumes, and compares with base's stored outputs")
        schema = judging.choice_schema("winner", ["A", "B", "tie"])
        asks: list[list[dict[str, str]]] = []
        where: dict[int, int] = {}  # example index -> its first request (the variant-first order; base-first next)
        for i, (e, out) in enumerate(zip(ctx.test, outs, strict=True)):
            base = refs.get(e.example_id)
            if base is not None and base != out:
                where[i] = len(asks)
                asks += [pairwise_prompt(criteria, e, out, base, reference=show_reference, guidance=guidance),
                         pairwise_prompt(criteria, e, base, out, reference=show_reference, guidance=guidance)]
        replies = model.complete(asks, schema, judge_max_tokens, version)
        examples = []
        for i, (e, out) in enumerate(zip(ctx.test, outs, strict=True)):
            base = refs.get(e.example_id)
            detail: JSONDict = {"base_output": base}
            values: dict[str, float] = {}
            if base is None:
                detail["judge_error"] = "base has no output for this example (its test set differs); not compared"
            elif i not in where:
                detail.update(outcome="tie", reason="identical outputs, not judged")
                values["judge_win_rate"] = WIN_VALUE["tie"]
            else:
                both = [replies[where[i]], replies[where[i] + 1]]
                read = [(None, r.error) if r.error else read_judgment(r.text, schema) for r in both]
                detail["cached"] = all(r.cached for r in both)
                bad = [f"{order}: {err}" for order, (_, err) in zip(("variant first", "base first"), read, strict=True)
                       if err]
                if bad:
                    detail.update(judge_error="; ".join(bad),
                                  judge_reply=[(r.text or "")[:judging.RAW_KEPT] or None for r in both])
                else:
                    (first_doc, _), (second_doc, _) = read
                    assert first_doc is not None and second_doc is not None
                    first, second = choice_of(first_doc, "winner"), choice_of(second_doc, "winner")
                    agreed = outcome(str(first.score), str(second.score))
                    values["judge_win_rate"] = WIN_VALUE[agreed]
                    detail.update(outcome=agreed,
                                  variant_first={"winner": first.score, "rationale": one_line(first.rationale)},
                                  base_first={"winner": second.score, "rationale": one_line(second.rationale)})
            examples.append(_example(e, out, {"win": True, "loss": False}.get(str(detail.get("outcome", ""))), detail,
                                     values))
        valid = [x for x in examples if "outcome" in x.detail]
        counts = Counter(str(x.detail["outcome"]) for x in valid)
        rows: list[Score] = []
        if valid:
            rows.append(Score.of("judge_win_rate", stats.mean_ci([x.scores["judge_win_rate"] for x in valid]),
                                 len(valid), {"outcomes": {k: counts.get(k, 0) for k in WIN_VALUE}}))
            rows.append(rate_row("judge_tie_rate", counts["tie"], len(valid)))
            rows.append(rate_row("judge_inconsistent_rate", counts["inconsistent"], len(valid)))
        rows.append(_errors_row(len(examples) - len(valid), len(examples)))
        return SuiteResult(rows, examples)

    return score


def _example(e: Example, output: str, passed: bool | None, detail: JSONDict,
             values: dict[str, float] | None = None) -> Sample:
    return Sample(e.example_id, e.prompt_messages[-1]["content"], output, e.reference, passed, dict(values or {}),
                  detail)
