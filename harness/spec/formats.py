"""The data formats a spec may name (`data.format`) and the fields of each that `data.columns` may map."""

from __future__ import annotations

from harness.errors import did_you_mean

FORMATS = ("chat", "prompt-completion", "alpaca", "sharegpt")
REQUIRED: dict[str, tuple[str, ...]] = {"chat": ("messages",), "prompt-completion": ("prompt", "completion"),
                                        "alpaca": ("instruction", "output"), "sharegpt": ("conversations",)}
OPTIONAL: dict[str, tuple[str, ...]] = {"chat": (), "prompt-completion": (), "alpaca": ("input", "system"),
                                        "sharegpt": ("system", "from", "value")}


def fields_of(fmt: str) -> tuple[str, ...]:
    """Every field of a format (or of every format for 'auto') that data.columns may map."""
    names = FORMATS if fmt == "auto" else (fmt,)
    return tuple(dict.fromkeys(f for n in names for f in (*REQUIRED[n], *OPTIONAL[n])))


def column_problems(columns: dict[str, str], fmt: str) -> list[str]:
    """The keys of a column mapping that are no field of `fmt`, each with what is allowed."""
    allowed = list(fields_of(fmt))
    out = []
    for key, col in columns.items():
        if key not in allowed:
            out.append(f"{key!r} is no field of {'any format' if fmt == 'auto' else fmt}.{did_you_mean(key, allowed)}"
                       f" Map these fields to your column names: {', '.join(allowed)}")
        elif not isinstance(col, str) or not col:
            out.append(f"{key!r}: give the column name as text")
    return out
