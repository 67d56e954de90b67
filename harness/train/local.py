"""Local training backend: load -> wrap (LoRA / QLoRA / full) -> train with transformers' Trainer -> save safetensors.

Loss is on the final assistant message only. Train loss is logged every step and validation loss at least
once per epoch; both come back as `train_log` rows.

Checkpoints (Trainer's, safetensors weights) are saved at every validation pass and every epoch boundary under
`<out_dir>/trainer/`. A run killed part way resumes from its last checkpoint (optimizer, schedule, RNG and data
order restored by Trainer). After training, each scored target (the variant's own epoch count, or every epoch count
of an `epochs_from_one_run` group) gets the checkpoint the spec selects (`train.select`: the last one, or the one
with the lowest validation loss), its weights exported to `<out_dir>/scored/epoch-E/`, E the epoch of that
checkpoint; the training checkpoints are then deleted unless `train.keep_checkpoints: all`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import torch
from transformers import (
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging as hf_logging

from harness.models.device import Placement, detect_placement
from harness.models.resolve import ModelRef, load_model, load_tokenizer
from harness.results import LogPoint, MemorySettings, SharedTraining, TrainingOutcome, TrainingTimes, TrainStats
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.train.checkpoints import (
    EpochBoundaries,
    PauseAtEpoch,
    Paused,
    Scored,
    TrainRecord,
    group_lock,
    log_rows,
    select_checkpoints,
    stop_reason,
)
from harness.train.collate import TokenCounter, make_collator, tokenize_chat
from harness.train.measure import PeakMemory, time_evaluations
from harness.train.peft_config import as_json, lora_config, quantization_config

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel
    from transformers.data.data_collator import DataCollator

TrainedModel: TypeAlias = "PreTrainedModel | PeftModel"  # a transformers model, or one wrapped with LoRA adapters

__all__ = ["Scored", "TrainOutput", "load_checkpoint", "load_given", "tokenize_chat", "train_variant"]

@dataclass
class TrainOutput:
    """What training produced: the model and tokenizer in memory, and the training's record."""

    model: TrainedModel  # its methods differ by method (merge_and_unload, save_pretrained)
    tokenizer: PreTrainedTokenizerBase
    record: TrainRecord


class _LogCallback(TrainerCallback):
    """Reports each logged train loss as progress (the train_log comes from Trainer's history, which a resume keeps)."""

    def __init__(self, on_step: Callable[[int, int, float | None], None] | None):
        self.on_step = on_step

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kw: object) -> None:
        if logs and "loss" in logs and self.on_step:
            self.on_step(state.global_step, state.max_steps, float(logs["loss"]))


def _keep_4bit_trainable(model: torch.nn.Module) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference during an evaluation pass.

    bitsandbytes 0.50 packs a Linear4bit's weights into a CPU inference layout the first time it runs in
    eval mode without gradients, and that layout has no backward: every training step after the first
    validation pass then gets zero gradients. Keeping the training layout costs nothing on a GPU.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _wrap(model: PreTrainedModel, method: str, lora: LoraConfig | None, train: TrainSpec) -> TrainedModel:
    """The model as it trains: itself (full), or with LoRA adapters from `lora` (on a 4-bit base for qlora)."""
    if lora is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=train.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        _keep_4bit_trainable(model)
    return get_peft_model(model, lora)


def _arguments(variant: Variant, train: TrainSpec, placement: Placement, out_dir: Path, steps_per_epoch: int,
               has_validation: bool, keep_all: bool) -> TrainingArguments:
    """TrainingArguments from the variant, the spec's train settings and the device policy."""
    from harness.models.local import AUTO_BATCH

    seed = int(variant.seed or 0)
    eval_batch = AUTO_BATCH[placement.device] if train.eval_batch_size == "auto" else train.eval_batch_size
    return TrainingArguments(
        output_dir=str(out_dir / "trainer"), num_train_epochs=float(variant.epochs or 1),
        max_steps=train.max_steps or -1, per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=eval_batch, gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=float(variant.learning_rate or 0.0), lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=math.ceil(train.warmup_ratio * steps_per_epoch * float(variant.epochs or 1)),
        weight_decay=train.weight_decay, logging_steps=1,
        eval_strategy="steps" if has_validation else "no",
        eval_steps=max(1, round(steps_per_epoch * train.eval_every_epochs)), report_to=[],
        # a checkpoint at every validation pass (and epoch boundary: _EpochBoundaries), so a killed run resumes and
        # `select: best` has every evaluated point to pick from; Trainer tracks the best by validation loss and keeps
        # it when it rotates old checkpoints out
        save_strategy="steps" if has_validation else "epoch",
        save_steps=max(1, round(steps_per_epoch * train.eval_every_epochs)),
        save_total_limit=None if keep_all else 1, save_only_model=False,
        metric_for_best_model="eval_loss" if has_validation else None, greater_is_better=False,
        seed=seed, data_seed=seed, **placement.training_args(),
        gradient_checkpointing=train.gradient_checkpointing and variant.method != "qlora",  # qlora: peft sets it
        gradient_checkpointing_kwargs={"use_reentrant": False},
        train_sampling_strategy="group_by_length" if train.group_by_length else "random",
        disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0,
    )


