"""The experiment spec: YAML -> a validated `ExperimentSpec`, every problem reported with its key and line."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from harness.errors import HarnessInputError
from harness.spec.formats import column_problems
from harness.spec.problems import validation_problems
from harness.spec.tracking import TrackingSpec
from harness.spec.yaml_lines import line_of
from harness.spec.yaml_lines import parse as parse_yaml
from harness.textfiles import read_text

METHODS = ("lora", "qlora", "full", "openai", "given", "prompt")
RANKED_METHODS = ("lora", "qlora")
TRAINING_METHODS = ("lora", "qlora", "full", "openai")
# Model prefixes served by a managed fine-tuning provider (`method: openai` trains through the spec model's provider;
# one backend module per provider in harness/managed/providers/), and every prefix scored through a chat API.
MANAGED_PREFIXES = {"openai:": "OpenAI", "azure-openai:": "Azure OpenAI"}
API_PREFIXES = (*MANAGED_PREFIXES, "openai-compatible:")
AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|preview|v1)$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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
    def _columns(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
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
    """Axes of the cartesian product; keys that do not apply to a method are pruned."""

    method: list[Literal["lora", "qlora", "full", "openai", "given", "prompt"]] = Field(default_factory=lambda: ["lora"])  # type: ignore[arg-type]
    rank: list[int] = Field(default_factory=lambda: [8])
    epochs: list[int] = Field(default_factory=lambda: [1])
    learning_rate: list[float] = Field(default_factory=lambda: [2.0e-4])
    seed: list[int] = Field(default_factory=lambda: [0])
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
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(x <= 0 for x in v):
            raise ValueError("needs at least one value, each a positive integer")
        return v

    @field_validator("learning_rate")
    @classmethod
    def _lr(cls, v: list[float]) -> list[float]:
        if not v or any(x <= 0 for x in v):
            raise ValueError("needs at least one value, each > 0 (e.g. 2.0e-4)")
        return v

    @field_validator("method", "seed")
    @classmethod
    def _nonempty(cls, v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError("needs at least one value")
        return v


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

    @field_validator("max_seq_length", "batch_size", "gradient_accumulation_steps", "lora_alpha")
    @classmethod
    def _pos(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a positive integer")
        return v


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
    def _unquoted(cls, v: Any) -> Any:
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


class ExperimentSpec(_Strict):
    """A whole experiment: model, data, sweep, train settings, suites and gate rules."""

    name: str
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    azure: AzureSpec = Field(default_factory=AzureSpec)
    data: DataSpec
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    suites: list[str | dict[str, Any]] = Field(default_factory=lambda: ["heldout"])  # type: ignore[arg-type]
    findings: dict[str, Any] = Field(default_factory=dict)
    gate: dict[str, Any] = Field(default_factory=dict)
    review: dict[str, Any] = Field(default_factory=dict)  # the human rating sheet's rubric (harness.spec.review)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)  # MLflow / W&B (harness.spec.tracking)
    description: str | None = None

    # set by load_spec, not by the user: a spec that writes these keys gets "unknown key" (no input reaches them)
    source_path: str | None = Field(default=None, exclude=True, validation_alias="(set by load_spec) source_path")
    source_text: str | None = Field(default=None, exclude=True, validation_alias="(set by load_spec) source_text")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @property
    def spec_dir(self) -> Path:
        return Path(self.source_path).resolve().parent if self.source_path else Path.cwd()

    def resolve_path(self, value: str, key: str) -> Path:
        """A path from the spec, relative to the spec's folder; it may not escape that folder."""
        return resolve_inside(self.spec_dir, value, key=key, source=self.source_path)

    def system_prompt(self) -> str | None:
        """The prompt variants' system prompt: `prompt.system`, or the text of `prompt.system_file`."""
        if self.prompt.system_file is None:
            return self.prompt.system
        path = self.resolve_path(self.prompt.system_file, "prompt.system_file")
        if not path.is_file():
            raise HarnessInputError(f"{self.source_path}: key 'prompt.system_file': no file {path}; write the system "
                                    "prompt there, or give it inline as 'prompt.system: TEXT'")
        try:
            return read_text(path).strip()
        except HarnessInputError as exc:  # not UTF-8
            raise HarnessInputError(f"{self.source_path}: key 'prompt.system_file': {exc.problems[0]}") from None

    def spec_hash(self) -> str:
        text = self.source_text or json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def resolve_inside(root: Path, value: str, *, key: str, source: str | None) -> Path:
    """Resolve `value` under `root`; refuse a path that points outside it."""
    root = root.resolve()
    path = (root / value).resolve()
    if path != root and root not in path.parents:
        where = f"{source}: " if source else ""
        raise HarnessInputError(
            f"{where}key '{key}': path {value!r} points outside the spec's folder {root}. "
            "Keep data and suites next to the spec (or below it) and use a relative path."
        )
    return path


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate a spec file; raise HarnessInputError listing every problem with its line."""
    path = Path(path)
    if not path.is_file():
        raise HarnessInputError(f"{path}: no such spec file. Pass the path to an experiment YAML.")
    text = read_text(path)
    try:
        raw, root = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise HarnessInputError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise HarnessInputError(f"{path}: a spec is a YAML mapping with keys name, model, data, sweep, ...")
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise HarnessInputError(validation_problems(exc, ExperimentSpec, root, path),
                                title=f"spec {path} is invalid") from None
    spec.source_path = str(path)
    spec.source_text = text
    _check_semantics(spec, root, path)
    return spec


def _prompt_problems(spec: ExperimentSpec, at: Any) -> list[str]:
    """`method: prompt` needs something to prompt with; few-shot turns need a training split."""
    p, problems = spec.prompt, []
    if p.system is not None and p.system_file is not None:
        problems.append(f"{at('prompt')}: key 'prompt': give either 'system' or 'system_file', not both")
    if "prompt" not in spec.sweep.method:
        return problems
    if p.system is None and p.system_file is None and not any(spec.sweep.shots):
        problems.append(f"{at('sweep', 'method')}: method 'prompt' with no system prompt and 0 shots is the base "
                        "model itself; add 'prompt: {system: TEXT}' (or system_file) and/or 'sweep.shots: [3]'")
    if any(spec.sweep.shots) and spec.data.train is None:
        problems.append(f"{at('sweep', 'shots')}: key 'sweep.shots': few-shot examples come from the training split; "
                        "set 'data.train'")
    if p.system_file is not None:
        try:
            spec.system_prompt()
        except HarnessInputError as exc:
            problems += [f"{at('prompt', 'system_file')}: {q.split(': ', 1)[-1]}" for q in exc.problems]
    return problems


def _checkpoint_problems(spec: ExperimentSpec, at: Any) -> list[str]:
    """Checkpoint settings act on a local training's checkpoints; a spec with no local training would ignore them."""
    t = spec.train
    written = {"select": ("which checkpoint is scored", t.select == "best"),
               "early_stopping": ("when training stops", t.early_stopping is not None),
               "epochs_from_one_run": ("epoch counts scored from one training", t.epochs_from_one_run),
               "keep_checkpoints": ("which checkpoints stay on disk", t.keep_checkpoints == "all")}
    if any(m in ("lora", "qlora", "full") for m in spec.sweep.method):
        return []
    return [f"{at('train', k)}: key 'train.{k}' ({why}) applies only to local training (sweep.method lora, qlora "
            f"or full); this spec's methods ({', '.join(spec.sweep.method)}) have no local checkpoints, so it would "
            "change nothing. Remove it, or add a local method" for k, (why, on) in written.items() if on]


