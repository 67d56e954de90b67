"""format: does each output parse as JSON, fit a JSON Schema, match required patterns, avoid forbidden ones, stay short."""

from __future__ import annotations

import json as jsonlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError
from harness.scorers.common import chat_items, compile_regex, rate_row
from harness.scorers.heldout import heldout_outputs
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, JSONValue, Sample, SuiteResult
from harness.textfiles import read_text

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

SOURCES = ("items", "heldout")
DEFAULT_MAX_NEW_TOKENS = 128


@dataclass
class Pattern:
    """A named regex, searched in the whole output or in one field of its JSON object."""

    name: str
    regex: re.Pattern[str]
    field: str | None
    required: bool

    @property
    def rule(self) -> str:
        return f"{'required' if self.required else 'forbidden'}:{self.name}"


def _patterns(specs: object, required: bool) -> list[Pattern]:
    key = "required_patterns" if required else "forbidden_patterns"
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise HarnessInputError(f"format option {key!r}: a list of {{name, regex, field?}}, got {specs!r}")
    out = []
    for i, p in enumerate(specs):
        where = f"format option '{key}[{i}]'"
        if not isinstance(p, dict) or "regex" not in p or "name" not in p:
            raise HarnessInputError(f"{where}: each pattern is {{name: ..., regex: ..., field: (optional)}}, got {p!r}")
        extra = set(p) - {"name", "regex", "field"}
        if extra:
            raise HarnessInputError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: name, regex, field")
        out.append(Pattern(str(p["name"]), compile_regex(p["regex"], where), p.get("field"), required))
    return out


def _validator(ctx: ScoreContext, schema: str) -> Validator:
    import jsonschema

    path = ctx.suite.path(schema)
    where = f"{ctx.suite.folder / 'suite.yaml'}: option 'schema'"
    if not path.is_file():
        raise HarnessInputError(f"{where}: no file {path}; put the JSON Schema next to suite.yaml")
    try:
        doc = jsonlib.loads(read_text(path))
        cls = jsonschema.validators.validator_for(doc)
        cls.check_schema(doc)
    except jsonlib.JSONDecodeError as exc:
        raise HarnessInputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except jsonschema.exceptions.SchemaError as exc:
        raise HarnessInputError(f"{path}: not a valid JSON Schema ({exc.message})") from None
    return cls(doc)


def check(output: str, *, parse: bool, validator: Validator | None, patterns: list[Pattern], max_chars: int | None
          ) -> tuple[dict[str, bool], list[str]]:
    """Every rule's verdict on one output, and a reason for each rule that failed."""
    import jsonschema

    rules: dict[str, bool] = {}
    reasons: list[str] = []
    value: JSONValue = None
    parsed = False
    if parse:
        try:
            value, parsed = jsonlib.loads(output.strip()), True
        except ValueError as exc:
            reasons.append(f"json: not valid JSON ({exc.__class__.__name__}: {str(exc)[:80]})")
        rules["json_valid"] = parsed
    if validator is not None:
        if not parsed:
            rules["schema_valid"] = False
            reasons.append("schema: output is not JSON")
        else:
            err = jsonschema.exceptions.best_match(validator.iter_errors(value))
            rules["schema_valid"] = err is None
            if err is not None:
                at = "/" + "/".join(str(p) for p in err.absolute_path) if err.absolute_path else "the top level"
                reasons.append(f"schema at {at}: {err.message[:160]}")
    for p in patterns:
        text: str | None = output
        if p.field is not None:
            field = value.get(p.field) if parsed and isinstance(value, dict) else None
            text = None if field is None else (field if isinstance(field, str) else jsonlib.dumps(field))
        if text is None:
            rules[p.rule] = False
            reasons.append(f"{p.rule}: no field {p.field!r} in a JSON object to search")
            continue
        m = p.regex.search(text)
        ok = bool(m) if p.required else not m
        rules[p.rule] = ok
        if not ok:
            where = f" in field {p.field!r}" if p.field else ""
            reasons.append(f"{p.rule}: /{p.regex.pattern}/ not found{where}" if p.required
                           else f"{p.rule}: /{p.regex.pattern}/ matched {m.group(0)[:60]!r}{where}")  # type: ignore[union-attr]
    if max_chars is not None:
        rules["max_chars"] = len(output) <= max_chars
        if not rules["max_chars"]:
            reasons.append(f"max_chars: {len(output)} characters > {max_chars}")
    return rules, reasons


@scorer("format", metrics=[
    Metric("compliance", per_example=True, primary=True, finding="format", gate=("min", 0.98),
           column="compliance"),  # passes every rule
    Metric("json_valid", per_example=True), Metric("schema_valid", per_example=True),
    Metric("max_chars", per_example=True), Metric("required:*", per_example=True),
    Metric("forbidden:*", per_example=True),
])
def format_compliance(json: bool = True, schema: str | None = None, required_patterns: list[JSONDict] | None = None,
                      forbidden_patterns: list[JSONDict] | None = None, max_chars: int | None = None,
                      source: str = "items", max_new_tokens: int | None = None) -> ScoreFn:
    """Share of outputs that pass every rule (compliance) and each rule's pass rate, with Wilson CIs.

    source 'items' generates on the suite's items; 'heldout' reuses the heldout suite's generations on the test set
    (max_new_tokens None: whichever heldout generation this variant already has, else 128 new tokens).
    """
    if source not in SOURCES:
        raise HarnessInputError(f"format option 'source': {source!r} is not one of {', '.join(SOURCES)}")
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars <= 0):
        raise HarnessInputError(f"format option 'max_chars': a positive integer, got {max_chars!r}")
    patterns = _patterns(required_patterns, True) + _patterns(forbidden_patterns, False)
    rules_named = [p.rule for p in patterns]
    dup = sorted({r for r in rules_named if rules_named.count(r) > 1})
    if dup:
        raise HarnessInputError(f"format options: pattern name(s) used twice: {', '.join(dup)}")
    parse = bool(json) or schema is not None or any(p.field for p in patterns)

    def score(ctx: ScoreContext) -> SuiteResult:
        validator = _validator(ctx, schema) if schema else None
        if source == "items":
            items = chat_items(ctx.suite)
            rows = [(it.item_id, it.prompt, it.reference) for it in items]
            clusters = [it.raw.get("cluster") for it in items]
            outs = ctx.model.generate([it.messages for it in items], max_new_tokens or DEFAULT_MAX_NEW_TOKENS)
        else:
            rows = [(e.example_id, e.prompt_messages[-1]["content"], e.reference) for e in ctx.test]
            clusters = [None] * len(rows)
            outs = _heldout(ctx)
        verdicts = [check(o, parse=parse, validator=validator, patterns=patterns, max_chars=max_chars) for o in outs]
        n = len(verdicts)
        scores = [rate_row("compliance", sum(not reasons for _, reasons in verdicts), n)]
        for rule in verdicts[0][0] if verdicts else {}:
            scores.append(rate_row(rule, sum(v[0][rule] for v in verdicts), n))
        examples = [Sample(eid, prompt, out, ref, not reasons,
                           {"compliance": float(not reasons), **{r: float(ok) for r, ok in rules.items()}},
                           {"rules": dict(rules), "reasons": list(reasons), "chars": len(out), "source": source},
                           None if cl is None else str(cl))
                    for (eid, prompt, ref), out, (rules, reasons), cl in zip(rows, outs, verdicts, clusters, strict=True)]
        return SuiteResult(scores, examples)

    def _heldout(ctx: ScoreContext) -> list[str]:
        return heldout_outputs(ctx, max_new_tokens, default=DEFAULT_MAX_NEW_TOKENS)

    return score
