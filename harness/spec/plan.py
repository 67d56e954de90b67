"""The plan: the sweep's cartesian product (pruned where a key does not apply) plus `base`, with stable ids."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from harness import __version__
from harness.spec.schema import API_PREFIXES, RANKED_METHODS, ExperimentSpec

LOCAL_TRAINING = ("lora", "qlora", "full")

# Train settings that change what a local method produces (so they enter its id).
_LORA_KEYS = ("lora_alpha", "lora_dropout", "target_modules")
# (dtype, packing and length grouping change the numbers a run produces; gradient checkpointing, the attention
# kernel and the evaluation batch size change only its speed and memory, so they stay out.)
# Keys that enter the id only when set away from their default, so ids made before they existed stay valid.
_CHECKPOINT_KEYS = {"select": "last", "early_stopping": None}
_LOCAL_KEYS = ("max_seq_length", "batch_size", "gradient_accumulation_steps", "lr_scheduler_type",
               "warmup_ratio", "weight_decay", "max_steps", "eval_every_epochs", "dtype", "packing", "group_by_length")


@dataclass(frozen=True)
class Variant:
    """One thing to train (or not) and score."""

    variant_id: str
    name: str
    method: str  # base | lora | qlora | full | openai | given | prompt
    rank: int | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    checkpoint: str | None = None  # for `given`: as written in the spec
    checkpoint_path: str | None = None  # for `given` folders: resolved against the spec's folder
    one_run: tuple[int, ...] | None = None  # epochs_from_one_run: the epoch counts scored from one training
    train_group: str | None = None  # epochs_from_one_run: the id of that shared training
    shots: int | None = None  # for `prompt`: few-shot conversations drawn (with `seed`) from the training split
    system_prompt: str | None = None  # for `prompt`: the system prompt's text

    @property
    def trains(self) -> bool:
        return self.method not in ("base", "given", "prompt")

    @property
    def is_remote(self) -> bool:
        """Trained or scored through an API (managed fine-tuning, or a `given` model id or deployment of an API)."""
        return self.method == "openai" or (self.method == "given" and (self.checkpoint or "").startswith(API_PREFIXES))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _fmt_lr(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-").replace("e+0", "e")


def variant_identity(method: str, params: Mapping[str, object], spec: ExperimentSpec, model_identity: str,
                     fingerprints: dict[str, str], suites: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """Everything that decides a variant's stored result (hashed as JSON into its id)."""
    ident: dict[str, object] = {
        "harness": __version__, "model": model_identity, "method": method, "params": params,
        "suites": suites, "test": fingerprints.get("test"),
    }
    if method in ("lora", "qlora", "full"):
        keys = _LOCAL_KEYS + (_LORA_KEYS if method in RANKED_METHODS else ())
        train: dict[str, object] = {k: getattr(spec.train, k) for k in keys}
        for k, default in _CHECKPOINT_KEYS.items():
            value = getattr(spec.train, k)
            if value != default:
                train[k] = value.model_dump() if hasattr(value, "model_dump") else value
        ident["train"] = train
        ident["data"] = {k: fingerprints.get(k) for k in ("train", "validation")}
    elif method == "prompt" and params.get("shots"):
        ident["data"] = {"train": fingerprints.get("train")}  # the shots are drawn from it
    elif method == "openai":
        ident["train"] = spec.train.openai.model_dump(exclude={"poll_seconds", "price_per_million_tokens"})
        ident["data"] = {k: fingerprints.get(k) for k in ("train", "validation")}
    return ident


