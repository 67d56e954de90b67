"""Up-front checks of a sweep: what would make variants fail (or train on cut or forged text), found before any
training, every problem at once with its file and key (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import yaml

from harness.data.chat import DataBundle
from harness.data.quality import DataCheck, Tokenizer, dataset_checks, special_token_lines, truncation
from harness.data.suites import Suite
from harness.errors import HarnessInputError, did_you_mean
from harness.models.resolve import EMBEDDED, TINY_CONFIG, ModelRef
from harness.spec.schema import API_PREFIXES, ExperimentSpec
from harness.spec.yaml_lines import At, compose, line_of
from harness.textfiles import read_text

if TYPE_CHECKING:
    from transformers import PretrainedConfig

LOCAL_TRAINING = ("lora", "qlora", "full")


def model_location(spec: ExperimentSpec) -> str:
    """spec.model with a folder path resolved against the spec's folder; like data paths it may not leave it."""
    name = spec.model
    if name in EMBEDDED or name.startswith(API_PREFIXES):
        return name
    root = spec.spec_dir.resolve()
    if not (name.startswith((".", "/", "~")) or (root / name).exists()):
        return name  # a hub id (owner/name), or an unknown name resolve_model explains
    path = (root / Path(name).expanduser()).resolve()
    if path != root and root not in path.parents:
        raise HarnessInputError(
            f"path {name!r} points outside the spec's folder {root}. A model folder, like data and suites, lives "
            "next to the spec or below it, given as a relative path (a symlink that leads outside counts as outside).")
    return str(path)


def preflight(spec: ExperimentSpec, model: ModelRef | None, suites: list[Suite], data: DataBundle | None
              ) -> tuple[list[str], list[DataCheck]]:
    """(problems, warnings) of a sweep: train settings, target modules, suite files, data lengths and special
    tokens, and the data-quality checks of harness.data.quality (warnings); what could not be resolved (model None,
    data None) is skipped, its own error says why."""
    tree: list[yaml.Node | None] = []  # the spec's YAML nodes, composed the first time a problem needs a line

    def at(*loc: str | int) -> str:
        if not tree:
            tree.append(compose(spec.source_text) if spec.source_text else None)
        return f"{spec.source_path}:{line_of(tree[0], loc)}: key '{'.'.join(str(p) for p in loc)}'"

    problems: list[str] = []
    warnings: list[DataCheck] = []
    remote = spec.model.startswith(API_PREFIXES)
    local = [m for m in spec.sweep.method if m in LOCAL_TRAINING] if not remote else []
    if local:
        problems += _train_settings(spec, at)
        if model is not None and any(m in ("lora", "qlora") for m in local):
            problems += _target_modules(spec, model, at)
    problems += _suite_files(suites)
    problems += _judges(spec, model, suites)
    if model is not None and not model.is_remote and data is not None:
        try:
            found, warnings = _tokenized(spec, model, data, at, train=bool(local))
        except HarnessInputError as exc:  # the tokenizer cannot be loaded: say why, with the rest
            found = [f"{spec.source_path}: key 'model': {p}" for p in exc.problems]
        problems += found
    if data is not None:
        held_out = {"validation": data.validation, "test": data.test} if data.train else {"test": data.test}
        warnings += dataset_checks(data.train, held_out, threshold=spec.data.near_duplicate_threshold)
    return problems, warnings


def _train_settings(spec: ExperimentSpec, at: At) -> list[str]:
    from transformers import SchedulerType

    t = spec.train
    problems = []
    if not 0.0 <= t.lora_dropout < 1.0:
        problems.append(f"{at('train', 'lora_dropout')}: {t.lora_dropout!r} is not a dropout probability; "
                        "use a value in [0, 1), e.g. 0.05")
    if t.eval_batch_size != "auto" and t.eval_batch_size < 1:
        problems.append(f"{at('train', 'eval_batch_size')}: {t.eval_batch_size!r}; use a positive integer, e.g. 16, or 'auto'")
    schedulers = [s.value for s in SchedulerType]
    if t.lr_scheduler_type not in schedulers:
        problems.append(f"{at('train', 'lr_scheduler_type')}: unknown scheduler {t.lr_scheduler_type!r}."
                        f"{did_you_mean(t.lr_scheduler_type, schedulers)} Allowed: {', '.join(schedulers)}")
    if not 0.0 <= t.warmup_ratio <= 1.0:
        problems.append(f"{at('train', 'warmup_ratio')}: {t.warmup_ratio!r}; use a share of training in [0, 1]")
    if t.weight_decay < 0:
        problems.append(f"{at('train', 'weight_decay')}: {t.weight_decay!r}; use a value >= 0")
    if t.max_steps is not None and t.max_steps <= 0:
        problems.append(f"{at('train', 'max_steps')}: {t.max_steps!r}; use a positive integer or leave it out")
    if t.eval_every_epochs <= 0:
        problems.append(f"{at('train', 'eval_every_epochs')}: {t.eval_every_epochs!r}; use a value > 0, e.g. 1.0")
    return problems


