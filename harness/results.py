"""What running one variant produces, typed: its `variants` row, its train_log points, one result per suite and findings.

Each stage returns its own piece (training a `TrainingOutcome`, loading a `Placed`, prompting a `PromptRecord`, the
remote backend a `RemoteOutcome`, scoring a `PerRequest`); the executor gathers them in `RunParts` and `finish_row`
combines them once with the row the plan fixed (`planned_row`); only the sweep's runner hands results to the store.
Plain dataclasses (and the pydantic TrainSpec), so a result crosses a process (Ray) boundary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from harness.scores import Finding, JSONDict, SuiteResult
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec

FINISHED, FAILED = "finished", "failed"
INCOMPLETE = "incomplete"  # some suites failed; the others are stored, and a rerun scores only the failed ones


@dataclass(frozen=True)
class LogPoint:
    """One logged loss: a `train_log` row without its variant id."""

    step: int  # optimizer step (0: before the first step)
    epoch: float | None  # the (fractional) epoch at that step; None where an API reports no epochs
    split: str  # 'train' or 'validation'
    loss: float  # mean cross-entropy per token (nats)


@dataclass(frozen=True)
class Worker:
    """config.worker: the process that ran a variant (Ray tasks run in other processes, or on other hosts)."""

    pid: int
    host: str
    attempt: int = 1  # 2 where Ray ran it again after the worker running it died (docs/ray.md)


@dataclass(frozen=True)
class RanOn:
    """How a local variant ran: the columns processes, strategy, devices and node."""

    processes: int  # training processes (1 for a variant trained in one process, or not trained)
    strategy: str | None  # ddp | fsdp where it trained on several processes
    devices: str | None  # every device it trained or was scored on, e.g. cpu, cuda:0 or cuda:0,cuda:1
    node: str  # the host it ran on


@dataclass(frozen=True)
class DevicePolicy:
    """config.placement's policy keys: the device, compute dtype, mixed-precision flags and attention kernel."""

    device: str  # cuda | mps | cpu
    dtype: str  # fp32 | bf16 | fp16
    bf16: bool  # TrainingArguments(bf16=...)
    fp16: bool  # TrainingArguments(fp16=...)
    attn_implementation: str | None = None  # the kernel the model was loaded with (None: transformers' default)


@dataclass(frozen=True)
class Placed:
    """Where the model a variant is scored with was loaded: the `device`/`dtype` columns and the policy behind them."""

    device: str  # column device: the device type the loaded model computes on
    dtype: str  # column dtype: what it computes in (fp32 | bf16 | fp16 | nf4+<compute dtype>)
    policy: DevicePolicy  # config.placement


@dataclass(frozen=True)
class MemorySettings:
    """Training's memory and speed settings (train.*), recorded under config.placement."""

    gradient_checkpointing: bool
    packing: bool
    group_by_length: bool


@dataclass(frozen=True)
class TrainingTimes:
    """config.training: where a training's time went, and from where it resumed."""

    step_seconds: float  # training steps alone (validation passes timed apart)
    validation_seconds: float
    validation_passes: int
    processed_tokens: int  # tokens the model processed, padding included
    step_cpu_seconds: float
    steps: int
    steps_per_epoch: int
    resumed_from: str | None  # the checkpoint folder a killed run resumed from


@dataclass(frozen=True)
class TrainStats:
    """What one local training measured (a group's one training is shared by its variants, through trained.json)."""

    train_seconds: float | None  # wall seconds of Trainer.train (None on the variants of a group that did not run it)
    train_tokens: int | None  # real (non-padding) tokens trained on
    tokens_per_second: float | None  # train_tokens over the training steps' seconds
    trainable_params: int
    total_params: int
    peak_memory_mb: float
    real_token_share: float | None  # real tokens over processed tokens
    artifact: str  # the saved adapter or model folder
    artifact_bytes: int
    placement: DevicePolicy  # the policy it trained under, with the loaded model's attention kernel
    memory: MemorySettings
    timing: TrainingTimes
    processes: int = 1  # ranks it trained on (train.distributed.processes)
    strategy: str | None = None  # ddp | fsdp on several processes; None on one
    devices: str | None = None  # the devices the ranks trained on, e.g. cpu or cuda:0,cuda:1


