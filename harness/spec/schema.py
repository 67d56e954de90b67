"""The experiment spec: YAML -> a validated `ExperimentSpec`, every problem reported with its key and line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessInputError
from harness.spec.gate import GateRules, parse_rules
from harness.spec.problems import validation_problems
from harness.spec.review import ReviewSpec, parse_review, rating_rule_problems
from harness.spec.search import SearchSpec, search_problems
from harness.spec.sections import (
    AZURE_HOSTS,
    AzureSpec,
    DataSpec,
    EarlyStoppingSpec,
    OpenAITrainSpec,
    PromptSpec,
    ResourcesSpec,
    SweepSpec,
    TrainSpec,
)
from harness.spec.tracking import TrackingSpec
from harness.spec.yaml_lines import At, line_of
from harness.spec.yaml_lines import parse as parse_yaml
from harness.textfiles import read_text

__all__ = ["API_PREFIXES", "AZURE_HOSTS", "MANAGED_PREFIXES", "METHODS", "RANKED_METHODS", "TRAINING_METHODS",
           "AzureSpec", "DataSpec", "EarlyStoppingSpec", "ExperimentSpec", "OpenAITrainSpec", "PromptSpec", "ResourcesSpec", "SweepSpec",
           "TrainSpec", "load_spec", "resolve_inside"]

METHODS = ("lora", "qlora", "full", "openai", "given", "prompt")
RANKED_METHODS = ("lora", "qlora")
TRAINING_METHODS = ("lora", "qlora", "full", "openai")
# Model prefixes served by a managed fine-tuning provider (`method: openai` trains through the spec model's provider;
# one backend module per provider in harness/managed/providers/), and every prefix scored through a chat API.
MANAGED_PREFIXES = {"openai:": "OpenAI", "azure-openai:": "Azure OpenAI"}
API_PREFIXES = (*MANAGED_PREFIXES, "openai-compatible:")
# Blocks load_spec validates with their own parsers after the rest of the spec (so their messages name their keys
# the way `harness gate --spec` and the stored spec's readers name them): harness.spec.gate, harness.spec.review.
_OWN_PARSERS = ("gate", "review")


class ExperimentSpec(BaseModel):
    """A whole experiment: model, data, sweep, train settings, suites and gate rules."""

    model_config = ConfigDict(extra="forbid")

    name: str
    model: str = "smollm2-135m-instruct"
    base_url: str | None = None
    azure: AzureSpec = Field(default_factory=AzureSpec)
    data: DataSpec
    sweep: SweepSpec = Field(default_factory=SweepSpec)
    search: SearchSpec | None = None  # sample the sweep's space and stop variants early (harness.spec.search)
    train: TrainSpec = Field(default_factory=TrainSpec)
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    # a suite by name or path, or {name | path, options}: options are the suite kind's, checked against its scorer
    suites: list[str | dict[str, object]] = Field(default_factory=lambda: ["heldout"])  # type: ignore[arg-type]
    # the verdicts' thresholds, as written: which checks exist depends on the suites' declared metrics (a user's
    # scorer adds its own), so harness.spec.findings.settings checks it once the suites are known
    findings: dict[str, object] = Field(default_factory=dict)
    gate: GateRules = Field(default_factory=GateRules)  # rules for `harness gate` (harness.spec.gate)
    review: ReviewSpec = Field(default_factory=ReviewSpec)  # the human rating sheet's rubric (harness.spec.review)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)  # MLflow / W&B (harness.spec.tracking)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)  # what each variant asks Ray for (docs/ray.md)
    # where variants' weights go that every Ray node can reach: an absolute shared path, or an fsspec URL (s3://...)
    storage: str | None = None
    description: str | None = None

    # set by load_spec, not by the user: a spec that writes these keys gets "unknown key" (no input reaches them)
    source_path: str | None = Field(default=None, exclude=True, validation_alias="(set by load_spec) source_path")
    source_text: str | None = Field(default=None, exclude=True, validation_alias="(set by load_spec) source_text")

    @field_validator("findings", mode="before")
    @classmethod
    def _findings(cls, v: object) -> object:
        return {} if v is None else v  # `findings:` with every line under it commented out: the defaults

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None) -> str | None:
        if v is None or "://" in v:
            return v
        if not Path(v).expanduser().is_absolute():
            raise ValueError(f"{v!r}: a location every Ray node reaches by the same name: an absolute path on a "
                             "shared file system (e.g. /mnt/shared/harness), or an fsspec URL (s3://bucket/harness)")
        return str(Path(v).expanduser())

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
    own = {key: raw.pop(key) for key in _OWN_PARSERS if key in raw}
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise HarnessInputError(validation_problems(exc, ExperimentSpec, root, path),
                                title=f"spec {path} is invalid") from None
    spec.source_path = str(path)
    spec.source_text = text

    def at(*loc: str | int) -> str:
        return f"{path}:{line_of(root, loc)}"

    problems = _semantic_problems(spec, at) + _own_blocks(spec, own, at)
    if problems:
        raise HarnessInputError(problems, title=f"spec {path} is invalid")
    return spec


def _own_blocks(spec: ExperimentSpec, own: dict[str, object], at: At) -> list[str]:
    """The `gate:` and `review:` blocks through their parsers, set on the spec; then the gate's rules on ratings
    against the rubric."""
    problems: list[str] = []
    rules_ok = review_ok = True
    if "gate" in own:  # checked now, not after the sweep
        try:
            spec.gate = parse_rules(own["gate"], at("gate"))
        except HarnessInputError as exc:
            problems += exc.problems
            rules_ok = False
    if "review" in own:
        try:
            spec.review = parse_review(own["review"], at("review"))
        except HarnessInputError as exc:
            problems += exc.problems
            review_ok = False
    if rules_ok and review_ok:
        problems += rating_rule_problems(spec.gate.ratings.criteria(), spec.review, at("gate", "ratings"))
    return problems


def _prompt_problems(spec: ExperimentSpec, at: At) -> list[str]:
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


def _checkpoint_problems(spec: ExperimentSpec, at: At) -> list[str]:
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


def _azure_problems(spec: ExperimentSpec, at: At) -> list[str]:
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


def _semantic_problems(spec: ExperimentSpec, at: At) -> list[str]:
    """What no single key shows: methods against the data, the model and the sweep's other keys."""
    problems: list[str] = []
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
    problems += search_problems(spec.sweep, spec.search, spec.train, at)
    for i, s in enumerate(spec.suites):
        if isinstance(s, dict) and "name" not in s and "path" not in s:
            problems.append(f"{at('suites', i)}: key 'suites[{i}]': a suite entry needs 'name' (or 'path')")
    return problems
