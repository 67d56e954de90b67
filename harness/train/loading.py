"""Loading trained weights for scoring: an adapter on its base model (4-bit for qlora) or a whole-model folder,
safetensors only, put in the form scorers use (cache on, LoRA merged, the compute dtype)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import torch

from harness.models.device import Placement, detect_placement
from harness.models.resolve import ModelRef, load_model, load_tokenizer
from harness.train.peft_config import quantization_config

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TrainedModel: TypeAlias = "PreTrainedModel | PeftModel"  # a transformers model, or one wrapped with LoRA adapters


def for_scoring(model: TrainedModel, method: str, placement: Placement) -> TrainedModel:
    """The trained model as scorers use it: cache on, LoRA merged, every variant in the compute dtype."""
    from peft import PeftModel

    model.config.use_cache = True
    if method == "lora" and isinstance(model, PeftModel):  # the adapter is saved; merged weights generate faster
        model = model.merge_and_unload()  # and give the same outputs
    if method == "full":  # trained with fp32 master weights; scored in the compute dtype, like every variant
        module: torch.nn.Module = model  # Module.to casts in place (transformers' own `to` hides its typed signature)
        module.to(placement.torch_dtype())
    return model.eval()


def check_4bit() -> None:
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
    return for_scoring(model, method, placement), tok
