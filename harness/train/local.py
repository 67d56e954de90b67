"""Local training backend: load -> wrap (LoRA / QLoRA / full) -> train with transformers' Trainer -> save safetensors.

Loss is on the final assistant message only. Train loss is logged every step and validation loss at least
once per epoch; both come back as `train_log` rows.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback, ProgressCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from harness.models.resolve import ModelRef, load_model, load_tokenizer


@dataclass
class TrainOutput:
    """What training produced, besides the model itself."""

    model: Any
    tokenizer: Any
    log: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def tokenize_chat(tokenizer: Any, messages: list[dict[str, str]], max_len: int) -> dict[str, list[int]]:
    """input_ids with labels masked (-100) everywhere but the final assistant message."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:  # templates that re-tokenize the boundary: fall back to the prompt length
        f_ids = p_ids + tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    labels = [-100] * len(p_ids) + f_ids[len(p_ids):]
    return {"input_ids": f_ids[:max_len], "labels": labels[:max_len]}


class _Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class _LogCallback(TrainerCallback):
    """Collects train/validation losses into train_log rows and reports progress."""

    def __init__(self, on_step: Callable[[int, int, float | None], None] | None):
        self.rows: list[dict[str, Any]] = []
        self.on_step = on_step

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.rows.append({"step": state.global_step, "epoch": float(logs.get("epoch", state.epoch or 0)),
                              "split": "train", "loss": float(logs["loss"])})
            if self.on_step:
                self.on_step(state.global_step, state.max_steps, float(logs["loss"]))
        if "eval_loss" in logs:
            self.rows.append({"step": state.global_step, "epoch": float(logs.get("epoch", state.epoch or 0)),
                              "split": "validation", "loss": float(logs["eval_loss"])})


class _PeakMemory:
    """Peak resident memory while training (CUDA: allocator peak), sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        proc = psutil.Process(os.getpid())
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss / 2**20)
            self._stop.wait(0.2)

    def __enter__(self) -> _PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() / 2**20


def _keep_4bit_trainable(model: Any) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference during an evaluation pass.

    bitsandbytes 0.50 packs a Linear4bit's weights into a CPU inference layout the first time it runs in
    eval mode without gradients, and that layout has no backward: every training step after the first
    validation pass then gets zero gradients. Keeping the training layout costs nothing on a GPU.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _wrap(model: Any, method: str, rank: int | None, train: Any) -> Any:
    if method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        _keep_4bit_trainable(model)
    config = LoraConfig(r=int(rank or 8), lora_alpha=train.lora_alpha, lora_dropout=train.lora_dropout,
                        target_modules=list(train.target_modules), task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, config)


def train_variant(ref: ModelRef, variant: dict[str, Any], train: Any, train_examples: list[list[dict[str, str]]],
                  val_examples: list[list[dict[str, str]]], out_dir: Path,
                  on_step: Callable[[int, int, float | None], None] | None = None) -> TrainOutput:
    """Train one local variant and save it as safetensors under out_dir; returns the trained model too."""
    method, seed = variant["method"], int(variant.get("seed") or 0)
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(ref)
    if method == "qlora":
        _check_4bit()
    model = load_model(ref, quantize_4bit=method == "qlora")
    model.config.use_cache = False
    model = _wrap(model, method, variant.get("rank"), train)
    train_ds = [tokenize_chat(tokenizer, m, train.max_seq_length) for m in train_examples]
    val_ds = [tokenize_chat(tokenizer, m, train.max_seq_length) for m in val_examples]
    steps_per_epoch = math.ceil(len(train_ds) / (train.batch_size * train.gradient_accumulation_steps))
    eval_steps = max(1, round(steps_per_epoch * train.eval_every_epochs))
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"), num_train_epochs=float(variant["epochs"]),
        max_steps=train.max_steps or -1, per_device_train_batch_size=train.batch_size,
        per_device_eval_batch_size=train.eval_batch_size, gradient_accumulation_steps=train.gradient_accumulation_steps,
        learning_rate=float(variant["learning_rate"]), lr_scheduler_type=train.lr_scheduler_type,
        warmup_steps=math.ceil(train.warmup_ratio * steps_per_epoch * float(variant["epochs"])),
        weight_decay=train.weight_decay, logging_steps=1,
        eval_strategy="steps" if val_ds else "no", eval_steps=eval_steps, save_strategy="no", report_to=[],
        seed=seed, data_seed=seed, use_cpu=not torch.cuda.is_available(), bf16=False, fp16=False,
        disable_tqdm=True, remove_unused_columns=False, dataloader_num_workers=0,
    )
    callback = _LogCallback(on_step)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds or None,
                      data_collator=_Collator(tokenizer.pad_token_id), callbacks=[callback])
    for cb in (PrinterCallback, ProgressCallback):  # the harness reports progress itself
        trainer.remove_callback(cb)
    hf_logging.disable_progress_bar()
    if val_ds:  # the starting point of the validation curve (the callback records the row)
        trainer.evaluate()
    with _PeakMemory() as mem:
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    last = trainer.state.global_step
    if val_ds and not any(r["split"] == "validation" and r["step"] == last for r in callback.rows):
        trainer.evaluate()  # the end point; the callback records it
    epochs_done = float(trainer.state.epoch or variant["epochs"])
    tokens = int(sum(len(x["input_ids"]) for x in train_ds) * epochs_done)
    artifact = out_dir / "model"
    model.save_pretrained(artifact, safe_serialization=True)
    tokenizer.save_pretrained(artifact)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    stats = {
        "train_seconds": seconds, "train_tokens": tokens, "tokens_per_second": tokens / seconds if seconds else None,
        "trainable_params": int(trainable), "total_params": int(total), "peak_memory_mb": mem.peak,
        "artifact": str(artifact), "artifact_bytes": sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file()),
    }
    model.config.use_cache = True
    if method == "lora":  # the adapter is saved; merged weights generate faster and give the same outputs
        model = model.merge_and_unload()
    return TrainOutput(model.eval(), tokenizer, sorted(callback.rows, key=lambda r: (r["step"], r["split"])), stats)


def _check_4bit() -> None:
    """Fail with a clear message where bitsandbytes cannot run 4-bit here."""
    try:
        import bitsandbytes as bnb
    except Exception as exc:  # ImportError, or a broken native library
        raise RuntimeError(f"qlora needs bitsandbytes with 4-bit support: pip install 'finetune-harness[qlora]' ({exc})")
    from packaging.version import Version

    if not torch.cuda.is_available() and Version(bnb.__version__) < Version("0.49"):
        raise RuntimeError(
            f"qlora on the CPU needs bitsandbytes >= 0.49 (found {bnb.__version__}); "
            "upgrade it or run qlora variants on a GPU"
        )


def load_given(ref: ModelRef, checkpoint: Path) -> tuple[Any, Any]:
    """A given adapter or model folder (safetensors only) for scoring without training."""
    if (checkpoint / "adapter_config.json").is_file():
        if not (checkpoint / "adapter_model.safetensors").is_file():
            raise RuntimeError(f"{checkpoint}: adapter has no adapter_model.safetensors; only safetensors are loaded")
        from peft import PeftModel

        base = load_model(ref)
        model = PeftModel.from_pretrained(base, str(checkpoint))
        tokenizer = load_tokenizer(ref)
        return model, tokenizer
    local = ModelRef(str(checkpoint), "local", str(checkpoint), "")
    return load_model(local), load_tokenizer(local)
