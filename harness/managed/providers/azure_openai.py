"""Azure OpenAI fine-tuning through the same `openai` package (`openai.AzureOpenAI`): `model: azure-openai:<base model>`.

Endpoint and API version from the spec's `azure:` block, else AZURE_OPENAI_ENDPOINT / OPENAI_API_VERSION; the key
from AZURE_OPENAI_API_KEY only (OPENAI_API_KEY, OPENAI_ORG_ID and the like are never sent to Azure). Requests go to
{endpoint}/openai/... with `api-version` on every call and the key in the `api-key` header.

Azure's generally available job API takes no metadata, so the variant id rides in the job's suffix (at most 40
characters) and a job whose create answer was lost is found again by listing jobs and matching it. Azure serves
models only through deployments, which bill by the hour: the harness never creates one. The spec names them
(`azure.deployments`: variant name or id -> deployment, `base` for the base model); a trained variant with none
fails at scoring with a message that says what to deploy and where to name it, and a rerun scores it without
training again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from harness.data.chat import Example
from harness.errors import HarnessInputError
from harness.managed import jobs as jobs_api
from harness.managed import lifecycle
from harness.managed.backend import JobRequest, ManagedSettings, ScoringUnavailable
from harness.managed.client import DEFAULT_MAX_RETRIES, OpenAIChatModel, env_int
from harness.managed.data import CostEstimate, check_examples, estimate_cost
from harness.managed.providers.common import ClientJobs, hyperparameters
from harness.managed.providers.openai_platform import model_suffix
from harness.spec.plan import Variant

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob, JobCreateParams

MAX_SUFFIX = 40  # Azure: up to 40 characters, a-z A-Z 0-9 - _
ID_IN_SUFFIX = 13  # '-' + the 12-character variant id
KEY_ENV = "AZURE_OPENAI_API_KEY"


class AzureOpenAIBackend(ClientJobs):
    """Azure OpenAI fine-tuning jobs; chat completions through deployments."""

    kind: str = "azure-openai"
    label: str = "Azure OpenAI"
    active_statuses: tuple[str, ...] = ("created", "pending", "validating_files", "queued", "running")

    def __init__(self, settings: ManagedSettings):
        self.s = settings
        self.deployments: dict[str, str] = dict(settings.azure.deployments)
        self._client: OpenAI | None = None

    @property
    def client(self) -> OpenAI:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> OpenAI:
        import openai

        endpoint = self.s.azure.endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
        version = self.s.azure.api_version or os.environ.get("OPENAI_API_VERSION")
        key = os.environ.get(KEY_ENV)
        problems = []
        if not endpoint:
            problems.append("the resource endpoint: set 'azure.endpoint: https://RESOURCE.openai.azure.com' in the "
                            "spec or export AZURE_OPENAI_ENDPOINT")
        elif not endpoint.startswith(("https://", "http://")):
            problems.append(f"AZURE_OPENAI_ENDPOINT={endpoint!r}: use the resource URL, https://RESOURCE.openai.azure.com")
        if not version:
            problems.append("an API version: set 'azure.api_version: 2025-04-01-preview' in the spec or export "
                            "OPENAI_API_VERSION (job events and checkpoints need 2024-05-01-preview or later)")
        if not key:
            problems.append(f"a key: export {KEY_ENV}=... (the resource's key; OPENAI_API_KEY is never sent to Azure)")
        if problems or not endpoint:
            raise HarnessInputError([f"{self.s.where}: azure-openai models need {p}" for p in problems],
                                    title="Azure OpenAI is not configured")
        retries = env_int("HARNESS_OPENAI_MAX_RETRIES", DEFAULT_MAX_RETRIES)
        client = openai.AzureOpenAI(azure_endpoint=endpoint, api_version=version, api_key=key,
                                    max_retries=retries, timeout=120.0)
        # The package reads OpenAI's own settings from the environment too; none of them belongs to Azure.
        client.organization = client.project = client.admin_api_key = None
        return client

    def connect(self) -> None:
        assert self.client is not None

    # -- before anything is sent ---------------------------------------------------------------------
    def check_data(self, train: list[Example], validation: list[Example]) -> list[str]:
        problems = check_examples(train, validation, self.s.model)
        suffix = self.s.train.suffix
        room = MAX_SUFFIX - ID_IN_SUFFIX
        if suffix is not None and not (0 < len(suffix) <= room and all(c.isascii() and (c.isalnum() or c in "-_")
                                                                      for c in suffix)):
            problems.append(f"{self.s.where}: key 'train.openai.suffix': {suffix!r}; on Azure OpenAI use 1 to {room} "
                            f"letters, digits, '-' or '_' (the harness adds '-<variant id>', Azure allows {MAX_SUFFIX})")
        return problems

    def estimate(self, train: list[Example], variants: list[Variant]) -> CostEstimate:
        return estimate_cost(self.s.model, train, variants, self.s.train.price_per_million_tokens, self.kind)

    def notices(self, trainees: list[tuple[str, str]]) -> list[str]:
        out = lifecycle.plan_notices(self.kind, len(trainees), [], self.s.model)
        missing = [name for name, vid in trainees if name not in self.deployments and vid not in self.deployments]
        if missing:
            out.append(f"azure.deployments names no deployment for {', '.join(missing)}: they will train, then fail "
                       "at scoring until you deploy each fine-tuned model and name its deployment there (the harness "
                       "never deploys; deployments bill by the hour). A rerun then scores without training again.")
        return out

    # -- jobs -------------------------------------------------------------------------------------------
    def suffix(self, variant_id: str) -> str:
        room = MAX_SUFFIX - ID_IN_SUFFIX
        return f"{self.s.train.suffix or model_suffix(self.s.spec_name, room)}-{variant_id}"

    def find_job(self, variant_id: str) -> FineTuningJob | None:
        return jobs_api.find_job_by_suffix(self.client, self.suffix(variant_id), variant_id)

    def create_job(self, request: JobRequest, *, base_delay: float) -> tuple[FineTuningJob, bool]:
        hp = hyperparameters(request, self.s.train)
        params: JobCreateParams = {"model": self.s.model, "training_file": request.training_file,
                                  "suffix": self.suffix(request.variant_id), "hyperparameters": hp}
        return self.submit(params, request, base_delay)

    # -- scoring ----------------------------------------------------------------------------------------
    def target(self, method: str, names: tuple[str, str], model_id: str) -> str:
        """The deployment to call: a `given` checkpoint names one; other variants are looked up in azure.deployments
        by name or id, and `base` and `prompt` variants (the base model, prompted) fall back to its `base` entry."""
        if method == "given":
            return model_id
        on_base = method in ("base", "prompt")
        for key in (*names, "base") if on_base else names:
            if key in self.deployments:
                return self.deployments[key]
        never = "the harness never creates deployments, since they bill by the hour"
        if on_base:
            raise ScoringUnavailable(
                f"Azure OpenAI serves models only through deployments and none is named for the base model "
                f"{model_id}: deploy it in your resource and name the deployment in the spec as "
                f"'azure: {{deployments: {{base: DEPLOYMENT}}}}' ({never}); requests use {KEY_ENV}.")
        raise ScoringUnavailable(
            f"trained: {model_id} is ready on Azure OpenAI, but no deployment serves it and {never}. Deploy it "
            f"(Azure AI Foundry, or `az cognitiveservices account deployment create --resource-group GROUP --name "
            f"RESOURCE --deployment-name DEPLOYMENT --model-name {model_id} --model-version 1 --model-format OpenAI "
            f"--sku-name Standard --sku-capacity 1`), name it in the spec as "
            f"'azure: {{deployments: {{{names[0]}: DEPLOYMENT}}}}', and rerun the sweep: it re-attaches to the "
            f"finished job, trains nothing, and scores through the deployment with {KEY_ENV}.")

    def chat_model(self, target: str, name: str) -> OpenAIChatModel:
        return OpenAIChatModel(self.client, target, name=name)
