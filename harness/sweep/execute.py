"""Train (or load) and score one variant: a function of plain, serialisable inputs that returns its rows.

It never opens the store, so the same function runs in-process or as a Ray task.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.chat import DataBundle
from harness.models.resolve import ModelRef
from harness.progress import Progress, Quiet
from harness.scorers import ScoreContext, make_scorer
from harness.store.db import VariantResult
from harness.data.suites import Suite


@dataclass
class VariantTask:
    """Everything needed to produce one variant's results."""

    variant: dict[str, Any]
    model: ModelRef
    train: dict[str, Any]  # TrainSpec as a dict
    data: DataBundle
    suites: list[Suite]
    out_dir: str
    base_url: str | None = None


def variant_row(task: VariantTask) -> dict[str, Any]:
    v = task.variant
    return {"variant_id": v["variant_id"], "name": v["name"], "method": v["method"], "rank": v.get("rank"),
            "epochs": v.get("epochs"), "learning_rate": v.get("learning_rate"), "seed": v.get("seed"),
            "base_model": task.model.identity, "config": {**v, "train": task.train if v["method"] != "base" else None}}


def score_suites(model: Any, task: VariantTask, train_log: list[dict[str, Any]], progress: Progress
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every suite on a loaded model; returns (scores, examples, findings)."""
    scores: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for suite in task.suites:
        fn, record = make_scorer(suite.kind, suite.options)
        progress.phase(f"scoring {suite.name} (requests done)", None)
        ctx = ScoreContext(model=model, suite=suite, variant=task.variant, test=task.data.test,
                           train_log=train_log, cache=cache)
        out = fn(ctx)
        progress.close_phase()
        for r in out.scores:
            extra = r.pop("scorer_args", None)  # how this model was scored, e.g. multiple choice by generation
            r.update(suite=suite.name, suite_version=suite.version,
                     scorer={**record, "args": {**record["args"], **extra}} if extra else record)
        for r in out.examples:
            r.update(suite=suite.name)
        scores += out.scores
        examples += out.examples
        findings += out.findings
    return scores, examples, findings


def execute_variant(task: VariantTask, progress: Progress | None = None) -> VariantResult:
    """Train and score one local variant (base, lora, qlora, full, given); failures come back as a failed row."""
    progress = progress or Quiet()
    row = variant_row(task)
    method = task.variant["method"]
    out_dir = Path(task.out_dir) / task.variant["variant_id"]
    try:
        from transformers.utils import logging as hf_logging

        from harness.models.device import detect_placement, record_placement
        from harness.models.local import LocalModel
        from harness.models.resolve import load_model, load_tokenizer
        from harness.spec.schema import TrainSpec

        hf_logging.disable_progress_bar()
        train = TrainSpec.model_validate(task.train)
        placement = detect_placement(train.dtype)
        train_log: list[dict[str, Any]] = []
        if method in ("lora", "qlora", "full"):
            from harness.train.local import train_variant

            progress.phase("training steps", None)
            trained = train_variant(task.model, task.variant, train,
                                    [e.messages for e in task.data.train], [e.messages for e in task.data.validation],
                                    out_dir, on_step=progress.step, placement=placement)
            progress.close_phase()
            model, tok, train_log = trained.model, trained.tokenizer, trained.log
            row.update(trained.stats)
        elif method == "given":
            from harness.train.local import load_given

            ckpt = Path(task.variant["checkpoint_path"])
            model, tok = load_given(task.model, ckpt, placement)
            row["artifact"] = str(ckpt)
        else:
            model = load_model(task.model, placement=placement, attn_implementation=train.attn_implementation)
            tok = load_tokenizer(task.model)
        record_placement(row, model, placement)
        t0 = time.perf_counter()
        lm = LocalModel(model, tok, name=task.variant["name"], batch_size=train.eval_batch_size,
                        on_batch=progress.advance)
        scores, examples, findings = score_suites(lm, task, train_log, progress)
        row.update(status="finished", score_seconds=time.perf_counter() - t0)
        return VariantResult(row, train_log, scores, examples, findings)
    except Exception as exc:  # noqa: BLE001 - one variant's failure must not end the sweep
        progress.close_phase()
        tb = traceback.format_exc(limit=3)
        row.update(status="failed", error=f"{exc.__class__.__name__}: {exc}")
        row["config"] = {**row["config"], "traceback": tb}
        return VariantResult(row)