@dataclass(frozen=True)
class Scored:
    """config.scored: the checkpoint one target is scored at, its step and epoch, and why it was chosen."""

    target: int  # the epoch count this stands for
    step: int
    epoch: float
    why: str
    path: str | None = None  # the exported weights; None where the model in memory is the one scored
    validation_loss: float | None = None


@dataclass(frozen=True)
class Stop:
    """config.stopped: where and why early stopping ended a training."""

    step: int
    epoch: float
    of_steps: int  # the steps the run was scheduled for
    reason: str


@dataclass(frozen=True)
class SharedTraining:
    """config.one_run: the one training an `epochs_from_one_run` group shares."""

    group: str | None
    epochs: list[int]  # the epoch counts scored from it
    trained_by: str  # the variant id whose run trained it
    trained_here: bool  # whether this variant's run did the training (its cost is recorded there only)
    folder: str
    schedule: str  # what its learning-rate schedule means for this variant


@dataclass(frozen=True)
class TrainingOutcome:
    """What local training returns for one variant: its measured stats and the checkpoint it is scored at."""

    stats: TrainStats
    scored: Scored
    stopped: Stop | None = None
    shared: SharedTraining | None = None
    peft: JSONDict | None = None  # config.peft: the LoraConfig trained with, as peft writes adapter_config.json
    quantization: JSONDict | None = None  # config.quantization: the BitsAndBytesConfig a qlora base was loaded with


@dataclass(frozen=True)
class PromptRecord:
    """config.prompt: what a `method: prompt` variant puts before every conversation."""

    system: str | None
    shots: int | None
    seed: int | None
    shot_examples: list[str]  # ids of the training examples shown as shots


@dataclass(frozen=True)
class PerRequest:
    """What generation cost per request (the three `*_per_request` columns; None where nothing was generated)."""

    prompt_tokens_per_request: float | None = None
    output_tokens_per_request: float | None = None
    seconds_per_request: float | None = None


@dataclass(frozen=True)
class RemoteRecord:
    """config.openai: the managed job or API model a remote variant ran on (keys that do not apply are left out)."""

    provider: str | None = None  # openai | azure-openai | openai-compatible
    job_id: str | None = None
    model: str | None = None  # a scored model id (base / given)
    endpoint: str | None = None
    hyperparameters: JSONDict | None = None
    training_file: str | None = None
    validation_file: str | None = None  # kept (as null) on a trained job without validation data
    estimate: JSONDict | None = None  # the cost estimate made before the job
    events: int | None = None  # how many job events were seen
    checkpoints: list[JSONDict] | None = None
    deployment: str | None = None  # what chat completions went to, where not the model id itself
    error: JSONDict | None = None  # a failed job's {code, message, param}
    refusal: JSONDict | None = None  # a refused job creation: its kind and the dates that applied

    def to_json(self) -> JSONDict:
        out: JSONDict = {k: v for k, v in asdict(self).items() if v is not None}
        if self.training_file is not None:
            out["validation_file"] = self.validation_file
        return out


@dataclass(frozen=True)
class RemoteOutcome:
    """What the remote backend returns for one variant: the model it scored and, for a job, what training cost."""

    record: RemoteRecord
    artifact: str | None = None  # the fine-tuned model id, or the scored model id
    train_seconds: float | None = None  # the job's wall time
    train_tokens: int | None = None  # trained tokens the provider reports
    tokens_per_second: float | None = None


@dataclass(frozen=True)
class RunParts:
    """What the stages of one variant returned, each its own piece (None where that stage did not run)."""

    worker: Worker | None = None
    training: TrainingOutcome | None = None  # local training
    given: str | None = None  # a local `given` checkpoint's folder
    remote: RemoteOutcome | None = None  # a managed job or an API-scored model
    placed: Placed | None = None  # where the scored model was loaded
    prompt: PromptRecord | None = None  # a prompt variant's prompt
    usage: PerRequest | None = None
    score_seconds: float | None = None
    traceback: str | None = None  # config.traceback of a local failure
    ran_on: RanOn | None = None  # how a local variant ran (processes, strategy, devices, node)


