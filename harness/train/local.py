"""Local training backend: load -> wrap (LoRA / QLoRA / full) -> train with trl's SFTTrainer -> save safetensors.

Examples go to trl as conversational prompt-completion data, so the loss is on the final assistant message only
(trl's completion-only loss); `train.packing` is trl's padding-free batching. Train loss is logged every step and
validation loss at least once per epoch; both come back as `train_log` rows.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

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
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

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
from harness.train.collate import Messages, TokenCounter, prompt_completion, tokenize_chat, with_loss
from harness.train.distributed_args import barrier, distributed_args, layer_class, rank_devices, summed
from harness.train.loading import TrainedModel, check_4bit, for_scoring, load_checkpoint, load_given, load_trained
from harness.train.measure import PeakMemory, time_evaluations
from harness.train.peft_config import as_json, lora_config, quantization_config

if TYPE_CHECKING:
    from peft import LoraConfig


__all__ = ["Scored", "TrainOutput", "load_checkpoint", "load_given", "load_trained", "tokenize_chat", "train_variant"]

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
               has_validation: bool, keep_all: bool, model_class: str | None = None) -> SFTConfig:
    """trl's SFTConfig (TrainingArguments and trl's data settings) from the variant, the spec's train settings and
    the device policy."""
    from harness.models.local import AUTO_BATCH

    seed = int(variant.seed or 0)
    eval_batch = AUTO_BATCH[placement.device] if train.eval_batch_size == "auto" else train.eval_batch_size
    return SFTConfig(
        output_dir=str(out_dir / "trainer"), num_train_epochs=float(variant.epochs or 1),
        max_steps=train.max_steps or -1, per_device_train_batch_size=train.per_device_batch,
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
        disable_tqdm=True, dataloader_num_workers=0,
        # trl: cut to max_seq_length, loss on the completion (the final assistant message); padding-free batches
        # for train.packing are set on the built trainer (_trainer)
        max_length=train.max_seq_length, completion_only_loss=True, padding_free=False,
        **distributed_args(train, model_class),
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
        check_4bit()
    lora, quant = lora_config(variant, train), quantization_config(placement) if method == "qlora" else None
    loaded = load_model(ref, quantization=quant, placement=placement, method=method,
                        attn_implementation=train.attn_implementation)
    loaded.config.use_cache = False
    attn = getattr(loaded.config, "_attn_implementation", None)
    model = _wrap(loaded, method, lora, train)
    train_ds = with_loss(tokenizer, train_examples, train.max_seq_length)
    val_ds = with_loss(tokenizer, val_examples, train.max_seq_length)
    steps_per_epoch = math.ceil(len(train_ds) / (train.batch_size * train.gradient_accumulation_steps))
    targets = tuple(sorted(set(targets or (int(variant.epochs or 1),))))
    keep_all = train.keep_checkpoints == "all" or len(targets) > 1 or (train.select == "best" and not val_ds)
    callback = _LogCallback(on_step)
    args = _arguments(variant, train, placement, out_dir, steps_per_epoch, bool(val_ds), keep_all, layer_class(loaded))
    trainer = _trainer(model, tokenizer, train_ds, val_ds, args, train.packing, callback)
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
    main = args.process_index == 0  # under torchrun only rank 0 writes (Trainer's own checkpoints included)
    if val_ds and (resume is None or not start.is_file()):
        before = trainer.evaluate()
        if main:
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
    real, processed = summed(counter.real, counter.processed)  # every rank's tokens
    step_seconds = seconds - sum(w for w, _ in evals)  # training steps alone: validation passes are timed apart
    last = trainer.state.global_step
    if val_ds and not any(h.get("step") == last and "eval_loss" in h for h in trainer.state.log_history):
        trainer.evaluate()  # the end point (max_steps may end between epoch boundaries)
    rows = log_rows(trainer.state.log_history)
    world = args.world_size
    if world > 1:
        barrier()  # rank 0 wrote start.json before the first step
    if start.is_file():
        rows.insert(0, LogPoint(**json.loads(start.read_text())))
    rows = sorted(rows, key=lambda r: (r.step, r.split))
    if pause_at is not None and last < trainer.state.max_steps:
        raise Paused(rows, seconds, last)
    tokens = real
    stop = stop_reason(trainer, stopper, train, rows)
    scored = select_checkpoints(trainer, rows, targets, steps_per_epoch, train.select, out_dir) if main else {}
    artifact = out_dir / "model"
    if world > 1:
        trainer.save_model(str(artifact))  # every rank takes part (FSDP gathers the shards); rank 0 writes
    else:
        model.save_pretrained(str(artifact), safe_serialization=True)
    if main:
        tokenizer.save_pretrained(artifact)
    if main and not train.keep_checkpoints == "all":
        shutil.rmtree(folder, ignore_errors=True)  # what a resume needed; the scored weights are exported
    stats = TrainStats(
        train_seconds=seconds, train_tokens=tokens, tokens_per_second=tokens / step_seconds if step_seconds > 0 else None,
        trainable_params=int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        total_params=int(sum(p.numel() for p in model.parameters())), peak_memory_mb=mem.peak,
        real_token_share=real / processed if processed else None, artifact=str(artifact),
        artifact_bytes=sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file()) if main else 0,
        placement=placement.policy(attn),
        memory=MemorySettings(train.gradient_checkpointing, train.packing, train.group_by_length),
        timing=TrainingTimes(step_seconds=step_seconds, validation_seconds=sum(w for w, _ in evals),
                             validation_passes=len(evals), processed_tokens=processed,
                             step_cpu_seconds=cpu_seconds - sum(c for _, c in evals), steps=trainer.state.global_step,
                             steps_per_epoch=steps_per_epoch, resumed_from=Path(resume).name if resume else None),
        processes=world, strategy=train.distributed.strategy if world > 1 and train.distributed else None,
        devices=rank_devices(args.device, world),
    )
    record = TrainRecord(rows, stats, scored, stop, peft=as_json(lora) if lora else None,
                         quantization=as_json(quant) if quant else None)
    if world > 1:  # a rank of a torchrun group: the parent scores what rank 0 saved
        return TrainOutput(model, tokenizer, record)
    return TrainOutput(for_scoring(model, method, placement), tokenizer, record)


class _SFTTrainer(SFTTrainer):
    """trl's SFTTrainer with transformers' own loss on the CPU: trl 1.16 always computes the loss through its fused
    LM head (log-probs, entropy and top-1 for its metrics, chunked to save GPU memory), which costs ~40% more CPU per
    step on the CPU (benchmarks/train_bench.py) and gives losses that differ from the model's own in the 5th digit.
    On an accelerator trl's loss is kept (its memory saving matters for large vocabularies)."""

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor],  # type: ignore[override]
                     return_outputs: bool = False, num_items_in_batch: torch.Tensor | None = None) -> object:
        if self.args.device.type == "cpu":
            inputs["use_cache"] = False  # type: ignore[assignment]  # as trl does: no cache while training
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def _trainer(model: TrainedModel, tokenizer: PreTrainedTokenizerBase, train_ds: list[Messages],
             val_ds: list[Messages], args: SFTConfig, packing: bool, callback: _LogCallback) -> SFTTrainer:
    """trl's SFTTrainer on the examples as conversational prompt-completion data, reporting through the harness."""
    import datasets

    datasets.disable_progress_bars()  # the harness reports progress itself
    trainable = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
    with _no_telemetry():
        trainer = _SFTTrainer(model=model, args=args, train_dataset=prompt_completion(train_ds),
                             eval_dataset=prompt_completion(val_ds) if val_ds else None, processing_class=tokenizer,
                             callbacks=[callback])
    prepared, wrapped = trainer.train_dataset, trainer.model
    assert isinstance(prepared, datasets.Dataset) and wrapped is not None  # trl prepared the list it was given
    if len(prepared) != len(train_ds):
        raise RuntimeError(f"trl kept {len(prepared)} of {len(train_ds)} training examples "
                           "(harness.train.collate.tokenize_chat no longer mirrors trl's preparation)")
    for name, param in wrapped.named_parameters():
        if param.requires_grad and name in trainable and param.dtype != trainable[name]:
            # trl casts a 4-bit model's adapters to bf16; the harness keeps peft's fp32 adapter weights (the master
            # copy under bf16/fp16 autocast, as before), so a qlora variant trains as it did under Trainer
            param.data = param.data.to(trainable[name])
    if packing:
        # trl's padding-free collator (one row per batch, position ids restarting per example). trl 1.16 refuses
        # `padding_free` with `max_length` unless it packs too (its preparation still cuts each example to
        # max_length), so the trainer is built padded and given the padding-free collator here.
        trainer.data_collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    for cb in (PrinterCallback, ProgressCallback):  # the harness reports progress itself
        trainer.remove_callback(cb)
    hf_logging.disable_progress_bar()
    return trainer


