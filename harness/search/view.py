"""What `harness sweep --dry-run` says about a search: its space, its trials, the scheduler's rungs and the most it
trains against every trial trained to the end."""

from __future__ import annotations

from harness.search.rungs import keep_count, rung_epochs
from harness.spec.schema import ExperimentSpec


def search_lines(spec: ExperimentSpec, grid_size: int) -> list[str]:
    """The dry run's lines for a spec with a `search:` block (grid_size: the plan's training variants)."""
    s = spec.search
    if s is None:
        return []
    from harness.search.space import describe

    trials = int(s.trials or 0) if s.samples else grid_size
    sampler = {"random": "Optuna's RandomSampler", "tpe": "Optuna's TPESampler", "grid": "the grid, in plan order"}
    lines = [f"search: {s.algorithm}, {trials} trials (seed {s.seed}; {sampler[s.algorithm]}); the space:",
             *describe(spec)]
    if s.scheduler is None:
        lines.append(f"  every trial trains to the end; selection on {s.metric}, never on test data")
        return lines
    most = int(spec.sweep.values("epochs")[0])
    rungs, alive, trained = rung_epochs(s.grace_period, s.reduction_factor, most), trials, 0
    last, parts = 0, []
    for i, epoch in enumerate(rungs, start=1):
        trained += alive * (epoch - last)
        kept = keep_count(alive, s.reduction_factor)
        parts.append(f"rung {i} at epoch {epoch} keeps {kept} of {alive}")
        alive, last = kept, epoch
    trained += alive * (most - last)
    lines.append(f"scheduler: ASHA on {s.metric}, rung-synchronous: {'; '.join(parts)}; {alive} train to epoch {most}")
    lines.append(f"  at most {trained} of {trials * most} trial-epochs trained ({trained / (trials * most):.0%} of "
                 "every trial to the end); the winner is picked on validation, never on test data")
    return lines
