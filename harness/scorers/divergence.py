"""divergence: train versus validation loss from the training log; flags overfitting. Needs no model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from harness import stats
from harness.errors import HarnessInputError
from harness.results import LogPoint
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
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


@dataclass
class Epoch:
    """One epoch of the log: its train losses and the last validation point within it (None if none)."""

    train: list[float] = field(default_factory=list)
    val: LogPoint | None = None


@dataclass
class Analysis:
    """What the log says: losses by epoch, and (with validation points) the best and last ones, the train losses
    around them, the rise since the best, and whether that is overfitting. `unit` is 'epoch', or 'step' for a log
    without epochs (positions are then steps, stored in `epoch`)."""

    epochs: dict[int, Epoch]
    train: list[LogPoint]
    val: list[LogPoint]
    unit: str
    best: LogPoint | None = None
    last: LogPoint | None = None
    final_train: list[float] = field(default_factory=list)
    train_at_best: list[float] = field(default_factory=list)
    rise: float = 0.0
    overfitting: bool = False


def _at(r: LogPoint) -> float:
    """The point's position: its epoch (analyse sets it for every point)."""
    return float(r.epoch) if r.epoch is not None else float(r.step)


def analyse(log: list[LogPoint], min_rise: float) -> Analysis | None:
    """Per-epoch losses, the best validation point, the gap, and whether validation rose while train fell."""
    unit = "epoch"
    if any(r.epoch is None or math.isnan(float(r.epoch)) for r in log):
        unit = "step"  # a log without epochs (some OpenAI jobs): positions are steps, no per-epoch metrics
        log = [replace(r, epoch=float(r.step)) for r in log]
    train = sorted((r for r in log if r.split == "train"), key=lambda r: (_at(r), r.step))
    val = sorted((r for r in log if r.split == "validation"), key=lambda r: (_at(r), r.step))
    if not train:
        return None
    by_epoch: dict[int, Epoch] = {}
    for r in train if unit == "epoch" else []:
        by_epoch.setdefault(max(1, math.ceil(_at(r) - EPS)), Epoch()).train.append(r.loss)
    for r in val if unit == "epoch" else []:  # the last evaluation within each epoch stands for that epoch
        by_epoch.setdefault(math.ceil(_at(r) - EPS), Epoch()).val = r
    out = Analysis(by_epoch, train, val, unit)
    if not val:
        return out

    def train_between(lo: float, hi: float) -> list[float]:
        return [r.loss for r in train if lo + EPS < _at(r) <= hi + EPS]

    best_i = int(np.argmin([r.loss for r in val]))
    best, last = val[best_i], val[-1]
    prev_last = _at(val[-2]) if len(val) > 1 else _at(last) - 1
    final_train = train_between(prev_last, _at(last)) or [train[-1].loss]
    prev_best = _at(val[best_i - 1]) if best_i > 0 else _at(best) - 1
    at_best = train_between(prev_best, _at(best)) or [train[0].loss]
    rise = last.loss - best.loss
    out.best, out.last, out.final_train, out.train_at_best, out.rise = best, last, final_train, at_best, rise
    out.overfitting = bool(best_i < len(val) - 1 and rise > min_rise
                           and float(np.mean(final_train)) < float(np.mean(at_best)))
    return out


@scorer("divergence", metrics=[
    Metric("train_loss_epoch*", higher_is_better=False), Metric("validation_loss_epoch*", higher_is_better=False),
    Metric("best_epoch", higher_is_better=None), Metric("best_step", higher_is_better=None),
    Metric("best_validation_loss", higher_is_better=False), Metric("final_validation_loss", higher_is_better=False),
    Metric("final_train_loss", higher_is_better=False), Metric("gap", higher_is_better=False),
    Metric("epochs_past_best", higher_is_better=False), Metric("steps_past_best", higher_is_better=False),
    Metric("validation_rise", higher_is_better=False),
], reads_test=False)
def divergence(min_rise: float = 0.02) -> ScoreFn:
    """Loss by epoch, best epoch, generalization gap, epochs past best; an `overfitting` finding when validation
    loss ends more than `min_rise` (nats per token) above its minimum while train loss fell."""
    if not isinstance(min_rise, int | float) or min_rise < 0:
        raise HarnessInputError(f"divergence option 'min_rise': a loss difference >= 0 (e.g. 0.02), got {min_rise!r}")

    def score(ctx: ScoreContext) -> SuiteResult:
        a = analyse(ctx.train_log or [], float(min_rise))
        if a is None:
            return SuiteResult()  # base, or a checkpoint given without a training log
        scores: list[Score] = []
        for k, e in sorted(a.epochs.items()):
            if e.train:
                m, lo, hi = _mean(e.train)
                scores.append(_row(f"train_loss_epoch{k}", m, lo, hi, len(e.train)))
            if e.val is not None:
                scores.append(_row(f"validation_loss_epoch{k}", e.val.loss))
        if a.best is None or a.last is None:
            return SuiteResult(scores)
        best, last = a.best, a.last
        b_at, l_at = _at(best), _at(last)
        ft, ft_lo, ft_hi = _mean(a.final_train)
        n_val = len(a.val)
        u = a.unit
        scores += [
            _row(f"best_{u}", b_at, n=n_val),
            _row("best_validation_loss", best.loss, n=n_val),
            _row("final_validation_loss", last.loss),
            _row("final_train_loss", ft, ft_lo, ft_hi, len(a.final_train)),
            _row("gap", last.loss - ft, None if ft_hi is None else last.loss - ft_hi,
                 None if ft_lo is None else last.loss - ft_lo, len(a.final_train)),
            _row(f"{u}s_past_best", l_at - b_at, n=n_val),
            _row("validation_rise", a.rise, n=n_val),
        ]
        findings = []
        if a.overfitting:
            name = ctx.variant.name or "this variant"
            findings.append(Finding(
                "overfitting", "warning",
                (f"{name} is overfitting: validation loss rose from {best.loss:.2f} ({u} "
                 f"{_epoch(b_at)}) to {last.loss:.2f} ({u} {_epoch(l_at)}) "
                 f"while train loss fell to {ft:.2f} [detects rises above {float(min_rise):.2f} (min_rise)]"),
                {f"best_{u}": b_at, "best_validation_loss": best.loss,
                 f"final_{u}": l_at, "final_validation_loss": last.loss,
                 "rise": a.rise, "min_rise": float(min_rise), "mde": float(min_rise),
                 "train_loss_at_best": float(np.mean(a.train_at_best)), "final_train_loss": ft,
                 "validation_curve": [[_at(r), r.loss] for r in a.val]}))
        return SuiteResult(scores, findings=findings)

    return score
