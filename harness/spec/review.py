"""The spec's `review:` block: the rubric a human rating sheet asks for (docs/review.md), validated with every
problem named."""

from __future__ import annotations

import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import HarnessInputError, did_you_mean

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESERVED = ("preferred", "comment")  # what a sheet asks besides the rubric
SCALE = re.compile(r"^(\d+)-(\d+)$")


class Criterion(BaseModel):
    """One question per output: a whole number on a scale ("1-5") or yes/no (stored as 1/0)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    scale: str = "1-5"  # "LOW-HIGH" (whole numbers, 2 to 11 points) or "yes/no"
    higher_is_better: bool = True  # e.g. false for hallucination: "yes" is bad
    help: str = ""  # shown to the rater under the criterion's name

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError(f"{v!r}: use lower-case letters, digits and '_', starting with a letter (e.g. accuracy)")
        if v in RESERVED:
            raise ValueError(f"{v!r} is reserved (a sheet always asks for a preferred output and comments)")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: str) -> str:
        v = v.strip().lower().replace(" ", "")
        if v in ("yes/no", "yesno", "yes_no"):
            return "yes/no"
        m = SCALE.match(v)
        if not m or not 2 <= int(m.group(2)) - int(m.group(1)) + 1 <= 11:
            raise ValueError(f"{v!r}: write 'LOW-HIGH' with 2 to 11 whole-number points (e.g. '1-5'), or 'yes/no'")
        return v

    @property
    def yes_no(self) -> bool:
        return self.scale == "yes/no"

    @property
    def values(self) -> list[int]:
        """The allowed stored values: 0/1 for yes/no, else LOW..HIGH."""
        if self.yes_no:
            return [1, 0]
        low, high = (int(x) for x in self.scale.split("-"))
        return list(range(low, high + 1))

    @property
    def level(self) -> Literal["ordinal", "nominal"]:
        """Krippendorff's level of measurement: ordinal for a scale, nominal for yes/no."""
        return "nominal" if self.yes_no else "ordinal"


DEFAULT_RUBRIC: tuple[Criterion, ...] = (
    Criterion(name="accuracy", help="Is the answer correct for this request? 1: wrong, 5: fully correct."),
    Criterion(name="format", help="Does it follow the required format (structure, fields, length)? 1: not at all, "
              "5: exactly."),
    Criterion(name="tone", help="Is the tone right for the audience? 1: inappropriate, 5: exactly right."),
    Criterion(name="completeness", help="Does it cover everything the request needs? 1: misses most, 5: complete."),
    Criterion(name="hallucination", scale="yes/no", higher_is_better=False,
              help="Does it state anything made up or unsupported by the request (yes = hallucinated)?"),
)
_DEFAULTS = {c.name: c for c in DEFAULT_RUBRIC}


class ReviewSpec(BaseModel):
    """The `review:` block: the rubric (default names, or mappings), and export defaults."""

    model_config = ConfigDict(extra="forbid")

    rubric: list[Criterion] = Field(default_factory=lambda: list(DEFAULT_RUBRIC))
    sample: int = 30  # items per sheet (a seeded sample of the test set)
    seed: int = 0  # of the sample and of each item's label order
    reference: bool = True  # show the test set's reference answer to the rater

    @field_validator("rubric", mode="before")
    @classmethod
    def _by_name(cls, v: object) -> object:
        """A plain string names a default criterion; a mapping that names one inherits what it leaves out."""
        if not isinstance(v, list):
            return v
        out: list[object] = []
        for item in v:
            name = item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None
            if isinstance(item, str):
                if item not in _DEFAULTS:
                    raise ValueError(f"{item!r} is not a default criterion.{did_you_mean(item, list(_DEFAULTS))} "
                                     f"Defaults: {', '.join(_DEFAULTS)}; define others as {{name: NAME, scale: '1-5'}}")
                out.append(_DEFAULTS[item])
            elif isinstance(item, dict) and name in _DEFAULTS:
                out.append({**_DEFAULTS[str(name)].model_dump(), **item})
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _unique(self) -> ReviewSpec:
        names = [c.name for c in self.rubric]
        if not names:
            raise ValueError("rubric: needs at least one criterion")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rubric: criterion {', '.join(dup)} appears twice")
        if self.sample < 1:
            raise ValueError("sample: must be at least 1 (default 30)")
        return self

    def criterion(self, name: str) -> Criterion | None:
        return next((c for c in self.rubric if c.name == name), None)


def parse_review(block: object, where: str) -> ReviewSpec:
    """Validate a `review:` mapping; every problem named with its key."""
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise HarnessInputError(f"{where}: key 'review' must be a mapping (e.g. review: {{rubric: [accuracy, tone]}})")
    try:
        return ReviewSpec.model_validate(block)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(["review", *(str(p) for p in err["loc"])])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = list(Criterion.model_fields) if "rubric" in err["loc"] else list(ReviewSpec.model_fields)
                msg = f"unknown key.{did_you_mean(str(err['loc'][-1]), allowed)} Allowed: {', '.join(allowed)}"
            problems.append(f"{where}: key '{key}': {msg}")
        raise HarnessInputError(problems, title="invalid review block") from None


def review_from_text(spec_text: str | None, where: str) -> ReviewSpec:
    """The `review:` block of a stored spec's YAML text (the defaults where it has none)."""
    if not spec_text:
        return ReviewSpec()
    try:
        raw = yaml.safe_load(spec_text)
    except yaml.YAMLError:
        return ReviewSpec()  # a stored spec that is not YAML (hand-written stores): the default rubric
    return parse_review(raw.get("review") if isinstance(raw, dict) else None, where)


def rating_rule_problems(criteria: set[str], review: ReviewSpec, where: str) -> list[str]:
    """`gate.ratings` rules that name a criterion the rubric does not have."""
    names = [c.name for c in review.rubric]
    return [f"{where}: key 'gate.ratings': no criterion {k!r} in the review rubric.{did_you_mean(k, names)} "
            f"Rubric: {', '.join(names)}" for k in sorted(criteria - set(names))]
