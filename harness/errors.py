"""Errors that the CLI turns into exit code 2, each naming where the problem is and how to fix it."""

from __future__ import annotations

MAX_LISTED = 20  # problems an error lists; the rest are counted (a 300,000-entry spec is not a 30 MB message)


class HarnessInputError(Exception):
    """Bad input (spec, data, arguments): one or more problems, reported together (the first MAX_LISTED listed)."""

    def __init__(self, problems: list[str] | str, *, title: str = "invalid input"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"{self.title}: {self.problems[0]}"
        lines = [f"{self.title}: {len(self.problems):,} problems"]
        lines += [f"  - {p}" for p in self.problems[:MAX_LISTED]]
        if len(self.problems) > MAX_LISTED:
            lines.append(f"  ... and {len(self.problems) - MAX_LISTED:,} more (fix these and run again to see the rest)")
        return "\n".join(lines)


def did_you_mean(value: str, allowed: list[str]) -> str:
    """A ' Did you mean ...?' hint, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class Terminated(KeyboardInterrupt):
    """SIGTERM (CI runners, `timeout`, `kill`), handled like Ctrl-C; the CLI exits 143."""