def train_variant(ref: ModelRef, variant: Variant, train: TrainSpec, train_examples: list[list[dict[str, str]]],
                  val_examples: list[list[dict[str, str]]], out_dir: Path,
                  on_step: Callable[[int, int, float | None], None] | None = None,
                  placement: Placement | None = None, targets: tuple[int, ...] | None = None,
                  pause_at: int | None = None) -> TrainOutput:
    """Train one local variant (for `variant.epochs`) under out_dir, resuming from a checkpoint a killed run left.

    targets: the epoch counts to score from this one training (`epochs_from_one_run`; default the variant's own);
    each gets its checkpoint (train.select) in the record's `scored`. The final model is saved as safetensors in
    out_dir/model and returned in memory, for the target it is the selected checkpoint of. pause_at: stop at the end
    of that epoch and raise `Paused`, the checkpoints kept for the call that resumes it (a search's rung).
    """
    method, seed = variant.method, int(variant.seed or 0)
    placement = placement or detect_placement(train.dtype)
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(ref)
    if method == "qlora":
        _check_4bit()
    lora, quant = lora_config(variant, train), quantization_config(placement) if method == "qlora" else None
    loaded = load_model(ref, quantization=quant, placement=placement, method=method,
                        attn_implementation=train.attn_implementation)
    loaded.config.use_cache = False
    attn = getattr(loaded.config, "_attn_implementation", None)
    model = _wrap(loaded, method, lora, train)
    train_ds = [tokenize_chat(tokenizer, m, train.max_seq_length) for m in train_examples]
    val_ds = [tokenize_chat(tokenizer, m, train.max_seq_length) for m in val_examples]
    steps_per_epoch = math.ceil(len(train_ds) / (train.batch_size * train.gradient_accumulation_steps))
    targets = tuple(sorted(set(targets or (int(variant.epochs or 1),))))
    keep_all = train.keep_checkpoints == "all" or len(targets) > 1 or (train.select == "best" and not val_ds)
    callback = _LogCallback(on_step)
    args = _arguments(variant, train, placement, out_dir, steps_per_epoch, bool(val_ds), keep_all)
    collator = make_collator(tokenizer.pad_token_id, packing=train.packing, attn_implementation=attn)
    trainer = _trainer(model, train_ds, val_ds, args, collator, callback)
    trainer.add_callback(EpochBoundaries(bool(val_ds)))
    stopper = None
    if train.early_stopping is not None and val_ds:
        stopper = EarlyStoppingCallback(train.early_stopping.patience, train.early_stopping.min_delta)
        trainer.add_callback(stopper)
    if pause_at is not None:
        trainer.add_callback(PauseAtEpoch(pause_at))
    folder = Path(str(args.output_dir))
    resume = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    start = folder / "start.json"  # the validation loss before the first step (not in Trainer's history)
    if val_ds and (resume is None or not start.is_file()):
        before = trainer.evaluate()
        folder.mkdir(parents=True, exist_ok=True)
        start.write_text(json.dumps(asdict(LogPoint(0, 0.0, "validation", before["eval_loss"]))))
    hooked = trainer.model
    assert hooked is not None  # Trainer holds the model it was given
    counter, evals = TokenCounter(hooked), time_evaluations(trainer)
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train(resume_from_checkpoint=resume)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    counter.close()
    step_seconds = seconds - sum(w for w, _ in evals)  # training steps alone: validation passes are timed apart
    last = trainer.state.global_step
    if val_ds and not any(h.get("step") == last and "eval_loss" in h for h in trainer.state.log_history):
        trainer.evaluate()  # the end point (max_steps may end between epoch boundaries)
    rows = log_rows(trainer.state.log_history)
    if start.is_file():
        rows.insert(0, LogPoint(**json.loads(start.read_text())))
    rows = sorted(rows, key=lambda r: (r.step, r.split))
    if pause_at is not None and last < trainer.state.max_steps:
        raise Paused(rows, seconds, last)
    tokens = int(counter.real)
    stop = stop_reason(trainer, stopper, train, rows)
    scored = select_checkpoints(trainer, rows, targets, steps_per_epoch, train.select, out_dir)
    artifact = out_dir / "model"
    model.save_pretrained(str(artifact), safe_serialization=True)
    tokenizer.save_pretrained(artifact)
    if not train.keep_checkpoints == "all":
        shutil.rmtree(folder, ignore_errors=True)  # what a resume needed; the scored weights are exported
    stats = TrainStats(
        train_seconds=seconds, train_tokens=tokens, tokens_per_second=tokens / step_seconds if step_seconds > 0 else None,
        trainable_params=int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        total_params=int(sum(p.numel() for p in model.parameters())), peak_memory_mb=mem.peak,
        real_token_share=counter.share, artifact=str(artifact),
        artifact_bytes=sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file()),
        placement=placement.policy(attn),
        memory=MemorySettings(train.gradient_checkpointing, train.packing, train.group_by_length),
        timing=TrainingTimes(step_seconds=step_seconds, validation_seconds=sum(w for w, _ in evals),
                             validation_passes=len(evals), processed_tokens=counter.processed,
                             step_cpu_seconds=cpu_seconds - sum(c for _, c in evals), steps=trainer.state.global_step,
                             steps_per_epoch=steps_per_epoch, resumed_from=Path(resume).name if resume else None),
    )
    record = TrainRecord(rows, stats, scored, stop, peft=as_json(lora) if lora else None,
                         quantization=as_json(quant) if quant else None)
    return TrainOutput(_for_scoring(model, method, placement), tokenizer, record)


