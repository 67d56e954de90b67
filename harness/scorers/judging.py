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
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessInputError, did_you_mean

PROMPT_VERSION = 1  # bump when a prompt's wording changes (it enters every rubric version, so the cache)
YESNO = "yesno"
RAW_KEPT = 1000  # characters of a malformed reply kept in examples.detail

DEFAULT_RUBRIC: list[dict[str, Any]] = [
    {"name": "accuracy", "scale": [1, 5],
     "description": "Is the response correct: facts, numbers, fields and decisions right for the request, and "
                    "consistent with the reference answer where one is given?"},
    {"name": "format", "scale": [1, 5],
     "description": "Does the response have the form the request or the reference calls for: structure, fields, "
                    "syntax (e.g. valid JSON) and length?"},
    {"name": "tone", "scale": [1, 5],
     "description": "Is the tone right for the audience: professional, clear and courteous, neither curt nor padded?"},
    {"name": "completeness", "scale": [1, 5],
     "description": "Does the response address every part of the request, leaving out nothing that was asked for?"},
    {"name": "hallucination", "scale": YESNO,
     "description": "Does the response state anything invented or unsupported: facts, names, numbers, policies or "
                    "details that neither the request nor the reference supports? (yes = it hallucinates)"},
]


@dataclass(frozen=True)
class Criterion:
    """One rubric criterion: a score on an integer scale [low, high], or yes/no (scale None)."""

    name: str
    scale: tuple[int, int] | None
    description: str

    @property
    def metric(self) -> str:
        return f"judge:{self.name}"

    @property
    def choices(self) -> list[Any]:
        return ["yes", "no"] if self.scale is None else list(range(self.scale[0], self.scale[1] + 1))

    @property
    def bad_when_yes(self) -> bool:
        """A yes/no criterion whose 'yes' is a fault (hallucination); every other one counts 'yes' as good."""
        return self.scale is None and self.name == "hallucination"

    def value(self, score: Any) -> float:
        """The per-example metric value: the score, or 1.0 for 'yes' and 0.0 for 'no'."""
        return float(score == "yes") if self.scale is None else float(score)

    def passes(self, score: Any) -> bool:
        """Good enough: in the top quarter of the scale (4 or 5 on 1-5), or the good answer of a yes/no."""
        if self.scale is None:
            return (score == "yes") != self.bad_when_yes
        low, high = self.scale
        return int(score) >= low + -(-3 * (high - low) // 4)

    def line(self) -> str:
        how = "yes or no" if self.scale is None else f"a score from {self.scale[0]} (worst) to {self.scale[1]} (best)"
        return f"- {self.name} ({how}): {self.description}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": YESNO if self.scale is None else list(self.scale),
                "description": self.description}


_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def parse_rubric(value: Any, option: str = "rubric") -> list[Criterion]:
    """A rubric option (a list of {name, scale: [low, high] | yesno, description}) as criteria; every problem at
    once, each naming its entry. None gives the default rubric (accuracy, format, tone, completeness, hallucination)."""
    entries = DEFAULT_RUBRIC if value is None else value
    if not isinstance(entries, list) or not entries:
        raise HarnessInputError(f"option {option!r}: a non-empty list of {{name, scale, description}}, got {value!r}")
    problems: list[str] = []
    out: list[Criterion] = []
    for i, c in enumerate(entries):
        at = f"option '{option}[{i}]'"
        if not isinstance(c, dict):
            problems.append(f"{at}: a mapping {{name, scale, description}}, got {c!r}")
            continue
        stray = sorted(set(c) - {"name", "scale", "description"})
        if stray:
            problems.append(f"{at}: unknown key(s) {', '.join(stray)}; a criterion has name, scale, description")
        name, scale, desc = c.get("name"), c.get("scale"), c.get("description")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{at}.name: {name!r}; use lower-case letters, digits, '_' or '-' (e.g. accuracy)")
        if not isinstance(desc, str) or not desc.strip():
            problems.append(f"{at}.description: say what the judge should look for, got {desc!r}")
        parsed: tuple[int, int] | None = None
        if scale == YESNO:
            parsed = None
        elif (isinstance(scale, list) and len(scale) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                                  for x in scale) and 0 < scale[1] - scale[0] <= 10):
            parsed = (scale[0], scale[1])
        else:
            problems.append(f"{at}.scale: {scale!r}; use [low, high] (whole numbers, e.g. [1, 5], at most 10 apart) "
                            f"or {YESNO!r}")
        out.append(Criterion(str(name), parsed, str(desc or "").strip()))
    names = [c.name for c in out]
    problems += [f"option {option!r}: criterion {n!r} appears twice" for n in sorted({n for n in names
                                                                                      if names.count(n) > 1})]
    if problems:
        raise HarnessInputError(problems, title=f"judge {option}")
    return out


