"""Typed data of the remote half of a sweep: its inputs, the events it hands the scheduler, the jobs it follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.data.chat import DataBundle
from harness.data.suites import Suite
from harness.models.resolve import ModelRef
from harness.results import VariantResult
from harness.scores import JSONDict
from harness.spec.plan import Variant
from harness.spec.schema import AzureSpec, TrainSpec


@dataclass
class RemoteInputs:
    """Typed inputs of the remote half of a sweep."""

    model: ModelRef
    data: DataBundle
    suites: list[Suite]
    train: TrainSpec  # the spec's train settings; train.openai holds the job settings
    spec_name: str
    where: str  # the spec file, for error messages
    base_url: str | None
    out_dir: Path
    run_id: str | None = None
    azure: AzureSpec | None = None  # the spec's azure block
    base_outputs: dict[str, dict[str, str]] | None = None  # base's outputs by suite and example id (pairwise judges)


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
