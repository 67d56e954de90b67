"""The layout's rules, read from the source (AST): one owner per resource, stages in order, no import cycles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "harness"
# Each stage may import its own package and the stages before it, never one after it.
LAYERS = [
    {"errors", "stats", "progress", "textfiles", "output_file"},
    {"spec"},
    {"data", "results", "scores"},
    {"models", "managed"},
    {"scorers"},
    {"train", "store"},
    {"verdicts"},
    {"report", "gate", "tracking"},
    {"sweep", "search"},  # search drives the sweep's scheduler for its trials; the sweep starts a search
    {"commands", "cli", "testing", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
SQL = re.compile(r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+(TABLE|VIEW|OR))",
                 re.IGNORECASE | re.DOTALL)


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(harness modules, top-level external packages) imported anywhere in the file (lazy imports too)."""
    mine, ext = set(), set()
    pkg = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        for n in names:
            (mine if n == "harness" or n.startswith("harness.") else ext).add(n if n.startswith("harness") else
                                                                                n.split(".")[0])
    return {m for m in mine if m in MODULES}, ext


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _owners(package: str) -> list[str]:
    return sorted(m for m, (_, ext) in GRAPH.items() if package in ext)


def test_only_the_store_imports_duckdb_and_holds_sql() -> None:
    assert all(m.startswith("harness.store") for m in _owners("duckdb")), _owners("duckdb")
    outside = []
    for m, p in MODULES.items():
        if m.startswith("harness.store"):
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                outside.append(f"{m}:{node.lineno}")
    assert outside == []


def test_only_the_openai_package_imports_openai() -> None:
    assert _owners("openai") and all(m.startswith("harness.managed") for m in _owners("openai")), _owners("openai")


def test_report_and_gate_import_no_torch_transformers_or_peft_even_indirectly() -> None:
    heavy = {"torch", "transformers", "peft", "bitsandbytes", "trl", "accelerate"}
    for start in [m for m in MODULES if _stage(m) in ("report", "gate")]:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            assert not (GRAPH[m][1] & heavy), f"{start} reaches {m}, which imports {GRAPH[m][1] & heavy}"
            todo += GRAPH[m][0]


def test_stages_import_only_earlier_stages() -> None:
    wrong = []
    for m, (deps, _) in GRAPH.items():
        here = _stage(m)
        for d in deps:
            there = _stage(d)
            if there != here and there != "__init__" and RANK.get(there, 0) > RANK.get(here, 0):
                wrong.append(f"{m} ({here}) imports {d} ({there})")
    assert wrong == []


def test_every_module_belongs_to_a_known_stage() -> None:
    assert {_stage(m) for m in MODULES} - set(RANK) - {"__init__"} == set()


def test_no_import_cycles() -> None:
    graph = {m: {d for d in deps if d != m} for m, (deps, _) in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_private_names_do_not_cross_modules() -> None:
    crossing = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
                crossing += [f"{m} imports {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and a.name != "__version__"]
    assert crossing == []


@pytest.mark.parametrize("command", [["report", "latest", "-o", "r.html"], ["gate", "latest", "--baseline", "b.json"]])
def test_report_and_gate_do_not_load_torch_at_runtime(tmp_path: Path, command: list[str]) -> None:
    """Run the real commands on a real store in a fresh interpreter and look at what got imported."""
    code = (
        "import sys\n"
        "from harness.testing.synthetic import Synthetic, make_synthetic_store\n"
        "from harness.gate.baseline import save_baseline\n"
        "make_synthetic_store('r.duckdb', Synthetic(n_variants=4, n_heldout=20))\n"
        "save_baseline('r.duckdb', 'latest', variant=None, output='b.json')\n"
        "import harness.cli\n"
        f"code = harness.cli.main({command + ['--db', 'r.duckdb']!r})\n"
        "print(code, sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.endswith("[]") and last.split()[0] in ("0", "1"), out.stdout[-2000:]
