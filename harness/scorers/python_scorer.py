"""`python`: a scorer from the user's own repository (`scorer: my_scorers.py:tone_check`, the file inside the suite's
folder), declared with the same `@scorer(kind, metrics=[Metric(...)])` decorator the built-in scorers use.

Loading the file runs it, as pytest runs a conftest.py: only name files you trust. Once loaded, its metrics are
stored per sample, compared with base, corrected with the run's other comparisons, become findings and gate rules
and appear in the report exactly like a built-in scorer's, from their declarations.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from harness.data.suites import Suite
from harness.errors import HarnessInputError
from harness.scorers.registry import kind_of, resolver
from harness.scores import JSONDict

_LOADED: dict[tuple[str, str], ModuleType] = {}  # (resolved path, sha256) -> module, so a file runs once a process


@resolver("python")
def load_user_scorer(suite: Suite | None, options: JSONDict) -> tuple[str, JSONDict, JSONDict]:
    """The registered kind the suite's `scorer: FILE.py:FUNCTION` names, the options left for it, and where it came
    from (file, function, sha256 of the file) for the stored record."""
    where = f"{suite.folder / 'suite.yaml'}: option 'scorer'" if suite is not None else "option 'scorer'"
    ref = options.pop("scorer", None)
    if not isinstance(ref, str) or ":" not in ref or not ref.rpartition(":")[0].endswith(".py"):
        raise HarnessInputError(f"{where}: FILE.py:FUNCTION, the file inside the suite's folder (e.g. "
                                f"my_scorers.py:tone_check); got {ref!r}")
    if suite is None:
        raise HarnessInputError(f"{where}: a python scorer is loaded from its suite's folder; none was given")
    file, _, function = ref.rpartition(":")
    path = suite.path(file)  # refuses a path outside the suite's folder (.., absolute, symlinks)
    if not path.is_file():
        raise HarnessInputError(f"{where}: no file {path} (the path is relative to the suite's folder {suite.folder})")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    module = _load(path, sha, where)
    factory = getattr(module, function, None)
    if factory is None:
        names = sorted(n for n, v in vars(module).items() if callable(v) and kind_of(v))
        raise HarnessInputError(f"{where}: {path.name} has no function {function!r}. Scorers it defines: "
                                f"{', '.join(names) or '(none)'}")
    kind = kind_of(factory)
    if kind is None:
        raise HarnessInputError(f"{where}: {path.name}:{function} is not a registered scorer; decorate it with "
                                "@scorer('KIND', metrics=[Metric(...)]) from harness.scorers, as the built-in ones are")
    return kind, options, {"python": {"file": file, "function": function, "sha256": sha}}


def _load(path: Path, sha: str, where: str) -> ModuleType:
    """Import the user's file under a private module name (once per content)."""
    key = (str(path.resolve()), sha)
    if key in _LOADED:
        return _LOADED[key]
    name = f"harness_user_scorers.{path.stem}_{sha[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HarnessInputError(f"{where}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ValueError as exc:  # the decorator refuses a kind that is taken or badly named
        sys.modules.pop(name, None)
        raise HarnessInputError(f"{where}: {path.name}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code failed to import: say where, keep the cause
        sys.modules.pop(name, None)
        raise HarnessInputError(f"{where}: importing {path} failed: {exc.__class__.__name__}: {exc}") from None
    _LOADED[key] = module
    return module
