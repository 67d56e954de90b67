"""What the remote half of a sweep (harness.train.remote) hands the scheduler, and what it keeps per followed job."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.results import VariantResult
from harness.scores import JSONDict
from harness.spec.plan import Variant


@dataclass(frozen=True)
class Info:
    """A line for the progress log."""

    message: str


@dataclass(frozen=True)
class JobUpdate:
    """A managed job's `jobs` row, to store as soon as it is known (a restarted harness re-attaches to it)."""

    row: JSONDict


@dataclass(frozen=True)
class Done:
    """A remote variant's result, finished or failed."""

    variant: Variant
    result: VariantResult


RemoteEvent = Info | JobUpdate | Done


@dataclass(eq=False)
class FollowedJob:
    """A fine-tuning job being followed: its variant, last status, events seen, and when to poll it next."""

    variant: Variant
    job_id: str
    status: str
    events: list[JSONDict]
    estimate: JSONDict  # the cost estimate made before the job
    errors: int = 0  # consecutive failed polls
    next_poll: float = 0.0  # time.monotonic() of the next poll
    seen_unknown: set[str] = field(default_factory=set)  # unknown statuses already reported