def module_names(model: ModelRef) -> list[str] | None:
    """Names of the model's leaf modules, built on the meta device (no weights); None when it cannot be known."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig

    from harness.models.resolve import cache_dir

    converted = cache_dir() / model.name / "config.json"
    if model.kind == "tiny" or (model.kind == "embedded" and not converted.is_file()):
        config: PretrainedConfig = LlamaConfig(vocab_size=256, **TINY_CONFIG)  # SmolLM2 is a Llama: the same names
    elif model.kind in ("local", "embedded"):
        try:
            config = AutoConfig.from_pretrained(str(converted.parent if model.kind == "embedded" else model.location))
        except (OSError, ValueError):
            return None  # loading explains it (and never runs remote code)
    else:
        return None
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    return [n for n, m in skeleton.named_modules() if n and not list(m.children())]


def _target_modules(spec: ExperimentSpec, model: ModelRef, at: At) -> list[str]:
    targets = list(spec.train.target_modules)
    if targets == ["all-linear"]:
        return []
    names = module_names(model)
    if names is None:
        return []
    leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
    problems = []
    for i, t in enumerate(targets):
        if not any(n == t or n.endswith("." + t) for n in names):
            problems.append(f"{at('train', 'target_modules', i)}: {t!r} matches no module of {model.name}."
                            f"{did_you_mean(t, leaves)} Its modules: {', '.join(leaves)} (or 'all-linear')")
    return problems


def _suite_files(suites: list[Suite]) -> list[str]:
    """A suite's items file and JSON Schema exist and parse (the scorer would fail on every variant otherwise)."""
    import jsonschema

    problems = []
    for suite in suites:
        where = f"{suite.folder / 'suite.yaml'}"
        try:
            if suite.items_file and not suite.path(suite.items_file).is_file():
                problems.append(f"{where}: key 'items': no file {suite.path(suite.items_file)}")
            schema = suite.options.get("schema")
            if not schema:
                continue
            path = suite.path(str(schema))
            if not path.is_file():
                problems.append(f"{where}: option 'schema': no file {path}; put the JSON Schema next to suite.yaml")
                continue
            doc = json.loads(read_text(path))
            jsonschema.validators.validator_for(doc).check_schema(doc)
        except HarnessInputError as exc:
            problems += exc.problems
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{exc.lineno}: option 'schema' of {where}: not valid JSON ({exc.msg})")
        except jsonschema.exceptions.SchemaError as exc:
            at = "/".join(str(p) for p in exc.absolute_path) or "the top level"
            problems.append(f"{path}: option 'schema' of {where}: not a valid JSON Schema at {at}: {exc.message}")
    return problems


def _judges(spec: ExperimentSpec, model: ModelRef | None, suites: list[Suite]) -> list[str]:
    """Every suite's judge (option `judge`) resolves, and is none of the compared models: the experiment's model
    (scored as base) or a given checkpoint. (The variant being scored is checked again when it is judged.)"""
    from harness.models.judge_model import model_identity, resolve_judge
    from harness.models.resolve import check_hub

    compared: dict[str, str] = {}
    if model is not None:
        compared[model.identity] = f"the experiment's model (key 'model': {spec.model})"
    for i, ckpt in enumerate(spec.sweep.checkpoint):
        try:
            name = ckpt if ckpt.startswith(API_PREFIXES) else str(
                spec.resolve_path(ckpt, f"sweep.checkpoint[{i}]"))
        except HarnessInputError:
            continue  # its own error says why
        compared.setdefault(model_identity(name), f"a given checkpoint (key 'sweep.checkpoint[{i}]': {ckpt})")
    problems = []
    for suite in suites:
        judge = suite.options.get("judge")
        if not isinstance(judge, str) or not judge.strip():
            continue
        where = f"{suite.where or str(suite.folder / 'suite.yaml') + ': '}suite {suite.name!r} option 'judge': "
        try:
            ref = resolve_judge(judge)
            check_hub(ref)  # a hub judge the hub cannot serve fails now, not after every variant has trained
            identity = ref.identity
        except HarnessInputError as exc:
            problems += [f"{where}{p}" for p in exc.problems]
            continue
        if identity in compared:
            problems.append(f"{where}{judge!r} is {compared[identity]}, one of the models being compared; a model may "
                            "not judge its own outputs. Choose another judge model")
    return problems


def _tokenized(spec: ExperimentSpec, model: ModelRef, data: DataBundle, at: At, *, train: bool
               ) -> tuple[list[str], list[DataCheck]]:
    """What the model's tokenizer does to the data: answers cut by max_seq_length, special tokens in content."""
    from harness.models.resolve import load_tokenizer

    # transformers types apply_chat_template's result as a union; with tokenize=False it is the text Tokenizer names
    tok = cast(Tokenizer, load_tokenizer(model))
    problems: list[str] = []
    warnings: list[DataCheck] = []
    if train:
        for split in ("train", "validation"):
            cut = truncation(tok, getattr(data, split), spec.train.max_seq_length)
            problems += cut.errors(f"{at('train', 'max_seq_length')} is {spec.train.max_seq_length}")
            warnings += [c for c in [cut.check(split)] if c]
    if not spec.data.allow_special_tokens:
        for split in ("train", "validation", "test"):
            for line in special_token_lines(tok, getattr(data, split)):
                problems.append(f"{line}. Remove or escape it, or set 'data.allow_special_tokens: true' in "
                                f"{spec.source_path} if the data really means to hold them")
    return problems, warnings