def rubric_version(criteria: list[Criterion], mode: str) -> str:
    """The rubric's version: a hash of its criteria, the judging mode and the prompts' version."""
    blob = json.dumps([PROMPT_VERSION, mode, [c.to_dict() for c in criteria]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _graded(score: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["score", "rationale"],
            "properties": {"score": score, "rationale": {"type": "string"}}}


def rubric_schema(criteria: list[Criterion]) -> dict[str, Any]:
    """The JSON Schema of a pointwise judgment: per criterion a score (or yes/no) and a one-line rationale
    (strict-mode compatible: every property required, no extra ones, scores as enums)."""
    props = {c.name: _graded({"type": "string" if c.scale is None else "integer", "enum": c.choices})
             for c in criteria}
    return {"type": "object", "additionalProperties": False, "required": [c.name for c in criteria],
            "properties": props}


def choice_schema(field: str, choices: list[str]) -> dict[str, Any]:
    """The JSON Schema of a one-choice judgment with its rationale (pairwise winner, refused yes/no)."""
    return {"type": "object", "additionalProperties": False, "required": [field, "rationale"],
            "properties": {field: {"type": "string", "enum": choices}, "rationale": {"type": "string"}}}


def conversation_text(messages: list[dict[str, str]]) -> str:
    """A conversation for a judge's prompt: one `[role] content` block per message."""
    return "\n\n".join(f"[{m['role']}] {m['content']}" for m in messages)


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


def read_judgment(text: str | None, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
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
    return doc, None


def check_judge_options(judge: Any, base_url: Any, kind: str) -> None:
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


def scored_models(ctx: Any) -> list[str]:
    """Names of the model whose outputs are being judged: a given checkpoint (as written and resolved), and the
    API model id a chat model is scored through."""
    v = ctx.variant
    names = [getattr(v, "checkpoint", None), getattr(v, "checkpoint_path", None)]
    m = ctx.model
    while hasattr(m, "inner"):  # a prompt variant wraps the base model
        m = m.inner
    if isinstance(getattr(m, "model", None), str):
        names.append(("openai-compatible:" if getattr(m, "compatible", False) else "openai:") + m.model)
    return [n for n in names if n]


def open_judge(ctx: Any, judge: str, base_url: str | None, kind: str) -> Any:
    """The judge model (a harness.models.protocol.JudgeModel) for this context; refused when it is the model whose
    outputs it would grade (a model prefers its own outputs)."""
    opener = getattr(ctx, "open_judge", None)
    if opener is None:
        raise RuntimeError(f"{kind}: this scoring context opens no judge models (ScoreContext.open_judge is unset); "
                           "suites with a judge run inside a sweep, which provides harness.models.judge.open_judge")
    model = opener(judge, base_url)
    for name in scored_models(ctx):
        if model.is_model(name):
            raise HarnessInputError(
                f"{kind} option 'judge': {judge!r} is the model being scored ({getattr(ctx.variant, 'name', name)}: "
                f"{name}); a model may not judge its own outputs. Choose a judge that is none of the compared models.")
    return model


def known_mode(value: Any, option: str, allowed: list[str]) -> None:
    if value is not None and value not in allowed:
        raise HarnessInputError(f"option {option!r}: {value!r}.{did_you_mean(str(value), allowed)} "
                                f"Allowed: {', '.join(allowed)} (or leave it out)")
