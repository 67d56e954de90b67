"""The spec's sections that hold settings (data, sweep, train, azure, prompt): pydantic models, one per block, each
key checked as it is read (harness.spec.schema puts them together into an `ExperimentSpec`)."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from harness.spec.distributions import Distribution
from harness.spec.formats import column_problems

AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|preview|v1)$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_T = TypeVar("_T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    """Where the data lives (files or `datasets` folders relative to the spec file, or hf:owner/name[:split]) and
    its format (docs/data.md)."""

    train: str | None = None
    validation: float | str = 0.2
    test: str
    format: Literal["auto", "chat", "prompt-completion", "alpaca", "sharegpt"] = "auto"  # auto: detected per file
    columns: dict[str, str] = Field(default_factory=dict)  # the format's field name -> the file's column name
    # Content holding the tokenizer's special tokens (<|im_start|>, <|im_end|>, ...) is refused unless this is set:
    # those strings become real turn markers, so an example could forge turns.
    allow_special_tokens: bool = False
    # Jaccard similarity of 3-word shingles at which a validation or test example counts as a near-duplicate of a
    # training example (a data-quality warning before the sweep)
    near_duplicate_threshold: float = 0.8

    @field_validator("near_duplicate_threshold")
    @classmethod
    def _similarity(cls, v: float) -> float:
        if not 0.0 < v <= 1.0:
            raise ValueError("a Jaccard similarity in (0, 1], e.g. 0.8")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str], info: ValidationInfo[object]) -> dict[str, str]:
        problems = column_problems(v, info.data.get("format", "auto"))
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("validation")
    @classmethod
    def _fraction(cls, v: float | str) -> float | str:
        if isinstance(v, float | int) and not (0.0 < float(v) < 1.0):
            raise ValueError("a validation fraction must lie strictly between 0 and 1, e.g. 0.2")
        return v


class SweepSpec(_Strict):
    """Axes of the cartesian product; keys that do not apply to a method are pruned. rank, epochs, learning_rate and
    seed may instead be distributions that a `search:` samples (harness.spec.search)."""

    method: list[Literal["lora", "qlora", "full", "openai", "given", "prompt"]] = Field(default_factory=lambda: ["lora"])  # type: ignore[arg-type]
    rank: list[int] | Distribution = Field(default_factory=lambda: [8])
    epochs: list[int] | Distribution = Field(default_factory=lambda: [1])
    learning_rate: list[float] | Distribution = Field(default_factory=lambda: [2.0e-4])
    seed: list[int] | Distribution = Field(default_factory=lambda: [0])
    checkpoint: list[str] = Field(default_factory=list)
    shots: list[int] = Field(default_factory=lambda: [0])  # method prompt: few-shot examples from the training split

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: list[int]) -> list[int]:
        if not v or any(x < 0 for x in v):
            raise ValueError("needs at least one value, each a whole number >= 0 (e.g. [0, 3, 8])")
        return v

    @field_validator("rank", "epochs")
    @classmethod
    def _positive(cls, v: list[int] | Distribution) -> list[int] | Distribution:
        values = v.bounds if isinstance(v, Distribution) else v
        if not values or any(x <= 0 for x in values):
            raise ValueError("needs at least one value, each a positive integer")
        if isinstance(v, Distribution) and (v.kind not in ("int", "choice") or any(x != int(x) for x in values)):
            raise ValueError("a whole-number key takes {int: [low, high]} or {choice: [whole numbers]}")
        return v

    @field_validator("learning_rate")
    @classmethod
    def _lr(cls, v: list[float] | Distribution) -> list[float] | Distribution:
        values = v.bounds if isinstance(v, Distribution) else v
        if not values or any(x <= 0 for x in values):
            raise ValueError("needs at least one value, each > 0 (e.g. 2.0e-4)")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: list[int] | Distribution) -> list[int] | Distribution:
        if isinstance(v, Distribution) and (v.kind not in ("int", "choice") or any(x != int(x) for x in v.bounds)):
            raise ValueError("a seed takes {int: [low, high]} or {choice: [whole numbers]}")
        if not isinstance(v, Distribution) and not v:
            raise ValueError("needs at least one value")
        return v

    @field_validator("method")
    @classmethod
    def _nonempty(cls, v: list[_T]) -> list[_T]:
        if not v:
            raise ValueError("needs at least one value")
        return v

    def values(self, key: str) -> list[int] | list[float]:
        """A grid axis's values; a distribution has none until a search samples it (harness.search)."""
        v = getattr(self, key)
        if isinstance(v, Distribution):
            raise ValueError(f"sweep.{key} is a distribution; only a search (harness.search) samples it")
        return list(v)


class OpenAITrainSpec(_Strict):
    """Hyperparameters passed to OpenAI fine-tuning jobs (None: the API's own default)."""

    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    suffix: str | None = None
    poll_seconds: float = 10.0
    price_per_million_tokens: float | None = None


class EarlyStoppingSpec(_Strict):
    """Stop when validation loss has not improved by more than `min_delta` for `patience` evaluations."""

    patience: int = Field(default=2, ge=1)  # evaluations without improvement before stopping
    min_delta: float = Field(default=0.0, ge=0.0)  # the smallest fall in validation loss that counts


class DistributedSpec(_Strict):
    """One local variant on several processes (docs/distributed.md): N ranks launched by torchrun, one per GPU (gloo
    processes on a CPU), Trainer doing the distributed work. Not part of the variant id: the global batch is the same."""

    processes: int = Field(default=1, ge=1)  # ranks; on a GPU machine at most the visible GPUs
    strategy: Literal["ddp", "fsdp"] = "ddp"  # ddp: a replica per rank; fsdp: parameters, grads, optimizer sharded
    timeout: int = Field(default=1800, ge=10)  # seconds a collective may wait on a rank before the group is ended
    device_map: Literal["auto"] | None = None  # auto: score with the model's layers spread over the visible GPUs


