"""Suites as versioned data: `suites/<name>/suite.yaml` (name, version, kind, options) plus JSONL items."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.errors import MAX_LISTED, HarnessInputError, did_you_mean
from harness.scores import JSONDict
from harness.textfiles import read_text

if TYPE_CHECKING:
    from harness.spec.schema import ExperimentSpec

FINGERPRINTED = (".jsonl", ".json", ".yaml", ".txt")  # a suite's data files: they enter its fingerprint
# A `kind: python` suite's code runs from its folder, so its .py files enter the fingerprint too; a built-in suite's
# generator script (build_items.py) made its items and is no input of its scores (its ids stay as they were).
CODE_KINDS = ("python",)
BUILTIN_FOLDER = "_builtin_suites"  # inside the installed package: the repository's suites/ (setup.py maps it)


@dataclass
class Suite:
    """One suite as the spec selected it, its options merged over the suite file's defaults."""

    name: str
    version: str
    kind: str
    description: str
    folder: Path
    options: JSONDict = field(default_factory=dict)  # as the suite kind's scorer takes them (harness.scorers)
    items_file: str | None = None
    where: str = ""  # where the spec selects it, e.g. "spec.yaml: key 'suites[2]': " (for errors)
    spec_dir: Path | None = None  # the folder of the spec that selects it (options may name files there)

    def items(self) -> list[dict[str, Any]]:  # Any: free-form JSON each scorer reads its own way (harness.scorers)
        if not self.items_file:
            return []
        return read_jsonl(self.path(self.items_file))

    def path(self, rel: str) -> Path:
        """A file of the suite; it may not point outside the suite's folder."""
        p = (self.folder / rel).resolve()
        if self.folder.resolve() not in p.parents:
            raise HarnessInputError(f"{self.folder / 'suite.yaml'}: {rel!r} points outside the suite folder")
        return p

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps([self.name, self.version, self.kind, self.options], sort_keys=True,
                                      default=str).encode())
        for p in sorted(self.folder.rglob("*")):
            if p.is_file() and (p.suffix in FINGERPRINTED or (p.suffix == ".py" and self.kind in CODE_KINDS)):
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return h.hexdigest()[:16]

    def identity(self) -> JSONDict:
        """What enters variant ids and the runs table: a changed suite means new scores."""
        return {"name": self.name, "version": self.version, "kind": self.kind, "options": self.options,
                "fingerprint": self.fingerprint()}


