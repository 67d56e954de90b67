"""The managed fine-tuning protocol: what training and scoring (harness/train/remote.py) ask of a provider.

A provider is one module in harness/managed/providers/ with a class that implements `ManagedBackend`, listed in
that package's PROVIDERS under its model prefix (`openai`, `azure-openai`). Everything provider-specific lives there: the client and
its key, the job's parameters, how a job made earlier is found again, the statuses that mean "still working", and
what chat completions are sent to when the result is scored. What the providers share (events, checkpoints,
train_log rows, idempotent creation, backoff) lives in harness/managed/jobs.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.data.chat import Example
from harness.managed.client import OpenAIChatModel
from harness.managed.data import CostEstimate
from harness.managed.jobs import JobCheckpoint
from harness.scores import JSONDict
from harness.spec.plan import Variant
from harness.spec.schema import AzureSpec, OpenAITrainSpec

if TYPE_CHECKING:
    from openai.types.fine_tuning import FineTuningJob as FineTuningJob  # re-exported for harness.train.remote


class ScoringUnavailable(Exception):
    """A model cannot be scored yet (e.g. no deployment serves it); the message says what to do."""


@dataclass(frozen=True)
class ManagedSettings:
    """Typed inputs a provider needs, from the spec."""

    model: str  # the base model's id at the provider (ModelRef.location)
    train: OpenAITrainSpec = field(default_factory=OpenAITrainSpec)  # train.openai: job settings
    azure: AzureSpec = field(default_factory=AzureSpec)  # the spec's azure block
    spec_name: str = "harness"
    where: str = "spec"  # the spec file, for messages
    base_url: str | None = None  # refused by the OpenAI provider (its key is never sent to a spec's URL)


@dataclass(frozen=True)
class JobRequest:
    """One variant's job: what every provider turns into its own create call."""

    variant_id: str
    name: str
    epochs: int | None
    seed: int | None
    training_file: str
    validation_file: str | None
    run_id: str | None


class ManagedBackend(Protocol):
    """Submit -> follow -> result, asynchronously, for one provider."""

    kind: str  # the model prefix it serves, also `jobs.provider`: 'openai', 'azure-openai'
    label: str  # for messages: 'OpenAI', 'Azure OpenAI'
    active_statuses: tuple[str, ...]  # statuses that mean the job still works

    def connect(self) -> None:
        """Make the client now, so a missing key or endpoint is an input error before any job or thread starts."""
        ...

    def check_data(self, train: list[Example], validation: list[Example]) -> list[str]:
        """Every way the data or the job settings break the provider's rules, as 'file:line: problem'."""
        ...

    def estimate(self, train: list[Example], variants: list[Variant]) -> CostEstimate:
        """Billed training tokens and price per variant (no client, no key: the dry run calls it)."""
        ...

    def notices(self, trainees: list[tuple[str, str]]) -> list[str]:
        """Warnings for the plan's `method: openai` variants, given as (name, id): announced cutoffs, base-model
        retirements, what scoring will lack."""
        ...

    def upload(self, path: Path) -> str:
        """Upload a training JSONL; returns its file id."""
        ...

    def find_job(self, variant_id: str) -> FineTuningJob | None:
        """The live job made earlier for this variant, or None."""
        ...

    def create_job(self, request: JobRequest, *, base_delay: float) -> tuple[FineTuningJob, bool]:
        """Create the variant's job exactly once: (job, created_now); a lost answer is found again, never resent."""
        ...

    def retrieve_job(self, job_id: str) -> FineTuningJob | None:
        """The job, or None when the provider no longer knows it."""
        ...

    def get_job(self, job_id: str) -> FineTuningJob:
        """The job (errors propagate, for the follower's backoff)."""
        ...

    def new_events(self, job_id: str, known: set[str]) -> list[JSONDict]:
        """Events not in `known`, oldest first, scrubbed."""
        ...

    def checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        """The job's checkpoints with their metrics."""
        ...

    def refusal(self, exc: BaseException) -> str | None:
        """The clear message when job creation was refused for good (closed, retired model), else None."""
        ...

    def target(self, method: str, names: tuple[str, str], model_id: str) -> str:
        """What chat completions are sent to for a model: its id, or a deployment that serves it. `names` are the
        variant's (name, id). Raises ScoringUnavailable saying what to do when nothing serves it yet."""
        ...

    def chat_model(self, target: str, name: str) -> OpenAIChatModel:
        """A scoring model sending chat completions to `target`."""
        ...