def _trainer(model: TrainedModel, train_ds: list[dict[str, list[int]]], val_ds: list[dict[str, list[int]]],
             args: TrainingArguments, collator: DataCollator, callback: _LogCallback) -> Trainer:
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds or None,
                      data_collator=collator, callbacks=[callback])
    for cb in (PrinterCallback, ProgressCallback):  # the harness reports progress itself
        trainer.remove_callback(cb)
    hf_logging.disable_progress_bar()
    return trainer


def _for_scoring(model: TrainedModel, method: str, placement: Placement) -> TrainedModel:
    """The trained model as scorers use it: cache on, LoRA merged, every variant in the compute dtype."""
    from peft import PeftModel

    model.config.use_cache = True
    if method == "lora" and isinstance(model, PeftModel):  # the adapter is saved; merged weights generate faster
        model = model.merge_and_unload()  # and give the same outputs
    if method == "full":  # trained with fp32 master weights; scored in the compute dtype, like every variant
        module: torch.nn.Module = model  # Module.to casts in place (transformers' own `to` hides its typed signature)
        module.to(placement.torch_dtype())
    return model.eval()


def _check_4bit() -> None:
    """Fail with a clear message where bitsandbytes cannot run 4-bit here."""
    try:
        import bitsandbytes as bnb
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken native library
        raise RuntimeError(f"qlora needs bitsandbytes with 4-bit support: pip install 'finetune-harness[qlora]' ({exc})") from None
    from packaging.version import Version

    if not torch.cuda.is_available() and Version(bnb.__version__) < Version("0.49"):
        raise RuntimeError(
            f"qlora on the CPU needs bitsandbytes >= 0.49 (found {bnb.__version__}); "
            "upgrade it or run qlora variants on a GPU"
        )


def load_given(ref: ModelRef, checkpoint: Path, placement: Placement | None = None
               ) -> tuple[TrainedModel, PreTrainedTokenizerBase]:
    """A given adapter or model folder (safetensors only) for scoring without training, on the placement's device."""
    return load_checkpoint(ref, checkpoint, "given", placement)


