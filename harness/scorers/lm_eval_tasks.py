"""lm-evaluation-harness tasks for the `lm-eval` suite kind: the task index (lm-eval's built-in tasks and the suite's
`include_path` folder), each named task loaded with its data, and the seeded sample that `limit` draws.

Local task files: a task YAML in `include_path` may read its documents from files beside it (`dataset_path: json` and
`dataset_kwargs: {data_files: ...}`); relative paths there are resolved against the YAML's own folder (as lm-eval
resolves `!function`), never the working directory, and may not leave the suite's folder. Everything here imports
lm_eval lazily: it is an optional extra.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError, did_you_mean
from harness.models.lm_eval_types import TaskDict

if TYPE_CHECKING:
    from lm_eval.tasks import TaskManager

INSTALL_HINT = "pip install 'finetune-harness[lm-eval]'"
LOCAL_HINT = ("point the task at local files instead: a task YAML in the suite's include_path folder with "
              "`dataset_path: json` and `dataset_kwargs: {data_files: {test: FILE.jsonl}}` (paths relative to the "
              "YAML; see docs/lm-eval.md)")
_MANAGERS: dict[tuple[str, bool], TaskManager] = {}  # (include folder and its contents' stamp, built-ins) -> TaskManager


def require_lm_eval(where: str = "") -> None:
    """lm-evaluation-harness is importable, or an error that says how to install it."""
    if importlib.util.find_spec("lm_eval") is None:
        raise HarnessInputError(f"{where}suite kind 'lm-eval' runs lm-evaluation-harness, which is not installed: "
                                f"{INSTALL_HINT}")


@dataclass
class LoadedTasks:
    """Named tasks as lm-eval's evaluator takes them, with what each name stands for."""

    task_dict: TaskDict
    leaves: dict[str, list[str]]  # each requested name -> the leaf tasks it runs (itself for a plain task)
    within: dict[str, dict[str, list[str]]]  # requested name -> subgroup below it -> its leaf tasks
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # leaf -> (documents scored, documents it has)


def yaml_problems(include: Path) -> list[str]:
    """Task YAMLs in `include` that lm-eval's index would skip without a word (it drops files that do not parse)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    problems = []
    for path in sorted(include.rglob("*.yaml")):
        try:
            cfg = load_yaml(path, resolve_func=False, recursive=True)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file to fix
            problems.append(f"{path}: lm-eval cannot read this task YAML ({exc.__class__.__name__}: {exc})")
            continue
        if not any(k in cfg for k in ("task", "group", "class")):
            problems.append(f"{path}: neither 'task' nor 'group' is set, so lm-eval ignores it")
    return problems


def manager(include: Path | None, suite_folder: Path, *, builtins: bool) -> TaskManager:
    """lm-eval's TaskManager over `include` (and its built-in tasks when `builtins`), cached per process while the
    folder's files are unchanged; relative data paths of the include folder's task YAMLs made absolute."""
    from lm_eval.tasks import TaskManager

    key = (_stamp(include), builtins)
    if key not in _MANAGERS:
        tm = TaskManager(include_path=str(include) if include else None, include_defaults=builtins)
        if include is not None:
            _resolve_local_files(tm, include, suite_folder)
        _MANAGERS[key] = tm
    return _MANAGERS[key]


def _stamp(include: Path | None) -> str:
    """The include folder and the names, sizes and times of its files: a changed file means a fresh index."""
    if include is None:
        return ""
    h = hashlib.sha256(str(include).encode())
    for p in sorted(include.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _resolve_local_files(tm: TaskManager, include: Path, suite_folder: Path) -> None:
    """Each include-folder task whose `data_files`/`data_dir` (or a `dataset_path` folder) is relative gets them
    resolved against its YAML's folder, so the suite works from any working directory."""
    from lm_eval.tasks._yaml_loader import load_yaml

    for entry in tm.task_index.values():
        path, raw = getattr(entry, "yaml_path", None), getattr(entry, "cfg", None) or {}
        if path is None or include.resolve() not in Path(path).resolve().parents or "task" not in raw \
                or "group" in raw or "class" in raw:  # plain YAML tasks only (not groups, not Python tasks)
            continue
        cfg = load_yaml(path, resolve_func=True, recursive=True)
        if _absolute(cfg, Path(path).resolve().parent, suite_folder.resolve(), Path(path)):
            entry.cfg, entry.yaml_path = cfg, None  # built from this resolved config, not re-read from the file


