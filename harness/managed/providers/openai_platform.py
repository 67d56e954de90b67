"""OpenAI's own fine-tuning API (api.openai.com, or OPENAI_BASE_URL): `model: openai:<base model>`.

Key from OPENAI_API_KEY. A job carries `metadata.variant_id`, so a job whose create answer was lost is found again
by listing jobs filtered by that metadata. The fine-tuned model id is called directly for scoring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.data.chat import Example
from harness.managed import jobs as jobs_api
from harness.managed import lifecycle
from harness.managed.backend import JobRequest, ManagedSettings
from harness.managed.client import OpenAIChatModel, make_client
from harness.managed.data import CostEstimate, check_examples, estimate_cost
from harness.managed.providers.common import ClientJobs, hyperparameters
from harness.spec.plan import Variant

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob, JobCreateParams

MAX_SUFFIX = 64  # the API's limit on a fine-tuned model name's suffix


def model_suffix(name: str, limit: int = MAX_SUFFIX) -> str:
    """A model-name suffix from the spec name: lower-case letters, digits and '-', at most `limit` characters."""
    s = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower()).strip("-")
    return (s or "harness")[:limit]


class OpenAIPlatform(ClientJobs):
    """OpenAI fine-tuning jobs and chat completions."""

    kind: str = "openai"
    label: str = "OpenAI"
    active_statuses: tuple[str, ...] = ("validating_files", "queued", "running")

    def __init__(self, settings: ManagedSettings):
        self.s = settings
        self._client: OpenAI | None = None

    @property
    def client(self) -> OpenAI:
        if self._client is None:
            self._client = make_client("openai", self.s.base_url)
        return self._client

    def connect(self) -> None:
        assert self.client is not None

    # -- before anything is sent ---------------------------------------------------------------------
    def check_data(self, train: list[Example], validation: list[Example]) -> list[str]:
        problems = check_examples(train, validation, self.s.model)
        suffix = self.s.train.suffix
        if suffix is not None and not 0 < len(suffix) <= MAX_SUFFIX:
            problems.append(f"{self.s.where}: key 'train.openai.suffix': {len(suffix)} characters; "
                            f"the API takes 1 to {MAX_SUFFIX}")
        return problems

    def estimate(self, train: list[Example], variants: list[Variant]) -> CostEstimate:
        return estimate_cost(self.s.model, train, variants, self.s.train.price_per_million_tokens, self.kind)

    def notices(self, trainees: list[tuple[str, str]]) -> list[str]:
        return lifecycle.plan_notices(self.kind, len(trainees), [], self.s.model)

    # -- jobs -------------------------------------------------------------------------------------------
    def find_job(self, variant_id: str) -> FineTuningJob | None:
        return jobs_api.find_job(self.client, variant_id)

    def create_job(self, request: JobRequest, *, base_delay: float) -> tuple[FineTuningJob, bool]:
        hp = hyperparameters(request, self.s.train)
        params: JobCreateParams = {
            "model": self.s.model, "training_file": request.training_file,
            "suffix": self.s.train.suffix or model_suffix(self.s.spec_name),
            "metadata": {"variant_id": request.variant_id, "harness_run": request.run_id or "",
                         "harness": "finetune-harness"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        }
        return self.submit(params, request, base_delay)

    # -- scoring ----------------------------------------------------------------------------------------
    def target(self, method: str, names: tuple[str, str], model_id: str) -> str:
        return model_id  # OpenAI serves base and fine-tuned models by id

    def chat_model(self, target: str, name: str) -> OpenAIChatModel:
        return OpenAIChatModel(self.client, target, name=name)
