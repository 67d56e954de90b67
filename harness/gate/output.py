"""The gate's human output: a rich table on stdout and a markdown summary for a CI job page."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.gate.result import FAIL, PASS, SKIP, GateResult
from harness.gate.snapshot import Snapshot
from harness.output_file import write_output

_STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
_ICON = {PASS: "✅ pass", FAIL: "❌ FAIL", SKIP: "⚪ skip"}


def columns(result: GateResult) -> tuple[str, ...]:
    """The table's header, with the configured confidence level."""
    return ("rule", "metric", "baseline", "candidate", f"difference [{result.confidence:.0%} CI]", "allowance",
            "MDE (80% power)", "verdict")


def _who(snap: Snapshot) -> str:
    v = snap["variant"]
    return f"{v.get('name')} ({v.get('variant_id')}, run {snap['run'].get('run_id')})"


def headline(result: GateResult) -> str:
    n = len(result.checks)
    verdict = "PASSED" if result.passed else "FAILED"
    return (f"gate {verdict}: {n} rules, {result.count(PASS)} passed, {result.count(FAIL)} failed, "
            f"{result.count(SKIP)} skipped")


def print_result(result: GateResult, out: TextIO) -> None:
    """The table of every check, then failures and notes, then the verdict line."""
    width = max(160, shutil.get_terminal_size().columns) if out.isatty() else 200
    console = Console(file=out, width=width, highlight=False)
    console.print(f"candidate: {_who(result.candidate)}", markup=False)
    console.print(f"baseline:  {_who(result.baseline)} from {result.baseline_path} "
                  f"(saved {result.baseline.get('created_at', 'n/a')})", markup=False)
    table = Table(title="release gate", title_justify="left")
    for col in columns(result):
        table.add_column(col, overflow="fold")
    for c in result.checks:
        table.add_row(*(escape(x) for x in (c.rule, c.target, c.baseline, c.candidate, c.difference, c.allowance,
                                            c.mde)),
                      f"[{_STYLE[c.verdict]}]{c.verdict.upper()}[/]" + (" [yellow](blind)[/]" if c.warning else ""))
    console.print(table)
    for c in result.checks:
        if c.verdict == FAIL:
            console.print(f"FAIL {c.name}: {c.message}", markup=False)
    for c in result.checks:
        if c.verdict == SKIP:
            console.print(f"skip {c.name}: {c.message}", markup=False)
    for c in result.checks:
        if c.warning and c.verdict != FAIL:
            console.print(f"warn {c.name}: {c.warning}", markup=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    style = "bold green" if result.passed else "bold red"
    console.print(f"[{style}]{escape(headline(result))}[/]")


def md_escape(text: object) -> str:
    """Text as inert markdown: punctuation that markdown or HTML would act on is backslash-escaped."""
    s = " ".join(str(text).split())
    return "".join("\\" + ch if ch in "\\`*_[]<>|~&" else ch for ch in s)


def markdown(result: GateResult) -> str:
    """A summary fit for $GITHUB_STEP_SUMMARY: verdict, what was compared, the table, failures, notes."""
    icon = "✅" if result.passed else "❌"
    lines = [f"### {icon} Release {md_escape(headline(result))}", "",
             f"- candidate: {md_escape(_who(result.candidate))}",
             f"- baseline: {md_escape(_who(result.baseline))} from {md_escape(result.baseline_path)}", "",
             "| " + " | ".join(columns(result)) + " |", "|" + "---|" * len(columns(result))]
    for c in result.checks:
        cells = [c.rule, c.target, c.baseline, c.candidate, c.difference, c.allowance, c.mde]
        lines.append("| " + " | ".join(md_escape(x) for x in cells) + f" | {_ICON[c.verdict]} |")
    failed = [c for c in result.checks if c.verdict == FAIL]
    if failed:
        lines += ["", "**Why it failed**", ""] + [f"- {md_escape(c.name)}: {md_escape(c.message)}" for c in failed]
    warned = [c for c in result.checks if c.warning and c.verdict != FAIL]
    if warned:
        lines += ["", "**Blind rules** (allowance below what the data can detect)", ""]
        lines += [f"- {md_escape(c.name)}: {md_escape(c.warning)}" for c in warned]
    skipped = [c for c in result.checks if c.verdict == SKIP]
    notes = [f"{c.name}: {c.message}" for c in skipped] + result.notes
    if notes:
        lines += ["", "<details><summary>notes</summary>", ""] + [f"- {md_escape(n)}" for n in notes]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def append_summary(result: GateResult, path: str | Path) -> Path:
    """Append the markdown summary to `path` (appending, as GitHub's job summary file expects)."""
    return write_output(path, markdown(result) + "\n", append=True)