def _absolute(cfg: dict[str, object], base: Path, suite_folder: Path, yaml_path: Path) -> bool:
    """Rewrite relative local paths of one task config in place; True when something changed."""
    kwargs = cfg.get("dataset_kwargs")
    changed = False

    def fix(value: object, key: str) -> object:
        nonlocal changed
        if isinstance(value, list):
            return [fix(v, key) for v in value]
        if isinstance(value, dict):
            return {k: fix(v, key) for k, v in value.items()}
        if not isinstance(value, str) or "://" in value or Path(value).is_absolute():
            return value
        p = (base / value).resolve()
        if suite_folder not in p.parents:
            raise HarnessInputError(f"{yaml_path}: dataset_kwargs.{key} {value!r} points outside the suite folder "
                                    f"{suite_folder}; keep the task's data files inside it")
        changed = True
        return str(p)

    if isinstance(kwargs, dict):
        for key in ("data_files", "data_dir"):
            if key in kwargs:
                kwargs[key] = fix(kwargs[key], key)
    local = cfg.get("dataset_path")
    if isinstance(local, str) and not Path(local).is_absolute() and (base / local).is_dir():
        cfg["dataset_path"] = str((base / local).resolve())
        changed = True
    return changed


def check_names(names: list[str], include: Path | None, suite_folder: Path, where: str) -> TaskManager:
    """The TaskManager that knows every name (the include folder's alone when it has them all), or an error naming
    each unknown one with the closest known name."""
    if include is not None:
        local = manager(include, suite_folder, builtins=False)
        if all(n in local.all_tasks for n in names):
            return local
    tm = manager(include, suite_folder, builtins=True)
    unknown = [n for n in names if n not in tm.all_tasks]
    if unknown:
        scope = f"lm-eval's tasks or {include}" if include is not None else "lm-eval's tasks (no include_path given)"
        raise HarnessInputError([f"{where}option 'tasks': {n!r} is not a task, group or tag in {scope}."
                                 f"{did_you_mean(n, tm.all_tasks)} List them with `lm-eval ls tasks`"
                                 for n in unknown])
    return tm


def load(names: list[str], include: Path | None, suite_folder: Path, where: str) -> LoadedTasks:
    """Build every named task with its documents; every name that cannot be loaded is reported, with how to fix it."""
    tm = check_names(names, include, suite_folder, where)
    out = LoadedTasks({"tasks": {}, "groups": {}, "group_map": {}}, {}, {})
    problems: list[str] = []
    owner: dict[str, str] = {}
    for name in names:
        try:
            try:
                got = tm.load([name])
            except KeyError:  # an include-folder group naming built-in tasks: load it with the built-ins indexed
                got = manager(include, suite_folder, builtins=True).load([name])
        except (ConnectionError, TimeoutError) as exc:
            problems.append(f"{where}task {name!r}: its dataset comes from the Hugging Face Hub, which cannot be "
                            f"reached from here, and it is not in the local datasets cache ({exc}). Run it once "
                            f"where the Hub is reachable (the cache keeps it), or {LOCAL_HINT}")
            continue
        except FileNotFoundError as exc:
            problems.append(f"{where}task {name!r}: its dataset was not found ({exc}). A local file is read relative "
                            f"to its task YAML; a Hub dataset must exist and be readable (hf auth login for a gated "
                            f"one); or {LOCAL_HINT}")
            continue
        for leaf in got["tasks"]:
            if leaf in owner:
                problems.append(f"{where}option 'tasks': task {leaf!r} is run by both {owner[leaf]!r} and {name!r}; "
                                "name it once")
            owner.setdefault(leaf, name)
        out.task_dict["tasks"].update(got.get("tasks") or {})
        out.task_dict["groups"].update(got.get("groups") or {})
        out.task_dict["group_map"].update(got.get("group_map") or {})
        out.leaves[name] = list(got["tasks"])
        out.within[name] = {g: _leaves_of(g, got.get("group_map") or {}) for g in (got.get("group_map") or {})
                            if g != name}
    if problems:
        raise HarnessInputError(problems, title="lm-eval tasks")
    return out


def _leaves_of(group: str, group_map: dict[str, list[str]]) -> list[str]:
    """The leaf tasks under a group, through its subgroups."""
    out: list[str] = []
    for child in group_map.get(group, []):
        out += _leaves_of(child, group_map) if child in group_map else [child]
    return out


def draw_samples(loaded: LoadedTasks, limit: int | float | None, seed: int) -> dict[str, list[int]] | None:
    """Each leaf task's documents to score: all of them, or a seeded random sample of `limit` (a count, or a
    fraction below 1 rounded up as lm-eval rounds it) drawn the same for every variant; sizes noted in `loaded`."""
    chosen: dict[str, list[int]] = {}
    for leaf, task in loaded.task_dict["tasks"].items():
        n = len(task.eval_docs)
        k = n if limit is None else min(n, math.ceil(n * limit) if limit < 1 else int(limit))
        loaded.sizes[leaf] = (k, n)
        chosen[leaf] = list(range(n)) if k == n else sorted(random.Random(f"{seed}:{leaf}").sample(range(n), k))
    return None if limit is None else chosen
