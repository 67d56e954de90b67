"""What every provider reached through the `openai` package does the same way: the job calls of harness.managed.jobs
on the provider's client, the refusal reading of harness.managed.lifecycle, and the tail of a create request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.managed import jobs as jobs_api
from harness.managed import lifecycle
from harness.managed.backend import JobRequest, ManagedSettings
from harness.managed.jobs import JobCheckpoint
from harness.scores import JSONDict
from harness.spec.schema import OpenAITrainSpec

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob, JobCreateParams
    from openai.types.fine_tuning.job_create_params import Hyperparameters


def hyperparameters(request: JobRequest, train: OpenAITrainSpec) -> Hyperparameters:
    """A job's hyperparameters: the variant's epochs, and the batch size and learning-rate multiplier the spec sets."""
    hp: Hyperparameters = {}
    if request.epochs is not None:
        hp["n_epochs"] = request.epochs
    if train.batch_size is not None:
        hp["batch_size"] = train.batch_size
    if train.learning_rate_multiplier is not None:
        hp["learning_rate_multiplier"] = train.learning_rate_multiplier
    return hp


class ClientJobs:
    """A mixin: a provider sets `kind`, `s` (its ManagedSettings) and `client`, and writes `find_job` and
    `create_job`; the rest of the job lifecycle is the same calls."""

    kind: str
    s: ManagedSettings

    @property
    def client(self) -> OpenAI:
        raise NotImplementedError

    def find_job(self, variant_id: str) -> FineTuningJob | None:
        raise NotImplementedError

    def upload(self, path: Path) -> str:
        return jobs_api.upload_file(self.client, path)

    def submit(self, params: JobCreateParams, request: JobRequest, base_delay: float) -> tuple[FineTuningJob, bool]:
        """Create the job from the provider's `params` plus the request's seed and validation file; a lost response
        is found again by the provider's own `find_job`."""
        if request.seed is not None:
            params["seed"] = request.seed
        if request.validation_file:
            params["validation_file"] = request.validation_file
        return jobs_api.create_job(self.client, params, lambda: self.find_job(request.variant_id),
                                   base_delay=base_delay)

    def retrieve_job(self, job_id: str) -> FineTuningJob | None:
        return jobs_api.retrieve_job(self.client, job_id)

    def get_job(self, job_id: str) -> FineTuningJob:
        return jobs_api.get_job(self.client, job_id)

    def new_events(self, job_id: str, known: set[str]) -> list[JSONDict]:
        return jobs_api.fetch_new_events(self.client, job_id, known)

    def checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        return jobs_api.fetch_checkpoints(self.client, job_id)

    def refusal(self, exc: BaseException) -> str | None:
        return lifecycle.refusal_message(self.kind, self.s.model, exc)