def load_checkpoint(ref: ModelRef, checkpoint: Path, method: str, placement: Placement | None = None
                    ) -> tuple[TrainedModel, PreTrainedTokenizerBase]:
    """An adapter folder (on the base model, 4-bit for qlora) or a whole-model folder, safetensors only, on the
    placement's device, ready to score; the tokenizer is the folder's own, else the base model's."""
    if (checkpoint / "adapter_config.json").is_file():
        if not (checkpoint / "adapter_model.safetensors").is_file():
            raise RuntimeError(f"{checkpoint}: adapter has no adapter_model.safetensors; only safetensors are loaded")
        from peft import PeftModel

        placement = placement or detect_placement()
        quant = quantization_config(placement) if method == "qlora" else None
        base = load_model(ref, placement=placement, quantization=quant)
        model = PeftModel.from_pretrained(base, str(checkpoint))
        return model, load_tokenizer(ref)
    local = ModelRef(str(checkpoint), "local", str(checkpoint), "")
    has_tokenizer = (checkpoint / "tokenizer_config.json").is_file()
    return load_model(local, placement=placement), load_tokenizer(local if has_tokenizer else ref)


def load_trained(ref: ModelRef, artifact: Path, method: str, placement: Placement | None = None
                 ) -> tuple[TrainedModel, PreTrainedTokenizerBase]:
    """A variant's stored artifact (the adapter or model it was scored at), loaded as training would hand it to
    scoring: for rescoring an incomplete variant without training it again."""
    placement = placement or detect_placement()
    model, tok = load_checkpoint(ref, artifact, method, placement)
    return _for_scoring(model, method, placement), tok


@dataclass
class ForScoring:
    """A trained variant ready to score: the model at its selected checkpoint, its train log, and what training
    returns for its row."""

    model: TrainedModel
    tokenizer: PreTrainedTokenizerBase
    log: list[LogPoint]
    outcome: TrainingOutcome


def train_for_scoring(ref: ModelRef, variant: Variant, train: TrainSpec, train_examples: list[list[dict[str, str]]],
                      val_examples: list[list[dict[str, str]]], out_root: Path,
                      on_step: Callable[[int, int, float | None], None] | None = None,
                      placement: Placement | None = None) -> ForScoring:
    """Train a variant (or, for an `epochs_from_one_run` variant, find or make its group's one training) and load
    the checkpoint it is scored at. A group trains once, under a lock, in out_root/group-<id>; its other variants
    read that training's record and load their own epoch's checkpoint."""
    placement = placement or detect_placement(train.dtype)
    if not variant.one_run:
        out = train_variant(ref, variant, train, train_examples, val_examples, out_root / variant.variant_id,
                            on_step, placement)
        return _scoring(ref, variant, out.record, out, placement, shared=None)
    folder = out_root / f"group-{variant.train_group}"
    folder.mkdir(parents=True, exist_ok=True)
    with group_lock(folder / ".lock"):
        done = folder / "trained.json"
        trained: TrainOutput | None = None
        if done.is_file():
            record = TrainRecord.loads(done.read_text())  # another variant of the group trained it
        else:
            longest = replace(variant, epochs=max(variant.one_run))
            trained = train_variant(ref, longest, train, train_examples, val_examples, folder, on_step, placement,
                                    targets=variant.one_run)
            record = replace(trained.record, trained_by=variant.variant_id)
            tmp = done.with_suffix(".tmp")
            tmp.write_text(record.dumps())
            tmp.replace(done)  # atomic: a group member never reads half a record
    shared = SharedTraining(
        group=variant.train_group, epochs=list(variant.one_run), trained_by=str(record.trained_by),
        trained_here=trained is not None, folder=str(folder),
        schedule=f"the learning-rate schedule of the {max(variant.one_run)}-epoch run: this variant is its "
                 f"epoch-{variant.epochs} checkpoint, not a {variant.epochs}-epoch run with its own schedule")
    return _scoring(ref, variant, record, trained, placement, shared=shared)


def _scoring(ref: ModelRef, variant: Variant, record: TrainRecord, out: TrainOutput | None,
             placement: Placement, shared: SharedTraining | None) -> ForScoring:
    scored = record.scored.get(int(variant.epochs or 0)) or record.scored[max(record.scored)]
    stats = record.stats
    if shared is not None and not shared.trained_here:  # the training's cost is recorded once, where it ran
        stats = replace(stats, train_seconds=None, train_tokens=None)
    if scored.path is None and out is not None:
        model, tok = out.model, out.tokenizer
    else:
        where = Path(scored.path or stats.artifact)
        model, tok = load_checkpoint(ref, where, variant.method, placement)
        model = _for_scoring(model, variant.method, placement)
        stats = replace(stats, artifact=str(where),
                        artifact_bytes=sum(f.stat().st_size for f in where.rglob("*") if f.is_file()))
    outcome = TrainingOutcome(stats, scored, record.stop, shared, record.peft, record.quantization)
    return ForScoring(model, tok, record.log, outcome)
