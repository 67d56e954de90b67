"""heldout: generate on the experiment's test set; exact match, JSON field accuracy, ROUGE-L, BLEU, chrF, loss."""

from __future__ import annotations

import numpy as np

import harness.scorers.metrics as metrics
from harness import stats
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, Sample, Score, SuiteResult


def heldout_outputs(ctx: ScoreContext, max_new_tokens: int | None, default: int = 128) -> list[str]:
    """The model's outputs on the test prompts, generated once per variant and shared with other suites.

    max_new_tokens None: whichever generation this variant already has, else `default` new tokens.
    """
    cached: dict[int, list[str]] = ctx.cache.setdefault("heldout_outputs", {})
    if max_new_tokens is None:
        max_new_tokens = next(iter(cached), default)
    if max_new_tokens not in cached:
        cached[max_new_tokens] = ctx.model.generate([e.prompt_messages for e in ctx.test], max_new_tokens)
    return list(cached[max_new_tokens])


@scorer("heldout", metrics=[
    # answers that are JSON: share of fields right
    Metric("field_accuracy", per_example=True, primary=True, gate=("max_drop", 0.02), column="field_accuracy"),
    Metric("exact_match", per_example=True, primary=True, gate=("max_drop", 0.05), column="exact_match"),
    Metric("json_valid", per_example=True),
    Metric("rougeL", per_example=True, column="rougeL"),
    Metric("bleu"), Metric("chrf", column="chrf"),  # corpus-level
    Metric("loss", higher_is_better=False, column="loss"),  # token-weighted over the whole test set
])
def heldout(max_new_tokens: int = 128, loss: bool = True) -> ScoreFn:
    """Score generations on the test set against its references."""

    def score(ctx: ScoreContext) -> SuiteResult:
        refs = [e.reference for e in ctx.test]
        outs = heldout_outputs(ctx, max_new_tokens)
        em = np.array([metrics.exact_match(o, r) for o, r in zip(outs, refs, strict=True)], dtype=float)
        fields = [metrics.field_accuracy(o, r) for o, r in zip(outs, refs, strict=True)]
        fa = np.array([np.nan if f[0] is None else f[0] for f in fields])
        json_refs = ~np.isnan(fa)
        json_valid = np.array([metrics.parse_json(o) is not None for o in outs], dtype=float)
        rouge = metrics.rouge_l(outs, refs)
        nll = ctx.model.reference_nll([e.messages for e in ctx.test]) if loss and ctx.model.supports_loglikelihood else []
        rows: list[Score] = [Score.of("exact_match", stats.mean_ci(em), len(em))]
        if json_refs.any():
            k = int(json_refs.sum())
            rows.append(Score.of("field_accuracy", stats.mean_ci(fa[json_refs]), k))
            rows.append(Score.of("json_valid", stats.wilson_ci(int(json_valid[json_refs].sum()), k), k))
        rows.append(Score.of("rougeL", stats.mean_ci(rouge), len(rouge), metrics.rouge_how()))
        for name in ("bleu", "chrf"):
            rows.append(Score.of(name, metrics.corpus_metric_ci(name, outs, refs), len(outs), metrics.corpus_how(name)))
        if nll:
            # token-weighted mean NLL; the CI resamples examples with their token counts
            rows.append(Score.of("loss", stats.ratio_ci([n for n, _ in nll], [c for _, c in nll]), len(nll)))
        examples = []
        for i, e in enumerate(ctx.test):
            values = {"exact_match": float(em[i]), "rougeL": float(rouge[i])}
            detail: JSONDict = {}
            share = fields[i][0]
            if share is not None:
                values["field_accuracy"] = float(share)
                values["json_valid"] = float(json_valid[i])
                detail["fields"] = dict(fields[i][1])
            if nll:
                values["loss"] = nll[i][0] / nll[i][1]
            examples.append(Sample(e.example_id, e.prompt_messages[-1]["content"], outs[i], e.reference,
                                   bool(em[i]), values, detail))
        return SuiteResult(rows, examples)

    return score
