"""The typed per-variant result: one field per `variant_results` column, built once from the plan and each stage's
piece; the LoRA config a variant trained with recorded in its config; training settings typed across the Ray
boundary; a failed row that keeps the plan's fields."""

from __future__ import annotations

import dataclasses
import json
import pickle
import types
import typing
from datetime import datetime
from pathlib import Path

from harness.results import (
    FAILED,
    LogPoint,
    RunParts,
    VariantConfig,
    VariantResult,
    VariantRow,
    Worker,
    failed_result,
    planned_row,
)
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.store.db import TABLES, Store, _column_types
from harness.sweep.execute import VariantTask, execute_variant
from harness.sweep.runner import Sweep

SQL_TYPES = {"VARCHAR": str, "INTEGER": int, "BIGINT": int, "DOUBLE": float, "TIMESTAMP": datetime,
             "JSON": VariantConfig}
# Every key `config` held before it was built from typed parts (users query them): a local LoRA variant's.
CONFIG_KEYS = {"variant_id", "name", "method", "rank", "epochs", "learning_rate", "seed", "checkpoint",
               "checkpoint_path", "one_run", "train_group", "shots", "system_prompt", "train", "worker", "scored",
               "stopped", "placement", "training"}
PLACEMENT_KEYS = {"device", "dtype", "bf16", "fp16", "attn_implementation", "gradient_checkpointing", "packing",
                  "group_by_length", "real_token_share"}
TRAINING_KEYS = {"step_seconds", "validation_seconds", "validation_passes", "processed_tokens", "step_cpu_seconds",
                 "steps", "steps_per_epoch", "resumed_from"}


def _task(spec: Path, method: str) -> VariantTask:
    sweep = Sweep(spec)
    v = next(v for v in sweep.variants if v.method == method)
    task = sweep.task(v, spec.parent / "runs")
    return dataclasses.replace(task, suites=[])  # training and loading only: scoring is tested elsewhere


def test_the_row_has_one_typed_field_per_column_in_the_tables_order() -> None:
    hints = typing.get_type_hints(VariantRow)
    columns = _column_types("variant_results")
    assert [f.name for f in dataclasses.fields(VariantRow)] == list(columns)
    for name, sql in columns.items():
        hint = hints[name]
        allowed = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
        assert SQL_TYPES[sql] in allowed, (name, sql, hint)
    assert "variant_results" in TABLES


def test_a_local_lora_row_records_the_lora_config_it_trained_with(tiny_experiment: Path) -> None:
    from peft import LoraConfig

    from harness.train.peft_config import as_json

    task = _task(tiny_experiment, "lora")
    result = execute_variant(task)
    row = result.variant
    assert row.status == "finished", row.error
    assert (row.method, row.rank, row.base_model, row.device) == ("lora", task.variant.rank, task.model.identity, "cpu")
    assert row.trainable_params and row.train_tokens and row.scored_step and result.train_log
    assert row.config is not None
    config = row.config.to_json()
    assert CONFIG_KEYS <= set(config) and set(config) - CONFIG_KEYS == {"peft"}
    assert set(config["placement"]) == PLACEMENT_KEYS and set(config["training"]) == TRAINING_KEYS  # type: ignore[arg-type]
    assert config["train"] == task.train.model_dump(mode="json") and config["worker"]["pid"] > 0  # type: ignore[index]
    # peft wrote adapter_config.json from the LoraConfig it trained; the row holds the same config (peft flips
    # inference_mode on only while it saves)
    saved = as_json(LoraConfig.from_pretrained(str(row.artifact)))
    peft = config["peft"]
    assert isinstance(peft, dict) and {**peft, "inference_mode": True} == saved
    assert (peft["r"], peft["lora_alpha"], peft["target_modules"]) == (task.variant.rank, task.train.lora_alpha,
                                                                        sorted(task.train.target_modules))
    with Store(tiny_experiment.parent / "r.duckdb") as store:  # the store keeps it as JSON, under config.peft
        store.write_variant(result)
        stored = store.query("SELECT config FROM variant_results WHERE variant_id = ?", [row.variant_id])
    assert json.loads(stored.iloc[0, 0])["peft"] == peft


def test_a_variant_task_and_its_result_cross_the_ray_boundary_typed(tiny_experiment: Path) -> None:
    task = _task(tiny_experiment, "full")
    back = pickle.loads(pickle.dumps(task))
    assert isinstance(back.train, TrainSpec) and back.train == task.train and back.variant == task.variant
    assert back.train.max_seq_length == 96 and back.planned() == task.planned()
    result = VariantResult(dataclasses.replace(task.planned(), status="finished"), [LogPoint(1, 0.5, "train", 2.0)])
    again = pickle.loads(pickle.dumps(result))
    assert again == result and again.variant.config is not None and isinstance(again.variant.config.train, TrainSpec)
    try:
        import cloudpickle  # what Ray serialises task arguments with
    except ImportError:
        return
    assert cloudpickle.loads(cloudpickle.dumps(task)).train == task.train


def test_a_failed_row_keeps_the_plans_fields() -> None:
    v = Variant("abc123", "lora-r4-e2-s1", "lora", rank=4, epochs=2, learning_rate=2e-4, seed=1)
    train = TrainSpec(batch_size=4)
    failed = failed_result(planned_row(v, "tiny@1", train), "RuntimeError: boom",
                           RunParts(worker=Worker(7, "host"), traceback="Traceback ..."))
    row = failed.variant
    assert (row.status, row.error, row.variant_id, row.name, row.method, row.rank, row.epochs, row.learning_rate,
            row.seed, row.base_model) == (FAILED, "RuntimeError: boom", "abc123", "lora-r4-e2-s1", "lora", 4, 2, 2e-4,
                                          1, "tiny@1")
    assert row.train_seconds is None and row.artifact is None and not failed.finished
    assert row.config is not None
    config = row.config.to_json()
    assert config["traceback"] == "Traceback ..." and config["worker"] == {"pid": 7, "host": "host", "attempt": 1}
    assert config["train"] == train.model_dump(mode="json") and config["rank"] == 4 and "scored" not in config


def test_a_variant_that_fails_in_training_keeps_its_plan_and_says_why(tiny_experiment: Path) -> None:
    text = tiny_experiment.read_text().replace("method: [lora, full]", "method: [qlora]")
    tiny_experiment.write_text(text)
    task = _task(tiny_experiment, "qlora")  # tiny-random-llama is built in memory: it cannot load in 4 bits
    result = execute_variant(task)
    row = result.variant
    assert row.status == FAILED and row.error and (row.name, row.rank, row.epochs) == (
        task.variant.name, task.variant.rank, task.variant.epochs)
    assert row.config is not None
    config = row.config.to_json()
    assert config["traceback"] and config["worker"] and config["method"] == "qlora"