class TrainSpec(_Strict):
    """Fixed settings shared by every variant."""

    max_seq_length: int = 256
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_steps: int | None = None
    eval_every_epochs: float = 1.0
    eval_batch_size: int | Literal["auto"] = "auto"  # auto: 64 on a GPU, 32 on the CPU; halves on out-of-memory
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 (or fp16) on a GPU, fp32 on the CPU
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower steps
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    group_by_length: bool = False  # batches of similar lengths: less padding
    packing: bool = False  # padding-free: each batch one row, sequences kept apart by position ids
    # checkpoints: one at every validation pass and epoch boundary, under the variant's folder (docs/checkpoints.md)
    select: Literal["last", "best"] = "last"  # best: score the checkpoint with the lowest validation loss
    early_stopping: EarlyStoppingSpec | None = None
    epochs_from_one_run: bool = False  # sweep.epochs from one training of the largest count, one variant each
    keep_checkpoints: Literal["all", "scored"] = "scored"  # scored: delete the others once training is done
    openai: OpenAITrainSpec = Field(default_factory=OpenAITrainSpec)
    distributed: DistributedSpec | None = None  # absent: one process, as before

    @field_validator("max_seq_length", "batch_size", "gradient_accumulation_steps", "lora_alpha")
    @classmethod
    def _pos(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive integer")
        return v

    @model_validator(mode="after")
    def _split_batch(self) -> TrainSpec:
        n = self.distributed.processes if self.distributed else 1
        if self.batch_size % n:
            raise ValueError(f"train.batch_size {self.batch_size} cannot be split over train.distributed.processes {n}: each "
                             "process takes batch_size / processes examples per step (the global batch stays "
                             f"batch_size x gradient_accumulation_steps); make batch_size a multiple of {n}")
        return self

    @property
    def per_device_batch(self) -> int:
        """Examples per process per forward pass: the global batch split over the processes."""
        return self.batch_size // (self.distributed.processes if self.distributed else 1)


class AzureSpec(_Strict):
    """Azure OpenAI: the resource's endpoint and API version (else AZURE_OPENAI_ENDPOINT / OPENAI_API_VERSION) and the
    deployments that serve models for scoring (variant name or id -> deployment name; `base` for the base model).
    The key comes from AZURE_OPENAI_API_KEY only. The harness never creates a deployment (they bill by the hour)."""

    endpoint: str | None = None
    api_version: str | None = None
    deployments: dict[str, str] = Field(default_factory=dict)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        url = urlsplit(v)
        host = (url.hostname or "").lower()
        if url.scheme != "https" or not host.endswith(AZURE_HOSTS) or url.path.strip("/") or url.query:
            raise ValueError(
                f"{v!r} is not an Azure OpenAI resource endpoint: use https://RESOURCE.openai.azure.com (or a "
                f"{', '.join('*' + h for h in AZURE_HOSTS)} host) with no path. The Azure key is sent there, so a spec "
                "names only Azure hosts; a gateway or private endpoint goes in the AZURE_OPENAI_ENDPOINT environment "
                "variable instead")
        return v

    @field_validator("api_version", mode="before")
    @classmethod
    def _unquoted(cls, v: object) -> object:
        return v.isoformat() if isinstance(v, date) else v  # YAML reads an unquoted 2024-10-21 as a date

    @field_validator("api_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None and not _API_VERSION.match(v):
            raise ValueError(f"{v!r} is not an Azure OpenAI API version; use a dated one such as 2024-10-21 or "
                             "2025-04-01-preview")
        return v

    @field_validator("deployments")
    @classmethod
    def _deployments(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [f"{k}: {d!r}" for k, d in v.items() if not isinstance(d, str) or not _DEPLOYMENT.match(d)]
        if bad:
            raise ValueError(f"deployment names are 1-64 letters, digits, '.', '-' or '_' ({'; '.join(bad)})")
        return v


class PromptSpec(_Strict):
    """`method: prompt`: the base model, untrained, given this system prompt (inline or from a file next to the spec)
    and `sweep.shots` example conversations from the training split before each request."""

    system: str | None = None
    system_file: str | None = None


class ResourcesSpec(_Strict):
    """What `--executor ray` asks Ray for, per local variant (docs/ray.md); never part of a variant's id."""

    # None: 1 GPU where the cluster has GPUs, else 0 (the behaviour before this key); 0 pins variants to CPUs
    gpus_per_variant: float | None = None
    cpus_per_variant: float = 1.0
    # custom resources a node was started with (`ray start --resources='{"big_disk": 1}'`): pins variants to those nodes
    resources: dict[str, float] = Field(default_factory=dict)
    # a variant still running after this many minutes is cancelled and stored as failed (None: no limit)
    timeout_minutes: float | None = None

    @field_validator("gpus_per_variant", "cpus_per_variant", "timeout_minutes")
    @classmethod
    def _nonnegative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("must be >= 0 (e.g. 1 or 0.5)")
        return v

    @field_validator("resources")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        reserved = sorted({"CPU", "GPU", "memory", "object_store_memory"} & set(v))
        if reserved:
            raise ValueError(f"{', '.join(reserved)} are set by gpus_per_variant / cpus_per_variant, not here")
        bad = [f"{k}: {x}" for k, x in v.items() if x <= 0]
        if bad:
            raise ValueError(f"each custom resource amount must be > 0 ({'; '.join(bad)})")
        return v
