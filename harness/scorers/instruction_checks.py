"""The verifiable instructions of the `instructions` suite kind: IFEval's instruction ids and kwargs (Zhou et al. 2023,
as lm-evaluation-harness ships them) checked by small programs, plus two ids of this project's own.

Written here rather than imported: lm-evaluation-harness's checkers are not a package of their own, they load nltk's
punkt model (a download) and langdetect at import time. Each check returns (followed, what it found)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec

from harness.errors import did_you_mean
from harness.scores import JSONDict, JSONValue

if TYPE_CHECKING:
    from nltk.tokenize import NLTKWordTokenizer

RELATIONS = ("less than", "at least")
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
Validator = Callable[[JSONValue], str | None]  # a kwarg's value -> what is wrong with it, or None
# Any: each instruction's program takes the output and its own kwargs (validated by the check's validators first).
CheckFn = Callable[..., tuple[bool, str]]
P = ParamSpec("P")


@dataclass(frozen=True)
class Check:
    """One instruction id: its program, its kwargs' validators, an example of valid kwargs, where the id comes from."""

    fn: CheckFn
    params: dict[str, Validator]
    example: JSONDict
    source: str  # 'ifeval' or 'harness' (this project's own)


CHECKS: dict[str, Check] = {}


def check(instruction_id: str, example: JSONDict, source: str = "ifeval", **params: Validator
          ) -> Callable[[Callable[P, tuple[bool, str]]], Callable[P, tuple[bool, str]]]:
    def wrap(fn: Callable[P, tuple[bool, str]]) -> Callable[P, tuple[bool, str]]:
        CHECKS[instruction_id] = Check(fn, params, example, source)
        return fn

    return wrap


# -- kwargs validators ------------------------------------------------------------------------------------------
def count(minimum: int) -> Validator:
    return lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= minimum else \
        f"must be a whole number >= {minimum}"


def relation(v: JSONValue) -> str | None:
    return None if v in RELATIONS else f"must be one of {', '.join(repr(r) for r in RELATIONS)}"


def text(v: JSONValue) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


def words(v: JSONValue) -> str | None:
    ok = isinstance(v, list) and v and all(isinstance(w, str) and w.strip() for w in v)
    return None if ok else 'must be a non-empty list of non-empty strings, e.g. ["river", "stone"]'


def letter(v: JSONValue) -> str | None:
    return None if isinstance(v, str) and len(v) == 1 and v.isascii() and v.isalpha() else \
        "must be a single letter a-z"


# -- counting, as IFEval counts ---------------------------------------------------------------------------------
def count_words(value: str) -> int:
    """Words as IFEval counts them (nltk's RegexpTokenizer(r'\\w+')): runs of word characters."""
    return len(re.findall(r"\w+", value))


_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e", "inc", "ltd", "co",
                  "approx", "fig"}


def split_sentences(value: str) -> list[str]:
    """Sentences: text up to '.', '!' or '?' (and closing quotes or brackets) followed by whitespace or the end;
    not after a known abbreviation or a single-letter initial. (IFEval uses nltk's punkt model, a download.)"""
    out, start = [], 0
    for m in re.finditer(r"[.!?]+[\"')\]]*(?=\s|$)", value):
        before = re.search(r"(\S+)$", value[start:m.start()])
        word = before.group(1).lower() if before else ""
        if m.group(0) == "." and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        out.append(value[start:m.end()].strip())
        start = m.end()
    out.append(value[start:].strip())
    return [s for s in out if re.search(r"\w", s)]


def word_tokens(value: str) -> list[str]:
    """Words as IFEval's capital-word check takes them (nltk.word_tokenize): each sentence (split_sentences here,
    punkt there) split by nltk's NLTKWordTokenizer, the Treebank rules word_tokenize applies within a sentence:
    "DON'T" -> "DO", "N'T"; "NASA's" -> "NASA", "'s"; "U.S.A." and "STATE-OF-THE-ART" stay one word each."""
    return [t for sentence in split_sentences(value) for t in _treebank().tokenize(sentence)]


