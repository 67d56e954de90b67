"""SIGTERM during a sweep: raise `Terminated` (a KeyboardInterrupt) so it is handled like Ctrl-C."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from harness.errors import Terminated


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, the first SIGTERM raises Terminated in the main thread; later ones wait for the cleanup."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = {"n": 0}

    def handler(signum: int, frame: FrameType | None) -> None:
        fired["n"] += 1
        if fired["n"] == 1:
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM for a short critical step (marking the run's final status)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
