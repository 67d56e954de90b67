"""The judge's side of scoring: the rubric, the JSON Schemas a judge must fill, and reading its judgments.

A judgment is parsed as JSON (the whole reply, or one fenced block) and validated against its schema with
jsonschema; anything else is an error for its example, kept with the reply, never a default score. The judge
model comes from the scoring context (`ctx.open_judge`, which the sweep provides), and may not be the model
whose outputs it grades.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError, did_you_mean
from harness.models.protocol import JudgeModel
from harness.scores import JSONDict, JSONValue
from harness.spec.review import DEFAULT_RUBRIC as REVIEW_DEFAULTS
from harness.spec.review import ReviewSpec

if TYPE_CHECKING:
    from harness.scorers.registry import ScoreContext

PROMPT_VERSION = 1  # bump when a prompt's wording changes (it enters every rubric version, so the cache)
RAW_KEPT = 1000  # characters of a malformed reply kept in examples.detail
YESNO = "yes/no"
# The rubric is the review rubric (harness/spec/review.py, docs/review.md): the judge asks what the raters are
# asked, so the two can be compared; its parsing and defaults live there alone.
DEFAULT_RUBRIC: list[JSONDict] = [c.model_dump() for c in REVIEW_DEFAULTS]
Grade = int | str  # a criterion's score: a whole number on its scale, or 'yes'/'no'



@dataclass(frozen=True)
class Criterion:
    """One rubric criterion: a whole number on the scale [low, high], or yes/no (scale None)."""

    name: str
    scale: tuple[int, int] | None
    higher_is_better: bool = True
    help: str = ""

    @property
    def metric(self) -> str:
        return f"judge:{self.name}"

    @property
    def choices(self) -> list[Grade]:
        return ["yes", "no"] if self.scale is None else list(range(self.scale[0], self.scale[1] + 1))

    def value(self, score: Grade) -> float:
        """The per-example value, as the ratings table stores it: the score, or 1.0 for yes and 0.0 for no."""
        return float(score == "yes") if self.scale is None else float(score)

    def passes(self, score: Grade) -> bool:
        """Good enough: in the better quarter of the scale (4 or 5 on 1-5), or the good answer of a yes/no."""
        if self.scale is None:
            return (score == "yes") == self.higher_is_better
        low, high = self.scale
        cut = -(-3 * (high - low) // 4)  # ceil(3/4 of the range)
        return int(score) >= low + cut if self.higher_is_better else int(score) <= high - cut

    def line(self) -> str:
        if self.scale is None:
            how = "yes or no"
        else:
            low, high = self.scale
            best, worst = (high, low) if self.higher_is_better else (low, high)
            how = f"a whole number from {low} to {high}; {best} is best, {worst} worst"
        return f"- {self.name} ({how}): {self.help or self.name}"

    def to_dict(self) -> JSONDict:
        return {"name": self.name, "scale": YESNO if self.scale is None else f"{self.scale[0]}-{self.scale[1]}",
                "higher_is_better": self.higher_is_better, "help": self.help}


def parse_rubric(value: object, option: str = "rubric") -> list[Criterion]:
    """A rubric in the review rubric's shape (docs/review.md), validated by the review spec: a list of default
    criterion names or mappings {name, scale: 'LOW-HIGH' | 'yes/no', higher_is_better, help}, a mapping naming a
    default criterion inheriting what it leaves out; None gives the default rubric. Every problem at once."""
    from pydantic import ValidationError

    entries = DEFAULT_RUBRIC if value is None else value
    if isinstance(entries, tuple):
        entries = list(entries)
    if not isinstance(entries, list) or not entries:
        raise HarnessInputError(f"option {option!r}: a non-empty list of criteria (names or {{name, scale, help}}), "
                                f"got {value!r}")
    entries = [e.model_dump() if hasattr(e, "model_dump") else e for e in entries]
    try:
        rubric = ReviewSpec.model_validate({"rubric": entries}).rubric
    except ValidationError as exc:
        problems = [f"option '{option}" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"][1:])
                    + f"': {err['msg'].removeprefix('Value error, ')}" for err in exc.errors()]
        raise HarnessInputError(problems, title=f"judge {option}") from None
    return [Criterion(c.name, None if c.yes_no else (c.values[0], c.values[-1]), c.higher_is_better, c.help.strip())
            for c in rubric]


def rubric_version(criteria: list[Criterion], mode: str) -> str:
    """The rubric's version: a hash of its criteria, the judging mode and the prompts' version."""
    blob = json.dumps([PROMPT_VERSION, mode, [c.to_dict() for c in criteria]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _graded(score: JSONDict) -> JSONDict:
    return {"type": "object", "additionalProperties": False, "required": ["score", "rationale"],
            "properties": {"score": score, "rationale": {"type": "string"}}}


def rubric_schema(criteria: list[Criterion]) -> JSONDict:
    """The JSON Schema of a pointwise judgment: per criterion a score (or yes/no) and a one-line rationale
    (strict-mode compatible: every property required, no extra ones, scores as enums)."""
    props: JSONDict = {c.name: _graded({"type": "string" if c.scale is None else "integer",
                                         "enum": list(c.choices)}) for c in criteria}
    return {"type": "object", "additionalProperties": False, "required": [c.name for c in criteria],
            "properties": props}


def choice_schema(field: str, choices: list[str]) -> JSONDict:
    """The JSON Schema of a one-choice judgment with its rationale (pairwise winner, refused yes/no)."""
    return {"type": "object", "additionalProperties": False, "required": [field, "rationale"],
            "properties": {field: {"type": "string", "enum": choices}, "rationale": {"type": "string"}}}


def conversation_text(messages: list[dict[str, str]]) -> str:
    """A conversation for a judge's prompt: one `[role] content` block per message."""
    return "\n\n".join(f"[{m['role']}] {m['content']}" for m in messages)


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def read_judgment(text: str | None, schema: JSONDict) -> tuple[JSONDict | None, str | None]:
    """(the judgment, None), or (None, what is wrong with it): not JSON, or not what the schema asks for."""
    import jsonschema

    t = (text or "").strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", t, re.DOTALL)
    try:
        doc = json.loads(fenced.group(1) if fenced else t)
    except ValueError as exc:
        return None, f"not JSON ({exc}): {t[:80]!r}"
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if err is not None:
        at = ".".join(str(p) for p in err.absolute_path) or "the top level"
        return None, f"does not fit the judgment's schema at {at}: {err.message}"
    if not isinstance(doc, dict):  # every judgment schema asks for an object
        return None, f"not a JSON object: {t[:80]!r}"
    return doc, None