@dataclass(frozen=True)
class VariantConfig:
    """The `config` JSON column, built from the plan and the typed parts (`to_json` gives the stored keys)."""

    variant: Variant  # the plan's variant: every field of it is a top-level key
    train: TrainSpec | None  # config.train: the spec's train settings (None for base)
    parts: RunParts = RunParts()

    def to_json(self) -> JSONDict:
        p = self.parts
        out: JSONDict = {**asdict(self.variant), "train": self.train.model_dump(mode="json") if self.train else None}
        if p.worker:
            out["worker"] = asdict(p.worker)
        t = p.training
        if t:
            out.update(scored=asdict(t.scored), stopped=asdict(t.stopped) if t.stopped else None)
            if t.shared:
                out["one_run"] = asdict(t.shared)
            if t.peft is not None:
                out["peft"] = t.peft
            if t.quantization is not None:
                out["quantization"] = t.quantization
        placement: JSONDict = asdict(p.placed.policy) if p.placed else {}
        if t:  # training's own placement keys: its attention kernel, memory/speed settings and real-token share
            placement.update(**asdict(t.stats.placement), **asdict(t.stats.memory),
                             real_token_share=t.stats.real_token_share)
        if placement:
            out["placement"] = placement
        if t:
            out["training"] = asdict(t.stats.timing)
        if p.prompt:
            out["prompt"] = asdict(p.prompt)
        if p.remote:
            out["openai"] = p.remote.record.to_json()
        if p.traceback is not None:
            out["traceback"] = p.traceback
        return out


@dataclass(frozen=True)
class VariantRow:
    """One `variant_results` row (the `variants` view), one field per column in the table's order."""

    variant_id: str  # content-addressed id from the plan
    run_id: str | None = None  # the run that produced it (set when it is stored)
    name: str | None = None  # readable name, e.g. lora-r8-e2
    method: str | None = None  # base | lora | qlora | full | openai | given | prompt
    rank: int | None = None  # LoRA rank (lora, qlora)
    epochs: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    base_model: str | None = None  # the base model's identity
    status: str | None = None  # finished | failed | incomplete (some suites failed: `suite_failed` findings) |
    # stopped (a search stopped it early: stop_reason says why)
    train_seconds: float | None = None
    train_tokens: int | None = None
    tokens_per_second: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    peak_memory_mb: float | None = None
    artifact: str | None = None  # adapter/model folder, or the API model id
    error: str | None = None  # why a failed variant failed
    artifact_bytes: int | None = None
    score_seconds: float | None = None  # wall seconds of scoring every suite
    config: VariantConfig | None = None  # JSON: the plan, the train settings and every stage's record
    finished_at: datetime | None = None  # set by the store when not given
    device: str | None = None  # the device type the scored model ran on
    dtype: str | None = None  # the dtype the scored model computed in
    real_token_share: float | None = None  # real tokens over processed tokens in training
    prompt_tokens_per_request: float | None = None
    output_tokens_per_request: float | None = None
    seconds_per_request: float | None = None
    shots: int | None = None  # few-shot examples (method prompt)
    scored_epoch: float | None = None  # the epoch of the checkpoint scored
    scored_step: int | None = None  # its step
    stop_reason: str | None = None  # why training stopped early, if it did
    processes: int | None = None  # training processes of a local variant (1 unless train.distributed)
    strategy: str | None = None  # ddp | fsdp when it trained on several processes
    devices: str | None = None  # the devices it trained and was scored on, e.g. cpu or cuda:0,cuda:1
    node: str | None = None  # where it ran: this host's name, or the Ray node's host, address and id


def planned_row(variant: Variant, base_model: str, train: TrainSpec) -> VariantRow:
    """A variant's row as the plan fixes it, before it has run (no status, no results)."""
    return VariantRow(variant.variant_id, name=variant.name, method=variant.method, rank=variant.rank,
                      epochs=variant.epochs, learning_rate=variant.learning_rate, seed=variant.seed,
                      base_model=base_model, shots=variant.shots,
                      config=VariantConfig(variant, train if variant.method != "base" else None))