@functools.cache
def _treebank() -> NLTKWordTokenizer:
    from nltk.tokenize import NLTKWordTokenizer  # its rules are code: no download, unlike punkt

    return NLTKWordTokenizer()


def _compare(found: int, rel: str, threshold: int) -> bool:
    return found < threshold if rel == RELATIONS[0] else found >= threshold


def _counted(found: int, what: str, rel: str, threshold: int) -> tuple[bool, str]:
    return _compare(found, rel, threshold), f"{found} {what} (needs {rel} {threshold})"


# -- keywords ---------------------------------------------------------------------------------------------------
@check("keywords:existence", {"keywords": ["harbor", "fog"]}, keywords=words)
def existence(value: str, keywords: list[str]) -> tuple[bool, str]:
    """Every keyword appears (case-insensitive, anywhere, as IFEval matches it)."""
    missing = [k for k in keywords if not re.search(re.escape(k), value, flags=re.IGNORECASE)]
    return not missing, f"missing {', '.join(map(repr, missing))}" if missing else "all keywords present"


@check("keywords:frequency", {"keyword": "bread", "frequency": 2, "relation": "at least"},
       keyword=text, frequency=count(1), relation=relation)
def frequency(value: str, keyword: str, frequency: int, relation: str) -> tuple[bool, str]:
    """The keyword appears (case-insensitive, anywhere) less than / at least `frequency` times."""
    found = len(re.findall(re.escape(keyword.strip()), value, flags=re.IGNORECASE))
    return _counted(found, f"x {keyword!r}", relation, frequency)


@check("keywords:forbidden_words", {"forbidden_words": ["very", "really"]}, forbidden_words=words)
def forbidden_words(value: str, forbidden_words: list[str]) -> tuple[bool, str]:
    """None of the words appears as a whole word (case-insensitive)."""
    used = [w for w in forbidden_words if re.search(rf"\b{re.escape(w)}\b", value, flags=re.IGNORECASE)]
    return not used, f"used {', '.join(map(repr, used))}" if used else "no forbidden word"


@check("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
       letter=letter, let_frequency=count(1), let_relation=relation)
def letter_frequency(value: str, letter: str, let_frequency: int, let_relation: str) -> tuple[bool, str]:
    """The letter (either case) occurs less than / at least `let_frequency` times."""
    return _counted(value.lower().count(letter.lower()), f"x {letter.lower()!r}", let_relation, let_frequency)


# -- length -----------------------------------------------------------------------------------------------------
@check("length_constraints:number_words", {"num_words": 40, "relation": "less than"},
       num_words=count(1), relation=relation)
def number_words(value: str, num_words: int, relation: str) -> tuple[bool, str]:
    return _counted(count_words(value), "words", relation, num_words)


@check("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
       num_sentences=count(1), relation=relation)
def number_sentences(value: str, num_sentences: int, relation: str) -> tuple[bool, str]:
    return _counted(len(split_sentences(value)), "sentences", relation, num_sentences)


@check("length_constraints:number_paragraphs", {"num_paragraphs": 2}, num_paragraphs=count(1))
def number_paragraphs(value: str, num_paragraphs: int) -> tuple[bool, str]:
    """Exactly N paragraphs separated by the markdown divider ***; an empty paragraph between two dividers fails."""
    parts = re.split(r"\s?\*\*\*\s?", value)
    found = len(parts)
    for i, p in enumerate(parts):
        if not p.strip():
            if i in (0, len(parts) - 1):
                found -= 1
            else:
                return False, "an empty paragraph between two *** dividers"
    return found == num_paragraphs, f"{found} paragraphs separated by *** (needs {num_paragraphs})"


@check("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "then"},
       num_paragraphs=count(1), nth_paragraph=count(1), first_word=text)
