"""The distributions a searched `sweep:` value may be (docs/search.md)."""

from __future__ import annotations

import builtins

from pydantic import BaseModel, ConfigDict, model_validator


class Distribution(BaseModel):
    """One searched sweep value: exactly one of loguniform / uniform / int ([low, high]) or choice ([values])."""

    model_config = ConfigDict(extra="forbid")

    loguniform: list[float] | None = None
    uniform: list[float] | None = None
    int: list[builtins.int] | None = None
    choice: list[float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("loguniform", "uniform", "int", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a distribution is one of {loguniform: [low, high]}, {uniform: [low, high]}, "
                             "{int: [low, high]} or {choice: [v1, v2, ...]}")
        values = getattr(self, given[0])
        if given[0] == "choice":
            if not values:
                raise ValueError("choice needs at least one value")
        elif len(values) != 2 or not values[0] < values[1]:
            raise ValueError(f"{given[0]} takes [low, high] with low < high")
        elif given[0] == "loguniform" and values[0] <= 0:
            raise ValueError("loguniform needs low > 0")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("loguniform", "uniform", "int", "choice") if getattr(self, k) is not None)

    @property
    def bounds(self) -> list[float]:
        return list(getattr(self, self.kind))

    def describe(self) -> str:
        return f"{self.kind} {self.bounds}"
