"""The spec's `gate:` block: rules for `harness gate` (docs/ci-gate.md), validated with every problem named."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import HarnessInputError, did_you_mean
from harness.textfiles import read_text


class RatingRules(BaseModel):
    """`gate.ratings`: rules on the candidate's human ratings (docs/review.md), keyed by rubric criterion. min/max
    bound its mean (a yes/no criterion's mean is its rate of yes); max_drop/max_rise bound the change against the
    baseline's ratings, paired by item."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_drop: dict[str, float | None] = Field(default_factory=dict)
    max_rise: dict[str, float | None] = Field(default_factory=dict)
    min_: dict[str, float | None] = Field(default_factory=dict, alias="min")
    max_: dict[str, float | None] = Field(default_factory=dict, alias="max")

    @field_validator("max_drop", "max_rise")
    @classmethod
    def _non_negative(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        bad = [k for k, x in v.items() if x is not None and x < 0]
        if bad:
            raise ValueError(f"allowances must be >= 0 (a drop of 0.5 is written 0.5); check {', '.join(bad)}")
        return v

    def table(self, rule: str) -> dict[str, float | None]:
        return {"max_drop": self.max_drop, "max_rise": self.max_rise, "min": self.min_, "max": self.max_}[rule]

    def criteria(self) -> set[str]:
        return {k for rule in ("max_drop", "max_rise", "min", "max") for k in self.table(rule)}


class GateRules(BaseModel):
    """The `gate:` block. Metric keys are `<suite>.<metric>` as stored in `scores` (shell-style * patterns allowed)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    baseline: str | None = None  # informational: the baseline file CI passes with --baseline
    defaults: bool = True  # merge DEFAULT_METRIC_RULES (false: only the rules written here)
    max_drop: dict[str, float | None] = Field(default_factory=dict)  # fails where the CI shows a bigger drop
    max_rise: dict[str, float | None] = Field(default_factory=dict)  # the same for lower-is-better metrics
    min_: dict[str, float | None] = Field(default_factory=dict, alias="min")  # absolute floor on the candidate
    max_: dict[str, float | None] = Field(default_factory=dict, alias="max")  # absolute ceiling on the candidate
    no_findings: list[str] | None = None  # finding checks the candidate may not have ('any' for all)
    require_same_test_set: bool = True
    require_same_suite_versions: bool = True
    require_same_suite_content: bool = False  # also fail when a suite's files/options changed without a version bump
    limits_on: Literal["value", "ci"] = "value"  # min/max test the point value, or fail only when the whole CI is beyond
    confidence: float = 0.95
    resamples: int = 2000
    # the drop/rise rules compare with the baseline several times in one gate: bonferroni gives each interval
    # 1 - (1 - confidence) / k so that noise alone fails the gate at most 1 - confidence of the time
    correction: Literal["bonferroni", "none"] = "bonferroni"
    # a drop/rise rule whose allowance is smaller than what its data can detect: warn (default) or fail
    blind_rules: Literal["warn", "fail"] = "warn"
    # rules on human ratings: {min: {accuracy: 3.5}, max_drop: {accuracy: 0.5}, max: {hallucination: 0.2}}; blind
    # (skipped with a warning, or failed under blind_rules: fail) while the candidate or baseline has no ratings
    ratings: RatingRules = Field(default_factory=RatingRules)

    @field_validator("max_drop", "max_rise")
    @classmethod
    def _non_negative(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        bad = [k for k, x in v.items() if x is not None and x < 0]
        if bad:
            raise ValueError(f"allowances must be >= 0 (a drop of 0.02 is written 0.02); check {', '.join(bad)}")
        return v

    @field_validator("confidence")
    @classmethod
    def _conf(cls, v: float) -> float:
        if not 0.5 <= v < 1.0:
            raise ValueError("must lie in [0.5, 1), e.g. 0.95")
        return v

    @field_validator("resamples")
    @classmethod
    def _resamples(cls, v: int) -> int:
        if v < 100:
            raise ValueError("must be at least 100 (default 2000)")
        return v

    def table(self, rule: str) -> dict[str, float | None]:
        return {"max_drop": self.max_drop, "max_rise": self.max_rise, "min": self.min_, "max": self.max_}[rule]


def parse_rules(block: object, where: str) -> GateRules:
    """Validate a `gate:` mapping; every problem named with its key."""
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise HarnessInputError(f"{where}: key 'gate' must be a mapping (e.g. gate: {{max_drop: {{...}}}})")
    try:
        return GateRules.model_validate(block)
    except ValidationError as exc:
        allowed = sorted(f.alias or n for n, f in GateRules.model_fields.items())
        problems = []
        for err in exc.errors():
            key = "gate." + ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                here = allowed if err["loc"][0] != "ratings" else sorted(
                    f.alias or n for n, f in RatingRules.model_fields.items())
                msg = f"unknown key.{did_you_mean(str(err['loc'][-1]), here)} Allowed: {', '.join(here)}"
            problems.append(f"{where}: key '{key}': {msg}")
        raise HarnessInputError(problems, title="invalid gate rules") from None


def rules_from_text(spec_text: str | None, where: str) -> GateRules:
    """The rules in a stored spec's YAML text (a run without a gate block gets the defaults)."""
    if not spec_text:
        return GateRules()
    try:
        raw = yaml.safe_load(spec_text)
    except yaml.YAMLError as exc:
        raise HarnessInputError(f"{where}: the stored spec is not valid YAML ({exc}); pass --spec FILE") from None
    return parse_rules(raw.get("gate") if isinstance(raw, dict) else None, where)


def rules_from_file(path: str | Path) -> GateRules:
    """The `gate:` block of a spec file (or of any YAML file holding one), for `--spec`."""
    path = Path(path)
    if not path.is_file():
        raise HarnessInputError(f"--spec {path}: no such file; give a spec (or a YAML file with a 'gate:' block)")
    try:
        raw = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise HarnessInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or "gate" not in raw:
        raise HarnessInputError(f"{path}: has no 'gate:' block. Add one, e.g. gate: {{max_drop: "
                                "{heldout.exact_match: 0.05}}")
    return parse_rules(raw["gate"], str(path))
