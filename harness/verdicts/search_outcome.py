"""A searched run's outcome, read from the store alone: how many variants it tried and stopped, its winner (picked
on validation loss, never on test), and what early elimination saved against training every trial to the end."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import yaml
from pydantic import ValidationError

from harness.spec.search import SearchSpec

STOPPED = "stopped"
TRAINED = ("lora", "qlora", "full")


@dataclass(frozen=True)
class SearchOutcome:
    """What a search did: its trials, its winner on validation, its trained against planned steps and seconds."""

    search: SearchSpec
    tried: int
    stopped: int
    failed: int
    winner_id: str | None
    winner_name: str | None
    winner_loss: float | None
    trained_steps: int
    planned_steps: int
    train_seconds: float
    planned_seconds: float | None  # the seconds every trial trained to the end would take, at the measured pace

    def how(self) -> str:
        s = self.search
        return s.algorithm + (f", {s.scheduler.upper()} (grace {s.grace_period} epoch, reduction factor "
                              f"{s.reduction_factor})" if s.scheduler else "")

    def selection(self) -> str:
        """The honest-selection sentence: how many were tried and that test figures played no part."""
        stopped = f", {self.stopped} stopped early" if self.stopped else ""
        return (f"Search ({self.how()}): {self.tried} variants tried{stopped}; the winner is picked on validation "
                f"loss alone, so its test-set figures are untouched by the selection (an unbiased estimate, not the "
                f"best of {self.tried} test scores).")

    def saving(self) -> str:
        """Trained steps and seconds against every trial trained to the end (the full grid of these trials)."""
        share = self.trained_steps / self.planned_steps if self.planned_steps else math.nan
        text = (f"Trained {self.trained_steps} of {self.planned_steps} planned steps ({share:.0%}) against training "
                f"all {self.tried} variants to the end")
        if self.planned_seconds:
            text += f"; {self.train_seconds:.0f} s of training against about {self.planned_seconds:.0f} s"
        return text + "."


def search_of(spec_text: object) -> tuple[SearchSpec, int] | None:
    """The stored spec's `search:` block and its most epochs, or None for a run that did not search."""
    if not isinstance(spec_text, str):
        return None
    try:
        raw = yaml.safe_load(spec_text)
    except yaml.YAMLError:
        return None
    block = raw.get("search") if isinstance(raw, dict) else None
    if not isinstance(block, dict):
        return None
    try:
        search = SearchSpec.model_validate(block)
    except ValidationError:
        return None
    epochs = (raw.get("sweep") or {}).get("epochs", [1])
    most = max(epochs) if isinstance(epochs, list) and epochs else 1
    return search, int(most)


def _steps(log: pd.DataFrame) -> tuple[int, int | None]:
    """(steps trained, steps per epoch) from one variant's train log."""
    if log.empty:
        return 0, None
    steps = int(log["step"].max())
    marks = log[log["epoch"].notna() & (log["epoch"] > 0)]
    per_epoch = round(float(marks["step"].iloc[-1]) / float(marks["epoch"].iloc[-1])) if len(marks) else None
    return steps, per_epoch


def validation_loss(log: pd.DataFrame, scored_step: object) -> float:
    """A finished variant's validation loss at its scored checkpoint (else its last validation pass); NaN if none."""
    val = log[log["split"] == "validation"].sort_values("step")
    if val.empty:
        return math.nan
    at = val[val["step"] == scored_step] if scored_step is not None and not pd.isna(scored_step) else val.iloc[0:0]
    return float((at if len(at) else val)["loss"].iloc[-1])


def search_outcome(run: Mapping[str, object], variants: pd.DataFrame, train_log: pd.DataFrame) -> SearchOutcome | None:
    """The outcome of a searched run from its stored rows; None for a run without a `search:` block."""
    found = search_of(run.get("spec"))
    if found is None:
        return None
    search, most = found
    trials = variants[variants["method"].isin(TRAINED)]
    best: tuple[float, str, str] | None = None
    trained = planned = 0
    seconds, pace = 0.0, []
    for v in trials.to_dict("records"):
        vid = str(v["variant_id"])
        log = train_log[train_log["variant_id"] == vid] if not train_log.empty else train_log
        steps, per_epoch = _steps(log)
        trained += steps
        planned += (per_epoch or 0) * int(v["epochs"] if not pd.isna(v["epochs"]) else most)
        if v["train_seconds"] is not None and not pd.isna(v["train_seconds"]) and steps:
            seconds += float(v["train_seconds"])
            pace.append((float(v["train_seconds"]), steps))
        if v["status"] in ("finished", "incomplete"):  # trained to the end (incomplete: a suite failed to score)
            loss = validation_loss(log, v.get("scored_step"))
            key = math.inf if math.isnan(loss) else loss
            if best is None or key < best[0]:
                best = (key, vid, str(v["name"]))
    per_step = sum(s for s, _ in pace) / sum(n for _, n in pace) if pace else None
    return SearchOutcome(search, len(trials), int((trials["status"] == STOPPED).sum()),
                         int((trials["status"] == "failed").sum()), best[1] if best else None,
                         best[2] if best else None, best[0] if best and math.isfinite(best[0]) else None,
                         trained, planned, seconds, per_step * planned if per_step else None)