def short_hash(obj: object, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def make_plan(spec: ExperimentSpec, model_identity: str, fingerprints: dict[str, str],
              suites: Sequence[Mapping[str, object]], checkpoint_ids: dict[str, str] | None = None,
              checkpoint_paths: dict[str, str] | None = None) -> list[Variant]:
    """`base` first, then the sweep in spec order; duplicates (after pruning) appear once."""
    s = spec.sweep
    sampled = spec.search is not None and spec.search.samples  # its trials come from harness.search, one by one
    multi_lr = not sampled and len(s.values("learning_rate")) > 1
    multi_seed = not sampled and len(s.values("seed")) > 1
    variants = [Variant(short_hash(variant_identity("base", {}, spec, model_identity, fingerprints, suites)),
                        "base", "base")]
    seen = {variants[0].variant_id}
    checkpoint_ids, checkpoint_paths = checkpoint_ids or {}, checkpoint_paths or {}
    for method in [] if sampled else s.method:
        if method == "given":
            for ckpt in s.checkpoint:
                params: dict[str, object] = {"checkpoint": checkpoint_ids.get(ckpt, ckpt)}
                vid = short_hash(variant_identity(method, params, spec, model_identity, fingerprints, suites))
                label = ckpt.rstrip("/").split("/")[-1].removeprefix("openai:")
                if vid not in seen:
                    seen.add(vid)
                    variants.append(Variant(vid, f"given-{label}", method, checkpoint=ckpt,
                                            checkpoint_path=checkpoint_paths.get(ckpt)))
            continue
        if method == "prompt":
            variants += _prompt_variants(spec, model_identity, fingerprints, suites, seen)
            continue
        ranks: list[int | None] = [int(r) for r in s.values("rank")] if method in RANKED_METHODS else [None]
        # OpenAI jobs take a learning-rate multiplier (train.openai), not an absolute rate.
        rates: list[float | None] = [None] if method == "openai" else [float(x) for x in s.values("learning_rate")]
        all_epochs, seeds = [int(e) for e in s.values("epochs")], [int(x) for x in s.values("seed")]
        one_run = tuple(sorted(set(all_epochs))) if spec.train.epochs_from_one_run and method in LOCAL_TRAINING \
            and len(set(all_epochs)) > 1 else None
        for rank, epochs, lr, seed in itertools.product(ranks, all_epochs, rates, seeds):
            params = {"rank": rank, "epochs": epochs, "learning_rate": lr, "seed": seed}
            group = None
            if one_run:  # one training of the largest count; its checkpoints are these variants
                params["one_run_of"] = one_run[-1]
                group = short_hash(variant_identity(method, {**params, "epochs": one_run}, spec, model_identity,
                                                    fingerprints, []))
            vid = short_hash(variant_identity(method, params, spec, model_identity, fingerprints, suites))
            if vid in seen:
                continue
            seen.add(vid)
            name = method + (f"-r{rank}" if rank is not None else "") + f"-e{epochs}"
            name += f"of{one_run[-1]}" if one_run else ""
            name += f"-lr{_fmt_lr(lr)}" if multi_lr and lr is not None else ""
            name += f"-s{seed}" if multi_seed else ""
            variants.append(Variant(vid, name, method, rank, epochs, lr, seed, one_run=one_run, train_group=group))
    return variants


def _prompt_variants(spec: ExperimentSpec, model_identity: str, fingerprints: dict[str, str],
                     suites: Sequence[Mapping[str, object]], seen: set[str]) -> list[Variant]:
    """One variant per shot count (and per seed where shots are drawn): the base model with the spec's prompt."""
    system = spec.system_prompt()
    seeds = [int(x) for x in spec.sweep.values("seed")]
    multi_seed = len(seeds) > 1
    out = []
    for shots in spec.sweep.shots:
        for seed in seeds if shots else [None]:
            params = {"shots": shots, "seed": seed, "system": short_hash(system, 16) if system is not None else None}
            vid = short_hash(variant_identity("prompt", params, spec, model_identity, fingerprints, suites))
            if vid in seen:
                continue
            seen.add(vid)
            name = f"prompt-{shots}shot" + (f"-s{seed}" if multi_seed and seed is not None else "")
            out.append(Variant(vid, name, "prompt", seed=seed, shots=shots, system_prompt=system))
    return out


def select(variants: list[Variant], only: list[str] | None) -> list[Variant]:
    """Filter by `--only` (ids, id prefixes or names); base always stays, as the reference."""
    if not only:
        return variants
    keep = [v for v in variants if v.method == "base" or any(
        v.variant_id.startswith(o) or v.name == o for o in only)]
    return keep
