"""The wheel works on its own: built from the source, installed (not editable) into a fresh virtual environment, it
runs `harness init` and a sweep with built-in suites by name from a folder outside the checkout, and every file the
processes open or list lies outside the checkout (an audit hook in the new environment records them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from pathlib import Path

import duckdb
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
BUILTIN = ("general", "safety", "instructions", "heldout")

# Installed into the new environment only (a .pth line starting with `import` runs at start-up): with
# HARNESS_TEST_OPEN_LOG set, each process appends every path it opens or lists to LOG.<pid>.
AUDIT = """\
import os, sys

_log = os.environ.get("HARNESS_TEST_OPEN_LOG")
if _log:
    _out = open(f"{_log}.{os.getpid()}", "a", encoding="utf-8", buffering=1)

    def _hook(event, args):
        if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
            _out.write(os.path.abspath(os.fsdecode(args[0])) + "\\n")

    sys.addaudithook(_hook)
"""

def _source_copy(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked and new, not ignored): no build/ or egg-info left over."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                         check=False)
    assert out.returncode == 0, f"{cmd}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out


def _shipped(package: str, folder: Path) -> set[Path]:
    """The files under `folder` that pyproject.toml's package-data globs for `package` put in the wheel."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    return {p for pattern in data.get(package, []) for p in folder.glob(pattern) if p.is_file()}


def test_package_data_ships_the_starter_files_and_every_file_a_suite_fingerprint_reads() -> None:
    """Fast guard for the slow test below: a new starter file or suite file type is in the wheel's globs."""
    from harness.data.suites import FINGERPRINTED
    from harness.spec.starter import FILES, SOURCE

    starter = REPO / "harness" / "spec" / SOURCE
    assert {starter / rel for rel in FILES} <= _shipped("harness.spec", starter.parent)
    suites = REPO / "suites"
    fingerprinted = {p for p in suites.rglob("*") if p.is_file() and p.suffix in FINGERPRINTED}
    assert fingerprinted - _shipped("harness._builtin_suites", suites) == set()


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_init_and_a_sweep_outside_the_checkout() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to build the wheel from its files")
    # A folder of its own rather than tmp_path: pytest runs started meanwhile on a shared machine rotate old basetemps.
    with tempfile.TemporaryDirectory(prefix="harness-wheel-") as tmp:
        _wheel_test(Path(tmp))


def _wheel_test(tmp_path: Path) -> None:
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HARNESS_SUITES_DIR", "PYTHONHOME")}
    env |= {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "1"}

    # 1. Build the wheel from a copy of the source (no network: this environment's setuptools builds it).
    src = _source_copy(tmp_path / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", src,
          "-w", tmp_path / "dist"], cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("finetune_harness-*.whl")

    # 2. A fresh venv holding the wheel alone; the dependencies (torch, transformers, ...) come from this
    # environment's site-packages through a plain path line in a .pth file, which adds the folder without running
    # its .pth files, so the checkout's editable finder (if any) stays inactive there.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=tmp_path, env=env)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path,
                     env=env).stdout.strip())
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_shared_site_packages.pth").write_text("".join(f"{p}\n" for p in shared), encoding="utf-8")
    (site / "_open_audit.py").write_text(AUDIT, encoding="utf-8")
    (site / "_open_audit.pth").write_text("import _open_audit\n", encoding="utf-8")

    # 3. From a folder outside the checkout: where harness comes from, and the shipped suites' identity.
    work = tmp_path / "work"
    work.mkdir()
    where = json.loads(_run([python, "-c", (
        "import json, harness; from harness.data.suites import builtin_suites_dir, load_suite\n"
        f"d = builtin_suites_dir(); print(json.dumps({{'file': harness.__file__, 'suites': str(d), "
        f"'fingerprints': {{n: load_suite(d / n).fingerprint() for n in {list(BUILTIN)!r}}}}}))")],
        cwd=work, env=env).stdout)
    assert Path(where["file"]).is_relative_to(site), where
    assert Path(where["suites"]) == site / "harness" / "_builtin_suites"
    from harness.data.suites import load_suite

    assert where["fingerprints"] == {n: load_suite(REPO / "suites" / n).fingerprint() for n in BUILTIN}

    # 4. harness init, then a sweep of the starter on tiny-random-llama with built-in suites by name.
    log = tmp_path / "opened"
    audited = env | {"HARNESS_TEST_OPEN_LOG": str(log)}
    harness = venv / "bin" / "harness"
    out = _run([harness, "init", "exp"], cwd=work, env=audited)
    assert "harness sweep exp/spec.yaml" in out.stdout
    spec = work / "exp" / "spec.yaml"
    starter = yaml.safe_load(spec.read_text(encoding="utf-8"))
    starter["model"] = "tiny-random-llama"
    starter["train"] |= {"max_steps": 4, "eval_every_epochs": 1.0}  # the test is about packaging, not learning
    starter["suites"] = [{"name": "heldout", "options": {"max_new_tokens": 8}}, "general",
                         {"name": "safety", "options": {"max_new_tokens": 8}},
                         {"name": "instructions", "options": {"sample": 4, "max_new_tokens": 8}}]
    spec.write_text(yaml.safe_dump(starter, sort_keys=False), encoding="utf-8")
    out = _run([harness, "sweep", "exp/spec.yaml", "--db", "results.duckdb"], cwd=work, env=audited)

    with duckdb.connect(str(work / "results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("finished",)]
        variants = dict(con.execute("SELECT method, status FROM variants").fetchall())
        suites = {r[0] for r in con.execute("SELECT DISTINCT suite FROM scores").fetchall()}
    assert variants == {"base": "finished", "lora": "finished"}, variants
    assert set(BUILTIN) <= suites, suites

    # 5. Nothing was opened or listed in the checkout (its virtual environment, where the dependencies live, aside).
    opened = {line for p in tmp_path.glob("opened.*") for line in p.read_text(encoding="utf-8").splitlines()}
    env_root = Path(sys.prefix).resolve()
    from_checkout = sorted(p for p in opened if Path(p).resolve().is_relative_to(REPO)
                           and not Path(p).resolve().is_relative_to(env_root))
    assert from_checkout == []
    shipped = site / "harness" / "_builtin_suites"
    for name in ("general", "safety", "instructions"):
        assert str(shipped / name / "items.jsonl") in opened, name
    assert any(p.startswith(str(site / "harness" / "scorers")) for p in opened)
    print(f"wheel test: {time.monotonic() - started:.0f} s")
