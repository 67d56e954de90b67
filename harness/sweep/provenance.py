"""What a run records about where it ran: the spec's git checkout and the versions of the libraries that matter."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def git_state(where: Path | None = None) -> tuple[str | None, bool | None]:
    """(sha, dirty) of the git checkout holding `where` (the spec's folder), if any."""
    try:
        sha = subprocess.run(["git", "-C", str(where or Path.cwd()), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        if sha.returncode:
            return None, None
        dirty = subprocess.run(["git", "-C", str(where or Path.cwd()), "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=5, check=False)
        return sha.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "trl", "bitsandbytes", "duckdb", "openai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
