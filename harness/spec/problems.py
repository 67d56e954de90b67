"""A pydantic ValidationError of a YAML file -> one 'FILE:LINE: key K: what is wrong' per key, with allowed keys."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from harness.errors import did_you_mean
from harness.spec.yaml_lines import Loc, line_of

# loc parts pydantic adds for the member of a union it tried ("str", "dict[str,any]", "literal['a','b']")
_MEMBER_TAG = re.compile(r"(str|int|float|bool|none|(literal|dict|list|function-\w+)\[.*\])")


def validation_problems(exc: ValidationError, model: type[BaseModel], root: yaml.Node | None,
                        path: str | Path) -> list[str]:
    """Every problem of `exc`, with its line in `root`; a union's alternatives at one key are one problem."""
    by_key: dict[Loc, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and _MEMBER_TAG.fullmatch(p)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = allowed_keys(model, loc)
            hint = did_you_mean(str(loc[-1]), allowed).strip()
            msg = f"unknown key. {hint + ' ' if hint else ''}Allowed here: {', '.join(allowed) or '(none)'}"
        elif err["type"] == "literal_error":
            allowed = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
            msg = f"{msg}; got {err.get('input')!r}.{did_you_mean(str(err.get('input')), allowed)}"
        msgs = by_key.setdefault(loc, [])
        if msg not in msgs:
            msgs.append(msg)
    problems = []
    for loc, msgs in by_key.items():
        key = ".".join(str(p) for p in loc) or "(top level)"
        text = msgs[0] if len(msgs) == 1 else msgs[0] + ", or " + ", or ".join(
            m.removeprefix("Input should be ") for m in msgs[1:])
        problems.append(f"{path}:{line_of(root, loc)}: key '{key}': {text}")
    return problems


def allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys a user may write at the mapping holding `loc` (fields set by the harness itself left out)."""
    cur: object = model
    for part in loc[:-1]:
        field = _fields(cur).get(str(part))  # a list position names no field
        if field is None:
            return []
        cur = field.annotation
    return [name for name, f in _fields(cur).items() if not f.exclude]


def _fields(annotation: object) -> dict[str, FieldInfo]:
    """The fields of the pydantic model in an annotation (`X`, `X | None`), else {}."""
    for t in (annotation, *get_args(annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return dict(t.model_fields)
    return {}
