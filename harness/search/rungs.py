"""Successive halving, rung-synchronous: the rungs (epochs) of a search and who each rung keeps."""

from __future__ import annotations

import math
from dataclasses import dataclass


def rung_epochs(grace_period: int, reduction_factor: int, max_epochs: int) -> list[int]:
    """The epochs at which trials are compared: grace_period x reduction_factor^k, below max_epochs."""
    out, r = [], grace_period
    while r < max_epochs:
        out.append(r)
        r *= reduction_factor
    return out


def keep_count(n: int, reduction_factor: int) -> int:
    """How many of n trials a rung keeps: the best n // reduction_factor, at least one (Optuna's
    SuccessiveHalvingPruner promotes the same share once every competitor has reported)."""
    return max(1, n // reduction_factor)


def sort_key(value: float) -> float:
    """A validation loss as it ranks: a missing or diverged (NaN) loss ranks last."""
    return math.inf if value is None or math.isnan(value) else value


@dataclass(frozen=True)
class RungDecision:
    """One rung: which trials go on, which stop, and the words each stopped trial's stop_reason carries."""

    epoch: int
    rung: int  # 1-based
    kept: list[str]
    stopped: dict[str, str]  # variant id -> stop_reason


def decide(epoch: int, rung: int, values: dict[str, float], reduction_factor: int) -> RungDecision:
    """Keep the best n // reduction_factor by validation loss (ties: the earlier trial); stop the rest."""
    order = sorted(values, key=lambda vid: sort_key(values[vid]))  # sorted() is stable: ties keep trial order
    n, k = len(order), keep_count(len(values), reduction_factor)
    kept = order[:k]
    bar = values[kept[-1]]
    stopped = {vid: f"stopped by ASHA at epoch {epoch}: validation loss {_loss(values[vid])}, rung {rung} keeps the "
               f"best {k} of {n} (1/{reduction_factor}; the last kept had {_loss(bar)})" for vid in order[k:]}
    return RungDecision(epoch, rung, kept, stopped)


def _loss(x: float) -> str:
    return "nan (diverged)" if x is None or math.isnan(x) else f"{x:.4g}"