def nth_paragraph_first_word(value: str, num_paragraphs: int, nth_paragraph: int, first_word: str
                             ) -> tuple[bool, str]:
    """Exactly N paragraphs separated by blank lines, and paragraph `nth_paragraph` starts with `first_word`."""
    parts = value.split("\n\n")
    found = sum(1 for p in parts if p.strip())
    if nth_paragraph > found or not parts[nth_paragraph - 1].strip():
        return False, f"{found} paragraphs; no paragraph {nth_paragraph}"
    first = parts[nth_paragraph - 1].strip().split()[0].lstrip("'\"")
    word = re.split(r"[.,?!'\"]", first)[0].lower()
    ok = found == num_paragraphs and word == first_word.lower()
    return ok, f"{found} paragraphs (needs {num_paragraphs}); paragraph {nth_paragraph} starts with {word!r}"


# -- content ----------------------------------------------------------------------------------------------------
@check("detectable_content:number_placeholders", {"num_placeholders": 2}, num_placeholders=count(1))
def number_placeholders(value: str, num_placeholders: int) -> tuple[bool, str]:
    """At least N placeholders in square brackets, like [name]."""
    return _counted(len(re.findall(r"\[.*?\]", value)), "[placeholders]", "at least", num_placeholders)


@check("detectable_content:postscript", {"postscript_marker": "P.S."}, postscript_marker=text)
def postscript(value: str, postscript_marker: str) -> tuple[bool, str]:
    """A line starts with the marker (P.S. and P.P.S as IFEval spells them, with optional spaces; any case).
    IFEval's regex also accepts the marker in the middle of a line; this one wants it to open the line."""
    marker = postscript_marker.strip()
    pattern = {"P.P.S": r"p\.\s?p\.\s?s", "P.S.": r"p\.\s?s\."}.get(marker, re.escape(marker.lower()))
    found = re.search(rf"^\s*{pattern}", value.lower(), flags=re.MULTILINE)
    return bool(found), f"a line starts with {marker}" if found else f"no line starts with {marker}"


# -- format -----------------------------------------------------------------------------------------------------
@check("detectable_format:number_bullet_lists", {"num_bullets": 3}, num_bullets=count(1))
def number_bullet_lists(value: str, num_bullets: int) -> tuple[bool, str]:
    """Exactly N markdown bullet lines ('* ' or '- ')."""
    found = len(re.findall(r"^\s*\*[^\*].*$", value, flags=re.MULTILINE)) + \
        len(re.findall(r"^\s*-.*$", value, flags=re.MULTILINE))
    return found == num_bullets, f"{found} bullet points (needs exactly {num_bullets})"


@check("detectable_format:constrained_response", {})
def constrained_response(value: str) -> tuple[bool, str]:
    """The answer contains one of 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'."""
    hit = next((r for r in CONSTRAINED_RESPONSES if r in value.strip()), None)
    return hit is not None, f"says {hit!r}" if hit else "none of the allowed answers"


@check("detectable_format:number_highlighted_sections", {"num_highlights": 2}, num_highlights=count(1))
def number_highlighted_sections(value: str, num_highlights: int) -> tuple[bool, str]:
    """At least N *highlighted* sections; a **bold** one counts too (as in IFEval)."""
    found = sum(1 for h in re.findall(r"\*[^\n\*]*\*", value) if h.strip("*").strip())
    found += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", value) if h[2:-2].strip())
    return _counted(found, "highlighted sections", "at least", num_highlights)


@check("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
       section_spliter=text, num_sections=count(1))
def multiple_sections(value: str, section_spliter: str, num_sections: int) -> tuple[bool, str]:
    """At least N sections, each opened by the splitter word and a number ('Section 1')."""
    found = len(re.split(rf"\s?{re.escape(section_spliter.strip())}\s?\d+\s?", value)) - 1
    return _counted(found, f"{section_spliter.strip()} X headers", "at least", num_sections)