@contextmanager
def _no_telemetry() -> Iterator[None]:
    """No usage ping from trl to the Hugging Face Hub while a trainer is built: the harness sends nothing anywhere
    (the CLI sets HF_HUB_DISABLE_TELEMETRY=1 for the same reason; this holds for library callers too)."""
    from huggingface_hub import constants

    before = constants.HF_HUB_DISABLE_TELEMETRY
    constants.HF_HUB_DISABLE_TELEMETRY = True
    try:
        yield
    finally:
        constants.HF_HUB_DISABLE_TELEMETRY = before


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
        record, out = _train(ref, variant, train, train_examples, val_examples, out_root / variant.variant_id,
                             on_step, placement, None)
        return _scoring(ref, variant, record, out, placement, shared=None)
    folder = out_root / f"group-{variant.train_group}"
    folder.mkdir(parents=True, exist_ok=True)
    with group_lock(folder / ".lock"):
        done = folder / "trained.json"
        trained: TrainOutput | None = None
        here = not done.is_file()
        if not here:
            record = TrainRecord.loads(done.read_text())  # another variant of the group trained it
        else:
            longest = replace(variant, epochs=max(variant.one_run))
            record, trained = _train(ref, longest, train, train_examples, val_examples, folder, on_step, placement,
                                     variant.one_run)
            record = replace(record, trained_by=variant.variant_id)
            tmp = done.with_suffix(".tmp")
            tmp.write_text(record.dumps())
            tmp.replace(done)  # atomic: a group member never reads half a record
    shared = SharedTraining(
        group=variant.train_group, epochs=list(variant.one_run), trained_by=str(record.trained_by),
        trained_here=here, folder=str(folder),
        schedule=f"the learning-rate schedule of the {max(variant.one_run)}-epoch run: this variant is its "
                 f"epoch-{variant.epochs} checkpoint, not a {variant.epochs}-epoch run with its own schedule")
    return _scoring(ref, variant, record, trained, placement, shared=shared)


def _train(ref: ModelRef, variant: Variant, train: TrainSpec, train_examples: list[list[dict[str, str]]],
           val_examples: list[list[dict[str, str]]], out_dir: Path,
           on_step: Callable[[int, int, float | None], None] | None, placement: Placement,
           targets: tuple[int, ...] | None) -> tuple[TrainRecord, TrainOutput | None]:
    """Train in this process (the record and the model in memory), or as a torchrun group when train.distributed
    asks for several processes (rank 0's record; the model is loaded from what it saved)."""
    if train.distributed is not None and train.distributed.processes > 1:
        from harness.train.distributed import train_distributed

        return train_distributed(ref, variant, train, train_examples, val_examples, out_dir, on_step, targets), None
    out = train_variant(ref, variant, train, train_examples, val_examples, out_dir, on_step, placement, targets)
    return out.record, out


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
        model = for_scoring(model, variant.method, placement)
        stats = replace(stats, artifact=str(where),
                        artifact_bytes=sum(f.stat().st_size for f in where.rglob("*") if f.is_file()))
    outcome = TrainingOutcome(stats, scored, record.stop, shared, record.peft, record.quantization)
    return ForScoring(model, tok, record.log, outcome)
