"""Small read-only commands: `runs`, `models`, `data check`. None of them imports torch."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.errors import HarnessInputError


def show_runs(db: str) -> int:
    from harness.store.db import Store

    with Store(db, read_only=True) as store:
        df = store.runs()
    if df.empty:
        print(f"{db}: no runs yet")
        return 0
    table = Table(title=f"runs in {db}")
    for col in ("run_id", "name", "status", "variants", "reused", "started_at", "finished_at"):
        table.add_column(col)
    for _, r in df.iterrows():
        table.add_row(*["" if v is None or str(v) in ("NaT", "nan") else str(v)[:19] if "_at" in c else str(v)
                        for c, v in r.items()])
    Console(width=140).print(table)
    return 0


def show_models() -> int:
    from harness.models.resolve import available_models

    table = Table(title="models")
    for col in ("name", "kind", "status", "description"):
        table.add_column(col, overflow="fold")
    for m in available_models():
        table.add_row(m["name"], m["kind"], m["status"], m["description"])
    Console(width=160).print(table)
    return 0


def _tokenizer(model: str | None):  # type: ignore[no-untyped-def]
    if model == "none":
        return None
    from harness.models.resolve import SMOLLM2, resolve_model

    ref = resolve_model(model or SMOLLM2)
    if ref.is_remote:
        return None
    from transformers import AutoTokenizer

    from harness.models.resolve import ensure_smollm2_tokenizer

    folder = ensure_smollm2_tokenizer() if ref.kind in ("embedded", "tiny") else ref.location
    return AutoTokenizer.from_pretrained(str(folder))


def data_check(file: str, against: list[str], model: str | None) -> int:
    from harness.data.chat import check_files

    path = Path(file)
    missing = [p for p in [file, *against] if not Path(p).is_file()]
    if missing:
        raise HarnessInputError([f"{p}: no such file" for p in missing])
    report = check_files(path, [Path(a) for a in against], _tokenizer(model))
    console = Console(width=140)
    table = Table(title=f"data check: {file}")
    table.add_column("check")
    table.add_column("result", overflow="fold")
    table.add_row("valid examples", str(report["examples"]))
    table.add_row("messages by role", ", ".join(f"{k}: {v}" for k, v in report["messages_by_role"].items()))
    if "tokens" in report:
        t = report["tokens"]
        table.add_row("tokens (chat template)", f"total {t['total']:,}, mean {t['mean']:.1f}, p50 {t['p50']:.0f}, "
                      f"p95 {t['p95']:.0f}, max {t['max']}")
    dups = report["duplicates"]
    table.add_row("exact duplicates in file", "none" if not dups else "; ".join(
        "lines " + ", ".join(map(str, d)) for d in dups[:20]))
    for other in report["against"]:
        exact = other["exact"]
        table.add_row(f"leakage vs {other['file']}", "none" if not exact else f"{len(exact)} identical examples: "
                      + ", ".join(f"line {a} = line {b}" for a, b in exact[:20]))
        same = other["same_prompt"]
        table.add_row(f"same prompt vs {other['file']}", "none" if not same else f"{len(same)}: "
                      + ", ".join(f"line {a} = line {b}" for a, b in same[:20]))
    console.print(table)
    if report["problems"]:
        raise HarnessInputError(report["problems"], title=f"data file {file} is invalid")
    leaked = any(o["exact"] for o in report["against"])
    return 1 if leaked else 0