@check("detectable_format:json_format", {})
def json_format(value: str) -> tuple[bool, str]:
    """The whole output parses as JSON (a ``` or ```json fence around it is allowed)."""
    body = value.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(prefix)
    body = body.removesuffix("```").strip()
    try:
        json.loads(body)
    except ValueError as exc:
        return False, f"not JSON ({str(exc)[:60]})"
    return True, "valid JSON"


@check("detectable_format:title", {})
def title(value: str) -> tuple[bool, str]:
    """A non-empty title in double angular brackets, like <<a quiet harbor>>."""
    found = [t for t in re.findall(r"<<[^\n]+>>", value) if t.lstrip("<").rstrip(">").strip()]
    return bool(found), f"title {found[0]}" if found else "no <<title>>"


# -- combination ------------------------------------------------------------------------------------------------
@check("combination:two_responses", {})
def two_responses(value: str) -> tuple[bool, str]:
    """Two different answers separated by ****** (and nothing empty between separators)."""
    answers = []
    parts = value.split("******")
    for i, p in enumerate(parts):
        if p.strip():
            answers.append(p.strip())
        elif i not in (0, len(parts) - 1):
            return False, "an empty answer between two ****** separators"
    ok = len(answers) == 2 and answers[0] != answers[1]
    return ok, f"{len(answers)} answers" + (" (the same twice)" if len(answers) == 2 and not ok else "")


@check("combination:repeat_prompt", {"prompt_to_repeat": "Name a fruit."}, prompt_to_repeat=text)
def repeat_prompt(value: str, prompt_to_repeat: str) -> tuple[bool, str]:
    """The output first repeats the request word for word (case-insensitive)."""
    ok = value.strip().lower().startswith(prompt_to_repeat.strip().lower())
    return ok, "repeats the request first" if ok else "does not start with the request"


# -- start and end ----------------------------------------------------------------------------------------------
@check("startend:end_checker", {"end_phrase": "Any other questions?"}, end_phrase=text)
def end_checker(value: str, end_phrase: str) -> tuple[bool, str]:
    """The output ends with the phrase (case-insensitive; surrounding double quotes ignored)."""
    ok = value.strip().strip('"').lower().endswith(end_phrase.strip().lower())
    return ok, f"ends with {value.strip()[-len(end_phrase.strip()):]!r}"


@check("startend:start_checker", {"start_phrase": "In short,"}, source="harness", start_phrase=text)
def start_checker(value: str, start_phrase: str) -> tuple[bool, str]:
    """The output starts with the phrase (case-insensitive; a leading double quote ignored): end_checker's mirror."""
    ok = value.strip().lstrip('"').lower().startswith(start_phrase.strip().lower())
    return ok, f"starts with {value.strip()[:len(start_phrase.strip())]!r}"


@check("startend:quotation", {})
def quotation(value: str) -> tuple[bool, str]:
    """The whole output is wrapped in double quotation marks."""
    v = value.strip()
    ok = len(v) > 1 and v[0] == '"' and v[-1] == '"'
    return ok, "wrapped in double quotes" if ok else "not wrapped in double quotes"


# -- case and punctuation ---------------------------------------------------------------------------------------
@check("change_case:english_lowercase", {})
def english_lowercase(value: str) -> tuple[bool, str]:
    """No capital letter (str.islower). IFEval also asks langdetect that the text is English; this does not."""
    caps = re.findall(r"\b\w*[A-Z]\w*", value)
    return value.islower(), f"capitals in {', '.join(map(repr, caps[:3]))}" if caps else "all lowercase"


@check("change_case:english_capital", {})
def english_capital(value: str) -> tuple[bool, str]:
    """No lowercase letter (str.isupper). IFEval also asks langdetect that the text is English; this does not."""
    low = re.findall(r"\b\w*[a-z]\w*", value)
    return value.isupper(), f"lowercase in {', '.join(map(repr, low[:3]))}" if low else "all capitals"


@check("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
       capital_frequency=count(1), capital_relation=relation)
