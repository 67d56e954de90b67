"""The table `harness sweep` prints at the end: one row per variant, held-out scores with CIs, findings, and the
recommendation (the same policy and words as the report and the gate)."""

from __future__ import annotations

import os
from typing import TextIO

import pandas as pd

from harness.scores import MEASUREMENT_CHECKS
from harness.store.db import Store
from harness.store.reads import RunData, load_run
from harness.verdicts.recommend import Recommendation, prompt_vs_finetuning, recommend

SUMMARY_METRICS = ("exact_match", "field_accuracy", "rougeL", "chrf")


def summary_frame(data: RunData, rec: Recommendation | None = None) -> pd.DataFrame:
    """Variant, method, rank, epochs, status, train time, tokens/s, final losses, held-out scores [95% CI]."""
    log, heldout = data.train_log, data.suite_of("heldout")
    rows = []
    for v in data.variants.to_dict("records"):
        vid = v["variant_id"]
        tied = rec is not None and len(rec.tie_group) > 1 and vid in rec.tie_group
        mark = " *" if rec is not None and vid == rec.variant_id else " =" if tied else ""
        row: dict[str, object] = {"variant": v["name"] + mark, "id": vid, "method": v["method"], "rank": v["rank"],
                               "epochs": v["epochs"], "status": v["status"] + (" (reused)" if v["reused"] else ""),
                               "train s": v["train_seconds"], "tok/s": v["tokens_per_second"],
                               "prompt tok/req": v.get("prompt_tokens_per_request")}
        for split in ("train", "validation"):
            part = log[(log["variant_id"] == vid) & (log["split"] == split)] if not log.empty else log
            row[f"{split[:5]} loss"] = part.sort_values("step")["loss"].iloc[-1] if len(part) else None
        for metric in SUMMARY_METRICS:
            s = data.score(vid, heldout, metric)
            if s is not None:
                row[metric] = f"{s[0]:.3f} [{s[1]:.3f}, {s[2]:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def findings_line(findings: pd.DataFrame) -> str:
    """One count of a run's findings, by check: the sweep's closing line and the summary's heading say the same."""
    findings = findings[~findings["check"].isin(MEASUREMENT_CHECKS)] if not findings.empty else findings
    if findings.empty:
        return "0 findings"
    by_check = ", ".join(f"{check} {n}" for check, n in sorted(findings["check"].value_counts().items()))
    return f"{len(findings)} finding{'s' if len(findings) != 1 else ''} ({by_check})"


def print_summary(store: Store, run_id: str, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    data = load_run(store, run_id)
    rec = recommend(data)
    df = summary_frame(data, rec)
    legend = ("   (* recommended" + (", = statistically tied with it" if len(rec.tie_group) > 1 else "") + ")"
              if rec.variant_id else "")
    table = Table(title=f"run {run_id}{legend}")
    for col in df.columns:
        table.add_column(col, overflow="fold")
    for _, r in df.iterrows():
        table.add_row(*[_cell(x) for x in r])
    console = Console(file=out, width=max(160, os.get_terminal_size().columns if out.isatty() else 200))
    console.print(table)
    names = dict(zip(data.variants["variant_id"], data.variants["name"], strict=True))
    findings = data.findings
    if not findings.empty:  # how a suite was measured (a judge's unreadable judgments, a failed suite) comes first
        measured = findings["check"].isin(MEASUREMENT_CHECKS)
        for row in findings[measured].to_dict("records"):
            console.print(f"warning: {names.get(row['variant_id'], row['variant_id'])}: {row['message']}",
                          markup=False, soft_wrap=True)
        findings = findings[~measured]
    if not findings.empty:
        console.print(findings_line(findings) + ":", markup=False)
        for row in findings.to_dict("records"):
            console.print(f"  [{row['severity']}] {names.get(row['variant_id'], row['variant_id'])} "
                          f"{row['check']}: {row['message']}", markup=False)
    for row in data.variants.to_dict("records"):  # a searched run's stopped variants, and why (harness.search)
        if row["status"] == "stopped" and row.get("stop_reason"):
            console.print(f"  {row['name']}: {row['stop_reason']}", markup=False, soft_wrap=True)
    console.print(rec.reason, markup=False, soft_wrap=True)
    verdict = prompt_vs_finetuning(data)
    if verdict is not None:
        console.print(verdict.text, markup=False, soft_wrap=True)
    console.print(f"results stored in {store.path.resolve()} (run {run_id}); "
                  f"`harness report {run_id}` builds the HTML report", markup=False)


def _cell(x: object) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)) or x is pd.NA:
        return ""
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)