@dataclass(frozen=True)
class Graded:
    """A judge's answer on one criterion, or one choice (a pairwise winner, refused yes/no): what it chose and its
    one-line rationale."""

    score: Grade
    rationale: str


def grade_of(doc: Mapping[str, JSONValue], criterion: str) -> Graded:
    """One criterion's grade in a pointwise judgment that fits rubric_schema."""
    return _read_graded(doc.get(criterion), "score", criterion)


def choice_of(doc: Mapping[str, JSONValue], field: str) -> Graded:
    """The choice in a judgment that fits choice_schema(field, ...)."""
    return _read_graded(doc, field, field)


def _read_graded(entry: JSONValue, answer: str, what: str) -> Graded:
    if not isinstance(entry, Mapping):
        raise ValueError(f"judgment {what!r} is not an object: {entry!r}")
    value = entry.get(answer)
    if not isinstance(value, int | str) or isinstance(value, bool):
        raise ValueError(f"judgment {what!r}: {answer} {value!r} is neither a whole number nor text")
    return Graded(value, str(entry.get("rationale")))


def check_judge_options(judge: object, base_url: object, kind: str) -> None:
    """The options that name a judge, checked without loading or calling anything."""
    if not isinstance(judge, str) or not judge.strip():
        raise HarnessInputError(f"{kind} option 'judge': name the judge model: 'openai:<model>', "
                                "'openai-compatible:<model>' with 'base_url', or a local model name or folder")
    compatible = judge.startswith("openai-compatible:")
    if compatible and not base_url:
        raise HarnessInputError(f"{kind} option 'base_url': the judge {judge!r} needs the server's OpenAI-compatible "
                                "root, e.g. base_url: http://localhost:8000/v1")
    if base_url and not compatible:
        raise HarnessInputError(f"{kind} option 'base_url': applies to openai-compatible:<model> judges only; for "
                                "openai: judges set OPENAI_BASE_URL in the environment, local judges need none")


def scored_models(ctx: ScoreContext) -> list[str]:
    """Names of the model whose outputs are being judged: a given checkpoint (as written and resolved), and the
    API model id a chat model is scored through."""
    v = ctx.variant
    names = [getattr(v, "checkpoint", None), getattr(v, "checkpoint_path", None)]
    m: object = ctx.model
    while hasattr(m, "inner"):  # a prompt variant wraps the base model
        m = m.inner
    api_model = getattr(m, "model", None)
    if isinstance(api_model, str):
        names.append(("openai-compatible:" if getattr(m, "compatible", False) else "openai:") + api_model)
    return [n for n in names if n]


def open_judge(ctx: ScoreContext, judge: str, base_url: str | None, kind: str) -> JudgeModel:
    """The judge model (a harness.models.protocol.JudgeModel) for this context; refused when it is the model whose
    outputs it would grade (a model prefers its own outputs)."""
    opener = getattr(ctx, "open_judge", None)
    if opener is None:
        raise RuntimeError(f"{kind}: this scoring context opens no judge models (ScoreContext.open_judge is unset); "
                           "suites with a judge run inside a sweep, which provides harness.models.judge_model.open_judge")
    model = opener(judge, base_url)
    for name in scored_models(ctx):
        if model.is_model(name):
            raise HarnessInputError(
                f"{kind} option 'judge': {judge!r} is the model being scored ({getattr(ctx.variant, 'name', name)}: "
                f"{name}); a model may not judge its own outputs. Choose a judge that is none of the compared models.")
    return model


def known_mode(value: object, option: str, allowed: list[str]) -> None:
    if value is not None and value not in allowed:
        raise HarnessInputError(f"option {option!r}: {value!r}.{did_you_mean(str(value), allowed)} "
                                f"Allowed: {', '.join(allowed)} (or leave it out)")
