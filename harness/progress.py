"""Progress for long work: a live display on a terminal, plain timestamped log lines elsewhere (CI)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


class Progress:
    """Reports variants, training steps and examples scored."""

    def __init__(self, *, live: bool | None = None, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._t0 = time.perf_counter()
        self._bar: RichProgress | None = None  # the live display of the current phase
        self._task: TaskID | None = None
        self._last_plain = 0.0
        self._phase, self._done = "", 0
        self._total: int | None = None

    def _plain(self, msg: str) -> None:
        """A timestamped line (no terminal, or a live display not running)."""
        elapsed = time.perf_counter() - self._t0
        print(f"[{elapsed:7.1f}s] {msg}", file=self.stream, flush=True)

    def info(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.console.print(msg)
        else:
            self._plain(msg)

    def variant_start(self, index: int, total: int, name: str, what: str) -> None:
        self.info(f"variant {index}/{total} {name}: {what}")

    def phase(self, name: str, total: int | None) -> None:
        """Start a counted phase (training steps, examples scored)."""
        self.close_phase()
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[extra]}"), TimeElapsedColumn(), console=None,
                                     transient=True)
            self._bar.start()
            self._task = self._bar.add_task(name, total=total, extra="")
        else:
            self._plain(f"  {name}" + (f" ({total})" if total else ""))
        self._phase = name
        self._done = 0
        self._total = total

    def advance(self, n: int = 1, extra: str = "") -> None:
        self._done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n, extra=extra)
        elif time.perf_counter() - self._last_plain > 5 or (self._total and self._done >= self._total):
            self._last_plain = time.perf_counter()
            of = f"/{self._total}" if self._total else ""
            self._plain(f"  {self._phase}: {self._done}{of} {extra}".rstrip())

    def step(self, step: int, total: int, loss: float | None) -> None:
        """A training step finished (called by the trainer's callback)."""
        if self._total != total and self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)
        self._total = total
        self.advance(step - self._done, f"loss {loss:.4f}" if loss is not None else "")

    def close_phase(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class Quiet(Progress):
    """Progress that says nothing (tests, library use)."""

    def __init__(self) -> None:
        super().__init__(live=False)

    def _plain(self, msg: str) -> None:
        pass