def finish_row(planned: VariantRow, parts: RunParts, status: str, error: str | None = None) -> VariantRow:
    """The row once a variant's stages have run: the plan's fields, each part's columns, config from every part."""
    row = replace(planned, status=status, error=error, score_seconds=parts.score_seconds,
                  config=replace(planned.config, parts=parts) if planned.config else None)
    if parts.training:
        s, t = parts.training.stats, parts.training
        row = replace(row, train_seconds=s.train_seconds, train_tokens=s.train_tokens,
                      tokens_per_second=s.tokens_per_second, trainable_params=s.trainable_params,
                      total_params=s.total_params, peak_memory_mb=s.peak_memory_mb, real_token_share=s.real_token_share,
                      artifact=s.artifact, artifact_bytes=s.artifact_bytes, scored_epoch=t.scored.epoch,
                      scored_step=t.scored.step, stop_reason=t.stopped.reason if t.stopped else None)
    if parts.given is not None:
        row = replace(row, artifact=parts.given)
    if parts.remote:
        r = parts.remote
        row = replace(row, artifact=r.artifact, train_seconds=r.train_seconds, train_tokens=r.train_tokens,
                      tokens_per_second=r.tokens_per_second)
    if parts.placed:
        row = replace(row, device=parts.placed.device, dtype=parts.placed.dtype)
    if parts.ran_on:
        ran = parts.ran_on
        row = replace(row, processes=ran.processes, strategy=ran.strategy, devices=ran.devices, node=ran.node)
    if parts.prompt:  # a prompt variant trains nothing
        row = replace(row, trainable_params=0, train_seconds=0.0)
    if parts.usage:
        u = parts.usage
        row = replace(row, prompt_tokens_per_request=u.prompt_tokens_per_request,
                      output_tokens_per_request=u.output_tokens_per_request, seconds_per_request=u.seconds_per_request)
    return row


@dataclass
class VariantResult:
    """Everything one variant produced: the `variants` row, its train_log points, one result per suite (scores,
    scored samples) and the findings its scorers made."""

    variant: VariantRow
    train_log: list[LogPoint] = field(default_factory=list)
    suites: list[SuiteResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    rescored: list[str] | None = None  # the suites this result replaces in a stored incomplete variant; None: all

    @property
    def variant_id(self) -> str:
        return self.variant.variant_id

    @property
    def finished(self) -> bool:
        return self.variant.status == FINISHED

    @property
    def failed_suites(self) -> dict[str, str]:
        """Suite name -> why it failed, for the suites that did not finish."""
        return {s.suite: s.error for s in self.suites if s.error is not None}

    @property
    def n_scores(self) -> int:
        return sum(len(s.scores) for s in self.suites)

    @property
    def n_samples(self) -> int:
        return sum(len(s.samples) for s in self.suites)


def failed_result(planned: VariantRow, error: str, parts: RunParts | None = None, *,
                  train_log: list[LogPoint] | None = None) -> VariantResult:
    """The one way to record a failed variant: the plan's row with status `failed`, the error, and whatever its
    stages returned before the failure (a traceback, the API job, training's figures), keeping any train_log points
    made before the failure."""
    return VariantResult(finish_row(planned, parts or RunParts(), FAILED, error), list(train_log or []))


def scored_result(planned: VariantRow, parts: RunParts, train_log: list[LogPoint], suites: list[SuiteResult],
                  rescored: list[str] | None = None) -> VariantResult:
    """A variant whose suites were scored: finished, or incomplete when a suite failed (its `error` names each failed
    suite and why; the finished suites' rows are kept). `rescored`: the suites a rerun scored (harness.sweep)."""
    failed = {s.suite: s.error for s in suites if s.error is not None}
    error = "; ".join(f"suite {name} failed: {why}" for name, why in failed.items()) or None
    return VariantResult(finish_row(planned, parts, INCOMPLETE if failed else FINISHED, error), list(train_log),
                         suites, rescored=rescored)
