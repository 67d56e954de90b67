"""The device and dtype policy: one pure function decides where a variant runs and in which precision.

`choose_placement` is pure (inputs: what the machine offers and the spec's `train.dtype`), so every case is tested
on a CPU; `detect_placement` feeds it what torch reports here. Everything that loads, trains or scores a model
asks for a Placement; nothing else picks a device or a dtype.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from harness.errors import HarnessInputError
from harness.results import DevicePolicy, Placed

if TYPE_CHECKING:
    import torch

DTYPES = ("auto", "fp32", "bf16", "fp16")
_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class PrecisionArgs(TypedDict):
    """The TrainingArguments keys a placement sets."""

    use_cpu: bool
    bf16: bool
    fp16: bool


@dataclass(frozen=True)
class Placement:
    """Where and how a variant runs: device type, compute dtype, and Trainer's mixed-precision flags."""

    device: str  # cuda | mps | cpu
    dtype: str  # fp32 | bf16 | fp16: the compute dtype of scoring, LoRA base weights and QLoRA
    bf16: bool  # TrainingArguments(bf16=...): autocast to bf16 while training
    fp16: bool  # TrainingArguments(fp16=...): autocast to fp16 with loss scaling while training
    spread: bool = False  # train.distributed.device_map auto: load across every visible GPU (device_map="auto")

    @property
    def torch_device(self) -> str:
        """The device string models and tensors go to (one GPU per local variant: cuda:0 of what is visible; a rank
        of a torchrun group its own GPU, cuda:LOCAL_RANK)."""
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if self.device == "cuda" else self.device

    def torch_dtype(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, _TORCH_DTYPES[self.dtype])
        return dtype

    def weights_dtype(self, method: str) -> torch.dtype:
        """dtype of the weights as loaded: full fine-tuning keeps fp32 master weights (autocast computes in
        half precision); LoRA, scoring and QLoRA's compute load in the compute dtype, halving memory on a GPU."""
        import torch

        return torch.float32 if method == "full" else self.torch_dtype()

    def training_args(self) -> PrecisionArgs:
        """The TrainingArguments keys this placement sets."""
        return PrecisionArgs(use_cpu=self.device == "cpu", bf16=self.bf16, fp16=self.fp16)

    def policy(self, attn_implementation: str | None) -> DevicePolicy:
        """This placement as a variant records it (config.placement), with the attention kernel a model loaded with."""
        return DevicePolicy(self.device, self.dtype, self.bf16, self.fp16, attn_implementation)


def choose_placement(cuda: bool, bf16_supported: bool, mps: bool, override: str = "auto") -> Placement:
    """The policy. Device: CUDA, else Apple MPS, else the CPU. dtype `auto`: bf16 on a GPU that supports it,
    fp16 (with loss scaling) on one that does not, fp32 on MPS and the CPU. An explicit dtype wins where the
    device can run it; where it cannot, the error says what to use instead."""
    if override not in DTYPES:
        raise HarnessInputError(f"key 'train.dtype': {override!r} is not one of {', '.join(DTYPES)}")
    device = "cuda" if cuda else "mps" if mps else "cpu"
    if override == "auto":
        dtype = ("bf16" if bf16_supported else "fp16") if device == "cuda" else "fp32"
    else:
        dtype = override
    if dtype == "bf16" and device in ("cuda", "mps") and not bf16_supported:
        raise HarnessInputError(f"key 'train.dtype': this {device} device does not support bf16; use fp16 or auto")
    if dtype == "fp16" and device == "cpu":
        raise HarnessInputError("key 'train.dtype': fp16 mixed precision needs a GPU; on the CPU use fp32 (or bf16)")
    return Placement(device, dtype, bf16=dtype == "bf16", fp16=dtype == "fp16")


def detect_placement(override: str = "auto") -> Placement:
    """The policy applied to this machine, as torch sees it (CUDA_VISIBLE_DEVICES="" picks the CPU)."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if cuda:
        bf16 = torch.cuda.is_bf16_supported()
    elif mps:
        bf16 = _mps_bf16()
    else:
        bf16 = True
    return choose_placement(cuda, bf16, mps, override)


def _mps_bf16() -> bool:
    import torch

    try:
        torch.zeros(1, dtype=torch.bfloat16, device="mps")
        return True
    except (RuntimeError, TypeError):
        return False


def attn_implementation(requested: str, placement: Placement) -> str | None:
    """`auto`: flash_attention_2 on CUDA in half precision when flash-attn is installed, else transformers'
    own default (None: sdpa where the model supports it, else eager). Anything else is passed through."""
    if requested != "auto":
        return requested
    if placement.device == "cuda" and placement.dtype != "fp32" and importlib.util.find_spec("flash_attn"):
        return "flash_attention_2"
    return None


def input_device(model: object) -> torch.device:
    """The device a model's inputs go to: its input embedding's, which under device_map="auto" need not be where
    its other layers are (or `model.device`)."""
    import torch

    embed = getattr(model, "get_input_embeddings", None)
    weight = getattr(embed(), "weight", None) if callable(embed) else None
    if isinstance(weight, torch.Tensor):
        return weight.device
    return torch.device(getattr(model, "device", "cpu"))


def model_devices(model: object) -> list[str]:
    """Every device a loaded model's layers sit on (hf_device_map under device_map="auto"), e.g. ['cuda:0', 'cuda:1']."""
    spread = getattr(model, "hf_device_map", None)
    if isinstance(spread, dict) and spread:
        return sorted({f"cuda:{d}" if isinstance(d, int) else str(d) for d in spread.values()})
    device = input_device(model)
    return [device.type if device.type in ("cpu", "mps") else str(device)]


def describe(model: object) -> dict[str, str]:
    """The device and dtype a loaded model actually computes in, for the store: {'device', 'dtype'}."""
    names = {"torch.float32": "fp32", "torch.bfloat16": "bf16", "torch.float16": "fp16"}
    device = getattr(model, "device", None)
    dtype = names.get(str(getattr(model, "dtype", "")), str(getattr(model, "dtype", "")))
    config = getattr(model, "config", None)
    quant = getattr(config, "quantization_config", None)
    if getattr(model, "is_loaded_in_4bit", False) or (quant is not None and getattr(quant, "load_in_4bit", False)):
        compute = names.get(str(getattr(quant, "bnb_4bit_compute_dtype", "")), dtype)
        dtype = f"nf4+{compute}"
    return {"device": getattr(device, "type", str(device)), "dtype": dtype}


def record_placement(model: object, placement: Placement) -> Placed:
    """Where a variant's scored model was loaded: the `device` and `dtype` columns (what the loaded model computes
    in) and the policy it was placed by, with its attention kernel (config.placement)."""
    where = describe(model)
    attn = getattr(getattr(model, "config", None), "_attn_implementation", None)
    return Placed(where["device"], where["dtype"], placement.policy(attn))
