"""Loaded weights as lm-evaluation-harness's `HFLM`, and lm-eval's evaluator run on them: the `lm-eval` suite kind's
model side (lm-eval is an optional extra, imported here only when a suite of that kind runs)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.models.lm_eval_types import LmEvalResults, TaskDict

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@contextmanager
def quiet() -> Iterator[None]:
    """lm-eval's info and expected warnings (a loaded model passed as `pretrained`) off while it runs."""
    log = logging.getLogger("lm_eval")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def evaluate_loaded(model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase, task_dict: TaskDict,
                    samples: dict[str, list[int]] | None, *, batch_size: int | str, seed: int) -> LmEvalResults:
    """lm-eval's `evaluator.evaluate` on `HFLM(pretrained=model, tokenizer=tokenizer)` with per-sample logs, its
    seeds set as `simple_evaluate` sets them (random 0, numpy and torch `seed`) inside a saved and restored RNG
    state, so the harness's own random streams are untouched; lm-eval's stderr bootstrap is skipped (the harness
    computes its own intervals)."""
    from lm_eval import evaluator
    from lm_eval.models.huggingface import HFLM

    with quiet():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices), quiet():
            random.seed(0)
            np.random.seed(seed)
            torch.manual_seed(seed)
            res = evaluator.evaluate(lm=lm, task_dict=task_dict, samples=samples, log_samples=True,
                                     bootstrap_iters=0)
    finally:
        random.setstate(state)
        np.random.set_state(np_state)
    if res is None:
        raise RuntimeError("lm-eval returned no results (a non-zero rank of a distributed run)")
    out: LmEvalResults = {**res}
    return out
