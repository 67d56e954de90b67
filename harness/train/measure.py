"""What local training measures besides its loss: peak memory, and the time its validation passes take."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, Self, TypeVar

import torch
from transformers import Trainer

P = ParamSpec("P")
R = TypeVar("R")


class PeakMemory:
    """Peak resident memory while training (CUDA: allocator peak), sampled in a thread."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        proc = psutil.Process(os.getpid())
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss / 2**20)
            self._stop.wait(0.2)

    def __enter__(self) -> Self:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if torch.cuda.is_available():
            self.peak = torch.cuda.max_memory_allocated() / 2**20


def time_evaluations(trainer: Trainer) -> list[tuple[float, float]]:
    """Time every validation pass Trainer runs while training (it calls `self.evaluate`), so tokens/s counts
    training steps alone; the list fills with (wall, CPU) seconds as passes finish."""
    spent: list[tuple[float, float]] = []
    trainer.evaluate = _timed(trainer.evaluate, spent)  # type: ignore[method-assign]
    return spent


def _timed(fn: Callable[P, R], spent: list[tuple[float, float]]) -> Callable[P, R]:
    """`fn`, appending the (wall, CPU) seconds of every call to `spent`."""

    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent.append((time.perf_counter() - t0, time.process_time() - c0))

    return timed
