"""`harness init [DIR]`: write a starter experiment (a commented spec, a small chat data set, a README) to edit."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from harness.errors import HarnessInputError

# Package data of harness.spec (pyproject.toml ships them in the wheel); written under DIR with the same names.
FILES = ("spec.yaml", "README.md", "data/train.jsonl", "data/test.jsonl")
SOURCE = "starter_files"


def write_starter(folder: Path, *, force: bool = False) -> list[Path]:
    """Write the starter files under `folder` (created if missing); refuse to overwrite any unless `force`."""
    targets = [folder / rel for rel in FILES]
    if folder.exists() and not folder.is_dir():
        raise HarnessInputError(f"{folder}: exists and is not a folder; give `harness init` a folder to write into")
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        raise HarnessInputError(f"would overwrite {', '.join(str(t) for t in existing)}; pass --force to replace "
                                "them, or give another folder", title=f"harness init {folder}")
    source = importlib.resources.files("harness.spec") / SOURCE
    for rel, target in zip(FILES, targets, strict=True):
        entry = source
        for part in rel.split("/"):
            entry = entry / part
        text = entry.read_text(encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()  # --force replaces a link itself, never writes through it
        target.write_text(text, encoding="utf-8")
    return targets


def next_steps(folder: Path) -> list[str]:
    """What `harness init` prints after writing the files."""
    spec = folder / "spec.yaml"
    return [f"wrote a starter experiment in {folder}: {', '.join(FILES)}",
            f"run it:   harness sweep {spec}   (the embedded SmolLM2-135M-Instruct; a few minutes on a CPU)",
            "then:     harness report latest",
            f"make it yours: put your chat JSONL in {folder / 'data'}, and edit {spec} (README.md says what to change)"]
