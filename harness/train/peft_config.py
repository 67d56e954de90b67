"""The peft and bitsandbytes configs of a local variant, built in one place from the plan: the LoraConfig from the
typed Variant (its rank) and TrainSpec (alpha, dropout, target modules); for QLoRA the BitsAndBytesConfig from the
placement's compute dtype. Training uses these very objects, and the variant records them (config.peft,
config.quantization) as JSON, in the form peft writes adapter_config.json."""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING

from harness.models.device import Placement
from harness.scores import JSONDict
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig


def lora_config(variant: Variant, train: TrainSpec) -> LoraConfig | None:
    """The LoraConfig a lora or qlora variant trains with; None for full fine-tuning."""
    if variant.method not in ("lora", "qlora"):
        return None
    from peft import LoraConfig

    return LoraConfig(r=int(variant.rank or 8), lora_alpha=train.lora_alpha, lora_dropout=train.lora_dropout,
                      target_modules=list(train.target_modules), task_type="CAUSAL_LM", bias="none")


def quantization_config(placement: Placement) -> BitsAndBytesConfig:
    """4-bit NF4 with double quantization, computing in the placement's dtype (QLoRA's recipe)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=placement.torch_dtype(),
                              bnb_4bit_use_double_quant=True, bnb_4bit_quant_storage=torch.uint8)


def as_json(config: LoraConfig | BitsAndBytesConfig) -> JSONDict:
    """A config's to_dict() as JSON-safe values (sets as sorted lists, enums as their values, dtypes as names)."""
    return _json_safe(config.to_dict())


def _json_safe(value: object) -> JSONDict:
    def default(o: object) -> object:
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        if isinstance(o, enum.Enum):
            return o.value
        return str(o)

    out: JSONDict = json.loads(json.dumps(value, sort_keys=True, default=default))
    return out