def _azure_problems(spec: ExperimentSpec, at: Any) -> list[str]:
    """The `azure:` block applies only where something runs on Azure OpenAI."""
    on_azure = spec.model.startswith("azure-openai:") or any(c.startswith("azure-openai:") for c in spec.sweep.checkpoint)
    written = spec.azure.model_dump(exclude_defaults=True)
    problems = []
    if written and not on_azure:
        problems.append(f"{at('azure')}: key 'azure' applies to azure-openai:<model> models and "
                        f"azure-openai:<deployment> checkpoints; this spec has neither (model {spec.model!r}). Remove "
                        "it or use such a model")
    compatible = any(c.startswith("openai-compatible:") for c in spec.sweep.checkpoint)
    if spec.base_url and spec.model.startswith("azure-openai:") and not compatible:
        problems.append(f"{at('base_url')}: key 'base_url' applies to openai-compatible:<name> models only; an Azure "
                        "OpenAI resource goes in 'azure.endpoint' (or AZURE_OPENAI_ENDPOINT)")
    return problems


def _check_semantics(spec: ExperimentSpec, root: yaml.Node, path: Path) -> None:
    problems: list[str] = []

    def at(*loc: Any) -> str:
        return f"{path}:{line_of(root, loc)}"

    local = [m for m in spec.sweep.method if m not in ("openai", "given", "prompt")]
    managed = spec.model.startswith(tuple(MANAGED_PREFIXES))
    if local and spec.data.train is None:
        problems.append(f"{at('data')}: key 'data.train' is required for methods {local}")
    problems += _prompt_problems(spec, at)
    problems += _checkpoint_problems(spec, at)
    if "given" in spec.sweep.method and not spec.sweep.checkpoint:
        problems.append(
            f"{at('sweep', 'method')}: method 'given' needs 'sweep.checkpoint: [PATH or openai:MODEL_ID, ...]'"
        )
    if "openai" in spec.sweep.method and not managed:
        problems.append(f"{at('model')}: method 'openai' (managed fine-tuning) needs a provider's model: "
                        f"{' or '.join(p + '<base model>' for p in MANAGED_PREFIXES)}; got {spec.model!r}")
    if managed and set(local):
        problems.append(f"{at('sweep', 'method')}: methods {local} train locally and cannot use model {spec.model!r}")
    problems += _azure_problems(spec, at)
    for i, s in enumerate(spec.suites):
        if isinstance(s, dict) and "name" not in s and "path" not in s:
            problems.append(f"{at('suites', i)}: key 'suites[{i}]': a suite entry needs 'name' (or 'path')")
    rules = review = None
    if spec.gate:  # check the gate rules now, not after the sweep
        from harness.spec.gate import parse_rules

        try:
            rules = parse_rules(spec.gate, at("gate"))
        except HarnessInputError as exc:
            problems += exc.problems
    from harness.spec.review import parse_review, rating_rule_problems

    try:  # the rating rubric, and the gate's rules on ratings against it
        review = parse_review(spec.review, at("review"))
    except HarnessInputError as exc:
        problems += exc.problems
    if rules is not None and review is not None:
        problems += rating_rule_problems(rules.ratings.criteria(), review, at("gate", "ratings"))
    if problems:
        raise HarnessInputError(problems, title=f"spec {path} is invalid")
