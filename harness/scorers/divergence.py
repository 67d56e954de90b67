"""divergence: train versus validation loss from the training log; flags overfitting. Needs no model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness import stats
from harness.errors import HarnessInputError
from harness.scorers.registry import Metric, ScoreContext, scorer
from harness.scores import Finding, Score, SuiteResult

EPS = 1e-6


def _epoch(e: float) -> str:
    return f"{round(float(e), 2):g}"


def _row(metric: str, value: float, lo: float | None = None, hi: float | None = None, n: int = 1) -> Score:
    """A score; lo/hi None where one observation allows no interval."""
    return Score(metric, float(value), lo, hi, n)


def _mean(losses: list[float]) -> tuple[float, float | None, float | None]:
    if len(losses) < 2:
        return (losses[0], None, None) if losses else (math.nan, None, None)
    return stats.mean_ci(np.array(losses))


def analyse(log: list[dict[str, Any]], min_rise: float) -> dict[str, Any] | None:
    """Per-epoch losses, the best validation point, the gap, and whether validation rose while train fell."""
    unit = "epoch"
    if any(r.get("epoch") is None or math.isnan(float(r["epoch"])) for r in log):
        unit = "step"  # a log without epochs (some OpenAI jobs): positions are steps, no per-epoch metrics
        log = [{**r, "epoch": float(r["step"])} for r in log]
    train = sorted((r for r in log if r["split"] == "train"), key=lambda r: (r["epoch"], r["step"]))
    val = sorted((r for r in log if r["split"] == "validation"), key=lambda r: (r["epoch"], r["step"]))
    if not train:
        return None
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in train if unit == "epoch" else []:
        by_epoch.setdefault(max(1, math.ceil(r["epoch"] - EPS)), {"train": [], "val": None})["train"].append(r["loss"])
    for r in val if unit == "epoch" else []:  # the last evaluation within each epoch stands for that epoch
        by_epoch.setdefault(math.ceil(r["epoch"] - EPS), {"train": [], "val": None})["val"] = r
    out: dict[str, Any] = {"epochs": by_epoch, "train": train, "val": val, "unit": unit}
    if not val:
        return out

    def train_between(lo: float, hi: float) -> list[float]:
        return [r["loss"] for r in train if lo + EPS < r["epoch"] <= hi + EPS]

    best_i = int(np.argmin([r["loss"] for r in val]))
    best, last = val[best_i], val[-1]
    prev_last = val[-2]["epoch"] if len(val) > 1 else last["epoch"] - 1
    final_train = train_between(prev_last, last["epoch"]) or [train[-1]["loss"]]
    prev_best = val[best_i - 1]["epoch"] if best_i > 0 else best["epoch"] - 1
    at_best = train_between(prev_best, best["epoch"]) or [train[0]["loss"]]
    rise = last["loss"] - best["loss"]
    out.update(best=best, last=last, final_train=final_train, train_at_best=at_best, rise=rise,
               overfitting=bool(best_i < len(val) - 1 and rise > min_rise
                                and float(np.mean(final_train)) < float(np.mean(at_best))))
    return out


@scorer("divergence", metrics=[
    Metric("train_loss_epoch*", higher_is_better=False), Metric("validation_loss_epoch*", higher_is_better=False),
    Metric("best_epoch", higher_is_better=None), Metric("best_step", higher_is_better=None),
    Metric("best_validation_loss", higher_is_better=False), Metric("final_validation_loss", higher_is_better=False),
    Metric("final_train_loss", higher_is_better=False), Metric("gap", higher_is_better=False),
    Metric("epochs_past_best", higher_is_better=False), Metric("steps_past_best", higher_is_better=False),
    Metric("validation_rise", higher_is_better=False),
])
def divergence(min_rise: float = 0.02) -> Any:
    """Loss by epoch, best epoch, generalization gap, epochs past best; an `overfitting` finding when validation
    loss ends more than `min_rise` (nats per token) above its minimum while train loss fell."""
    if not isinstance(min_rise, int | float) or min_rise < 0:
        raise HarnessInputError(f"divergence option 'min_rise': a loss difference >= 0 (e.g. 0.02), got {min_rise!r}")

    def score(ctx: ScoreContext) -> SuiteResult:
        a = analyse(ctx.train_log or [], float(min_rise))
        if a is None:
            return SuiteResult()  # base, or a checkpoint given without a training log
        scores: list[Score] = []
        for k, e in sorted(a["epochs"].items()):
            if e["train"]:
                m, lo, hi = _mean(e["train"])
                scores.append(_row(f"train_loss_epoch{k}", m, lo, hi, len(e["train"])))
            if e["val"] is not None:
                scores.append(_row(f"validation_loss_epoch{k}", e["val"]["loss"]))
        if "best" not in a:
            return SuiteResult(scores)
        best, last = a["best"], a["last"]
        ft, ft_lo, ft_hi = _mean(a["final_train"])
        n_val = len(a["val"])
        u = a["unit"]
        scores += [
            _row(f"best_{u}", best["epoch"], n=n_val),
            _row("best_validation_loss", best["loss"], n=n_val),
            _row("final_validation_loss", last["loss"]),
            _row("final_train_loss", ft, ft_lo, ft_hi, len(a["final_train"])),
            _row("gap", last["loss"] - ft, None if ft_hi is None else last["loss"] - ft_hi,
                 None if ft_lo is None else last["loss"] - ft_lo, len(a["final_train"])),
            _row(f"{u}s_past_best", last["epoch"] - best["epoch"], n=n_val),
            _row("validation_rise", a["rise"], n=n_val),
        ]
        findings = []
        if a["overfitting"]:
            name = getattr(ctx.variant, "name", None) or "this variant"
            findings.append(Finding(
                "overfitting", "warning",
                (f"{name} is overfitting: validation loss rose from {best['loss']:.2f} ({u} "
                 f"{_epoch(best['epoch'])}) to {last['loss']:.2f} ({u} {_epoch(last['epoch'])}) "
                 f"while train loss fell to {ft:.2f} [detects rises above {float(min_rise):.2f} (min_rise)]"),
                {f"best_{u}": best["epoch"], "best_validation_loss": best["loss"],
                 f"final_{u}": last["epoch"], "final_validation_loss": last["loss"],
                 "rise": a["rise"], "min_rise": float(min_rise), "mde": float(min_rise),
                 "train_loss_at_best": float(np.mean(a["train_at_best"])), "final_train_loss": ft,
                 "validation_curve": [[r["epoch"], r["loss"]] for r in a["val"]]}))
        return SuiteResult(scores, findings=findings)

    return score
