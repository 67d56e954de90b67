"""heldout: generate on the experiment's test set; exact match, JSON field accuracy, ROUGE-L, BLEU, chrF, loss."""

from __future__ import annotations

from typing import Any

import numpy as np

import harness.scorers.metrics as metrics
from harness import stats
from harness.scorers.registry import Metric, ScoreContext, SuiteOutput, scorer


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
    Metric("field_accuracy", per_example=True, primary=True),  # answers that are JSON: share of fields right
    Metric("exact_match", per_example=True, primary=True),
    Metric("json_valid", per_example=True),
    Metric("rougeL", per_example=True),
    Metric("bleu"), Metric("chrf"),  # corpus-level
    Metric("loss", higher_is_better=False),  # token-weighted over the whole test set
])
def heldout(max_new_tokens: int = 128, loss: bool = True) -> Any:
    """Score generations on the test set against its references."""

    def score(ctx: ScoreContext) -> SuiteOutput:
        refs = [e.reference for e in ctx.test]
        outs = heldout_outputs(ctx, max_new_tokens)
        em = np.array([metrics.exact_match(o, r) for o, r in zip(outs, refs, strict=True)], dtype=float)
        fields = [metrics.field_accuracy(o, r) for o, r in zip(outs, refs, strict=True)]
        fa = np.array([np.nan if f[0] is None else f[0] for f in fields])
        json_refs = ~np.isnan(fa)
        json_valid = np.array([metrics.parse_json(o) is not None for o in outs], dtype=float)
        rouge = metrics.rouge_l(outs, refs)
        nll = ctx.model.reference_nll([e.messages for e in ctx.test]) if loss and ctx.model.supports_loglikelihood else []
        rows: list[dict[str, Any]] = []

        def add(metric: str, value: float, lo: float, hi: float, n: int) -> None:
            rows.append({"suite": "heldout", "metric": metric, "value": value, "ci_low": lo, "ci_high": hi, "n": n})

        add("exact_match", *stats.mean_ci(em), len(em))
        if json_refs.any():
            add("field_accuracy", *stats.mean_ci(fa[json_refs]), int(json_refs.sum()))
            add("json_valid", *stats.wilson_ci(int(json_valid[json_refs].sum()), int(json_refs.sum())),
                int(json_refs.sum()))
        add("rougeL", *stats.mean_ci(rouge), len(rouge))
        for name in ("bleu", "chrf"):
            add(name, *metrics.corpus_metric_ci(name, outs, refs), len(outs))
        if nll:
            # token-weighted mean NLL; the CI resamples examples with their token counts
            add("loss", *stats.ratio_ci([n for n, _ in nll], [c for _, c in nll]), len(nll))
        examples = []
        for i, e in enumerate(ctx.test):
            detail: dict[str, Any] = {"exact_match": float(em[i]), "rougeL": float(rouge[i])}
            if fields[i][0] is not None:
                detail["field_accuracy"] = fields[i][0]
                detail["fields"] = fields[i][1]
                detail["json_valid"] = float(json_valid[i])
            if nll:
                detail["loss"] = nll[i][0] / nll[i][1]
            examples.append({"suite": "heldout", "example_id": e.example_id,
                             "prompt": e.prompt_messages[-1]["content"], "reference": e.reference,
                             "output": outs[i], "passed": bool(em[i]), "detail": detail})
        return SuiteOutput(scores=rows, examples=examples)

    return score