def read_jsonl(path: Path) -> list[dict[str, Any]]:  # Any: as `Suite.items`
    rows = []
    for i, line in enumerate(read_text(path).splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise HarnessInputError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
    return rows


def suite_roots(spec_dir: Path | None = None) -> list[Path]:
    """Folders searched for suites by name, in order."""
    roots: list[Path] = []
    if os.environ.get("HARNESS_SUITES_DIR"):
        roots.append(Path(os.environ["HARNESS_SUITES_DIR"]))
    if spec_dir is not None:
        for d in [spec_dir, *spec_dir.parents]:
            if (d / "suites").is_dir():
                roots.append(d / "suites")
                break
    roots.append(Path.cwd() / "suites")
    builtin = builtin_suites_dir()
    if builtin is not None:
        roots.append(builtin)
    seen: list[Path] = []
    for r in roots:
        if r.is_dir() and r.resolve() not in seen:
            seen.append(r.resolve())
    return seen


def builtin_suites_dir() -> Path | None:
    """The built-in suites: package data of the installed package (`harness/_builtin_suites` in the wheel, found
    through importlib.resources); when `harness` runs from its source tree (an editable install or PYTHONPATH), the
    tree's top-level suites/ folder, which is what setup.py ships as that package data."""
    package = importlib.resources.files("harness")
    shipped = package / BUILTIN_FOLDER
    if isinstance(shipped, Path) and shipped.is_dir():
        return shipped
    if isinstance(package, Path) and (package.parent / "pyproject.toml").is_file() and (package.parent / "suites").is_dir():
        return package.parent / "suites"
    return None


def available(spec_dir: Path | None = None) -> list[str]:
    return sorted(_by_name(suite_roots(spec_dir)))


def _by_name(roots: list[Path]) -> dict[str, Path]:
    """Every suite name in the roots -> its folder (the first root that has it), resolved."""
    found: dict[str, Path] = {}
    for root in roots:
        for p in root.glob("*/suite.yaml"):
            if p.is_file():
                found.setdefault(p.parent.name, p.parent.resolve())
    return found


def load_suite(folder: Path, overrides: JSONDict | None = None) -> Suite:
    f = folder / "suite.yaml"
    try:
        meta = yaml.safe_load(read_text(f)) or {}
    except yaml.YAMLError as exc:
        raise HarnessInputError(f"{f}: not valid YAML ({exc})") from None
    missing = [k for k in ("name", "version", "kind") if k not in meta]
    if missing:
        raise HarnessInputError(f"{f}: missing key(s) {', '.join(missing)} (a suite.yaml needs name, version, kind)")
    options = {**(meta.get("options") or {}), **(overrides or {})}
    return Suite(str(meta["name"]), str(meta["version"]), str(meta["kind"]), str(meta.get("description", "")),
                 folder.resolve(), options, meta.get("items"))


def _plain_name(name: str) -> bool:
    """A suite name looked up in the suite roots: one path component, not '.' or '..'."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") and not name.startswith("~")


def resolve_suites(spec: ExperimentSpec) -> list[Suite]:
    """The spec's `suites:` list -> Suite objects; unknown names get 'did you mean' and the known list.
    (Whether a suite's kind and options fit a registered scorer is checked by `harness.scorers.check_suites`.)
    Linear in the entries: each folder is looked up and read once, however often the list names it."""
    problems: list[str] = []
    suites: list[Suite] = []
    by_name = _by_name(suite_roots(spec.spec_dir))  # one listing of the roots, not a lookup per entry
    loaded: dict[Path, Suite] = {}  # a folder already read -> its suite (a second entry for it is a duplicate)
    twice: set[str] = set()
    known = sorted(by_name)
    unknown = 0
    for i, entry in enumerate(spec.suites):
        where = f"{spec.source_path}: key 'suites[{i}]': "
        name: object = entry
        overrides: JSONDict = {}
        if isinstance(entry, dict):
            name, options = entry.get("name") or entry.get("path"), entry.get("options") or {}
            if not isinstance(options, dict):
                problems.append(f"{where}'options' is a mapping of the suite kind's options (e.g. {{sample: 50}}); "
                                f"got {options!r}")
                continue
            overrides = dict(options)
        folder = None
        plain = isinstance(entry, dict) and not entry.get("path") or isinstance(entry, str) and "/" not in entry
        if plain and not _plain_name(str(name)):
            problems.append(f"{where}name {name!r} is not a suite name (a name holds no '/', '\\' or '..' and is not "
                            "absolute); give a suite folder next to the spec as `path: RELATIVE/PATH` instead.")
            continue
        if isinstance(entry, dict) and entry.get("path") or (isinstance(entry, str) and "/" in entry):
            try:
                folder = spec.resolve_path(str(name), f"suites[{i}]")
            except HarnessInputError as exc:
                problems += exc.problems
                continue
        else:
            folder = by_name.get(str(name))
        if folder is not None and folder in loaded:  # folders here are resolved: one folder, one key
            twice.add(loaded[folder].name)
            continue
        if folder is None or not (folder / "suite.yaml").is_file():
            unknown += 1
            if unknown > MAX_LISTED:  # past what an error lists: counted, not explained again
                problems.append(f"{where}unknown suite {name!r}")
                continue
            problems.append(f"{where}unknown suite {name!r}.{did_you_mean(str(name), known)} "
                            f"Known suites: {', '.join(known) or '(none found)'}; or give a path to a suite folder.")
            continue
        try:
            suite = load_suite(folder, overrides)
            suite.where = where
            suite.spec_dir = spec.spec_dir
        except HarnessInputError as exc:
            problems += exc.problems
            continue
        loaded[folder] = suite
        suites.append(suite)
    twice |= {n for n, count in Counter(s.name for s in suites).items() if count > 1}
    if twice:
        problems.append(f"{spec.source_path}: key 'suites': suite(s) {', '.join(sorted(twice))} listed twice")
    if problems:
        raise HarnessInputError(problems, title=f"spec {spec.source_path}: suites")
    return suites


def with_free_checks(suites: list[Suite], spec: ExperimentSpec) -> list[Suite]:
    """The spec's suites plus the checks that cost nothing and every fine-tuning guide asks for first: overfitting
    (the built-in `divergence` suite reads each trained variant's train log, so it costs no model call and finds
    nothing where nothing trained or no validation split was held out), unless the spec lists a divergence suite
    itself or turns it off with `findings: {overfitting: false}`. Added to every run, so runs of one spec stay
    comparable whether they train or score a given checkpoint."""
    from harness.spec.findings import check_settings

    overfitting = check_settings(spec.findings, "overfitting")
    if overfitting is False or any(s.kind == "divergence" for s in suites):
        return suites
    folder = next((r / "divergence" for r in suite_roots(spec.spec_dir) if (r / "divergence" / "suite.yaml").is_file()),
                  None)
    if folder is None:
        return suites
    suite = load_suite(folder, {"min_rise": overfitting["min_rise"]})
    suite.where = f"{spec.source_path}: added (findings.overfitting): "
    return [*suites, suite]
