"""What a rank of a torchrun group adds to local training: Trainer's DDP/FSDP arguments, and the collectives that sum
token counts and wait for rank 0's files. One process (no process group) makes each of them a no-op."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

import torch

from harness.spec.schema import TrainSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class DistributedArgs(TypedDict, total=False):
    """The TrainingArguments keys a rank of a torchrun group sets."""

    ddp_timeout: int
    ddp_backend: str
    ddp_find_unused_parameters: bool
    fsdp: str
    fsdp_config: dict[str, object]


def layer_class(model: PreTrainedModel) -> str | None:
    """The model's decoder layer class (transformers' `_no_split_modules`): FSDP's auto wrap unit."""
    names = sorted(getattr(model, "_no_split_modules", None) or [])  # a list or a set, by transformers version
    return str(names[0]) if names else None


def distributed_args(train: TrainSpec, model_class: str | None) -> DistributedArgs:
    """TrainingArguments for a rank of a `train.distributed` group; none for one process."""
    d = train.distributed
    if d is None or d.processes == 1:
        return DistributedArgs()
    args = DistributedArgs(ddp_timeout=d.timeout, ddp_backend="nccl" if torch.cuda.is_available() else "gloo",
                           ddp_find_unused_parameters=False)  # LoRA: frozen weights have no gradient by design
    if d.strategy == "fsdp":
        if model_class is None:
            raise RuntimeError("train.distributed.strategy fsdp: the model names no decoder layer class "
                               "(_no_split_modules) to wrap; use strategy ddp")
        args["fsdp"] = "full_shard auto_wrap"
        # FSDP2 (torch fully_shard), one unit per decoder layer; a full state dict, so checkpoints and the artifact
        # are ordinary safetensors folders that one process loads for scoring
        args["fsdp_config"] = {"version": 2, "transformer_layer_cls_to_wrap": [model_class],
                               "state_dict_type": "FULL_STATE_DICT"}
    return args


def _group() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if _group():
        torch.distributed.barrier()


def summed(real: int | torch.Tensor, processed: int) -> tuple[int, int]:
    """Real and processed token counts summed over every rank."""
    if not _group():
        return int(real), processed
    t = torch.tensor([float(real), float(processed)], dtype=torch.float64)
    if torch.cuda.is_available():
        t = t.to(f"cuda:{torch.cuda.current_device()}")
    torch.distributed.all_reduce(t)
    return int(t[0].item()), int(t[1].item())


def rank_devices(device: torch.device, world: int) -> str:
    """The devices a group's ranks trained on (one node): cpu, or cuda:0,...,cuda:N-1."""
    if device.type != "cuda":
        return device.type
    return ",".join(f"cuda:{i}" for i in range(world)) if world > 1 else f"cuda:{device.index or 0}"
