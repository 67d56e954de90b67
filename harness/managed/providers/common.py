"""What every provider reached through the `openai` package does the same way: the job calls of harness.managed.jobs
on the provider's client, the refusal reading of harness.managed.lifecycle, and the tail of a create request."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.managed import jobs as jobs_api
from harness.managed import lifecycle
from harness.managed.backend import JobRequest, ManagedSettings

if TYPE_CHECKING:
    from openai.types.fine_tuning import FineTuningJob


class ClientJobs:
    """A mixin: a provider sets `kind`, `s` (its ManagedSettings) and `client`, and writes `find_job` and
    `create_job`; the rest of the job lifecycle is the same calls."""

    kind: str
    s: ManagedSettings
    client: Any

    def find_job(self, variant_id: str) -> FineTuningJob | None:
        raise NotImplementedError

    def upload(self, path: Path) -> str:
        return jobs_api.upload_file(self.client, path)

    def submit(self, params: dict[str, Any], request: JobRequest, base_delay: float) -> tuple[FineTuningJob, bool]:
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

    def new_events(self, job_id: str, known: set[str]) -> list[dict[str, Any]]:
        return jobs_api.fetch_new_events(self.client, job_id, known)

    def checkpoints(self, job_id: str) -> list[dict[str, Any]]:
        return jobs_api.fetch_checkpoints(self.client, job_id)

    def refusal(self, exc: BaseException) -> str | None:
        return lifecycle.refusal_message(self.kind, self.s.model, exc)