def capital_word_frequency(value: str, capital_frequency: int, capital_relation: str) -> tuple[bool, str]:
    """Words in all capitals (str.isupper of nltk's word tokens, as IFEval) occur less than / at least N times."""
    found = sum(1 for w in word_tokens(value) if w.isupper())
    return _counted(found, "all-capital words", capital_relation, capital_frequency)


@check("punctuation:no_comma", {})
def no_comma(value: str) -> tuple[bool, str]:
    n = value.count(",")
    return n == 0, f"{n} commas" if n else "no commas"


@check("punctuation:forbidden_characters", {"characters": "!;"}, source="harness", characters=text)
def forbidden_characters(value: str, characters: str) -> tuple[bool, str]:
    """None of the given characters occurs (no_comma for any set of characters)."""
    used = sorted({c for c in value if c in characters})
    return not used, f"used {', '.join(map(repr, used))}" if used else "none of the forbidden characters"


# -- validating and running -------------------------------------------------------------------------------------
def problems(instruction: object) -> list[str]:
    """What is wrong with one {"id", "kwargs"} entry, each with the fix; [] when it is valid. None-valued kwargs are
    dropped first, as IFEval's own loader does (its rows carry every kwarg name, most of them null)."""
    if not isinstance(instruction, dict) or not isinstance(instruction.get("id"), str):
        return ['each instruction is {"id": ..., "kwargs": {...}}, e.g. '
                + json.dumps({"id": "punctuation:no_comma", "kwargs": {}})]
    iid = instruction["id"]
    if iid not in CHECKS:
        return [f"unknown instruction id {iid!r}.{did_you_mean(iid, list(CHECKS))} Known ids: {', '.join(CHECKS)}"
                + ("; language:response_language needs langdetect, which the harness does not use"
                   if iid == "language:response_language" else "")]
    c = CHECKS[iid]
    raw = instruction.get("kwargs", {})
    if not isinstance(raw, dict):
        return [f"{iid}: 'kwargs' must be a mapping, e.g. {json.dumps(c.example)}"]
    kwargs = {k: v for k, v in raw.items() if v is not None}
    fix = f"e.g. {json.dumps({'id': iid, 'kwargs': c.example})}"
    out = [f"{iid}: unknown kwarg {k!r}.{did_you_mean(k, list(c.params))} Kwargs: {', '.join(c.params) or '(none)'}"
           for k in kwargs if k not in c.params]
    out += [f"{iid}: missing kwarg {k!r}; {fix}" for k in c.params if k not in kwargs]
    for k, v in kwargs.items():
        wrong = c.params[k](v) if k in c.params else None
        if wrong:
            out.append(f"{iid}: kwarg {k!r} {wrong}, got {v!r}; {fix}")
    if not out and iid == "length_constraints:nth_paragraph_first_word" and \
            kwargs["nth_paragraph"] > kwargs["num_paragraphs"]:
        out.append(f"{iid}: nth_paragraph {kwargs['nth_paragraph']} is past num_paragraphs "
                   f"{kwargs['num_paragraphs']}; {fix}")
    return out


def kwargs_of(instruction: Mapping[str, JSONValue]) -> JSONDict:
    """A (validated) entry's kwargs without the None-valued ones."""
    raw = instruction.get("kwargs")
    return {k: v for k, v in raw.items() if v is not None} if isinstance(raw, Mapping) else {}


def follows(instruction: Mapping[str, JSONValue], value: str) -> tuple[bool, str]:
    """Whether one output follows one (validated) instruction, and what the check found; an empty output follows
    nothing (as in IFEval)."""
    if not value.strip():
        return False, "empty output"
    return CHECKS[str(instruction["id"])].fn(value, **kwargs_of(instruction))


def loose_variants(value: str) -> list[str]:
    """IFEval's loose variants of an output: as is, without its first line, its last line, or both, each also with
    every markdown '*' removed."""
    lines = value.split("\n")
    cut = [value, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return cut + [v.replace("*", "") for v in cut]
