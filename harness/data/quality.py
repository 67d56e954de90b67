"""Data quality, one home for `harness data check` and a sweep's preflight: what a tokenizer does to the data
(answers cut by max_seq_length, special tokens in content) and what the fine-tuning guides ask of it (enough
examples, one output format, no outlier answers, no personal data, no near-duplicates between train and test)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, overload

from harness.data.chat import Example, read_examples
from harness.data.formats import FormatInfo
from harness.data.personal import KINDS, scan
from harness.data.similarity import (
    NEAR_DUPLICATE_THRESHOLD,
    RUN_WORDS,
    SHINGLE_WORDS,
    near_duplicate_pairs,
    shared_run_pairs,
)
from harness.data.sources import DataLocation, location
from harness.scores import JSONDict

GUIDE_MINIMUM = 100  # "minimum 100 examples, 500+ recommended"
JSON_MAJORITY = 0.8  # when at least this share of answers is JSON, the others are listed
OUTLIER_IQRS = 3.0  # answer word counts beyond Q3 + 3 IQR (or below Q1 - 3 IQR) are outliers


@dataclass
class DataCheck:
    """One data-quality result: the check, its severity, a message naming file and lines, and what it measured."""

    check: str
    severity: str  # "warning" or "error"
    message: str
    file: str
    lines: list[int] = field(default_factory=list)
    detail: JSONDict = field(default_factory=dict)

    def to_dict(self) -> JSONDict:
        """The JSON stored in runs.data_checks."""
        return {"check": self.check, "severity": self.severity, "message": self.message, "file": self.file,
                "lines": self.lines, **self.detail}


def line_list(lines: list[int], limit: int = 20, unit: str = "line") -> str:
    """'line 3', 'lines 3, 8, 12' or 'lines 3, 8, ... (45 in all)' (rows of a table: 'rows 3, 8')."""
    shown = ", ".join(map(str, lines[:limit])) + (f", ... ({len(lines)} in all)" if len(lines) > limit else "")
    return f"{unit}{'s' if len(lines) > 1 else ''} {shown}"


def unit_of(examples: list[Example]) -> dict[str, str]:
    """{'unit': 'row'} for examples located by row (a table or `datasets` split), else {} (lines, as before)."""
    return {"unit": examples[0].unit} if examples and examples[0].unit != "line" else {}


def count(n: int, noun: str) -> str:
    """'1 example', '3 examples'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- what the tokenizer does ----------------------------------------------------------------------------------
class Tokenizer(Protocol):
    """What the data checks use of a tokenizer (a transformers tokenizer, or a test's fake): its chat template, as
    text, and its encoding of one text or of a batch."""

    def apply_chat_template(self, conversation: list[dict[str, str]], /, *, tokenize: bool,
                            add_generation_prompt: bool = False) -> str: ...

    @overload
    def __call__(self, text: str, /, *, add_special_tokens: bool) -> Mapping[str, list[int]]: ...

    @overload
    def __call__(self, text: list[str], /, *, add_special_tokens: bool) -> Mapping[str, list[list[int]]]: ...


@dataclass
class Truncation:
    """Examples longer than max_seq_length: the answer cut entirely (an error) or in part (a warning)."""

    max_len: int
    total: int
    whole: list[tuple[str, int, int]] = field(default_factory=list)  # (file, line, prompt tokens)
    partial: list[tuple[str, int]] = field(default_factory=list)  # (file, line)
    unit: str = "line"  # or "row" (a table or `datasets` split)

    @property
    def share(self) -> float:
        """The share of examples whose answer is cut, entirely or in part."""
        return (len(self.whole) + len(self.partial)) / self.total if self.total else 0.0

    def errors(self, setting: str) -> list[str]:
        return [f"{location(f, line, self.unit)} (prompt {n} tokens): the prompt alone fills max_seq_length, so the assistant answer "
                f"would be cut entirely and teach nothing ({setting}); shorten the example or raise "
                "train.max_seq_length" for f, line, n in self.whole]

    def check(self, split: str) -> DataCheck | None:
        """A warning for the answers cut in part, with their share and lines."""
        if not self.partial:
            return None
        file, lines = self.partial[0][0], [line for _, line in self.partial]
        share = len(self.partial) / self.total
        return DataCheck("truncation", "warning",
                         f"{split}: {len(lines)} of {self.total} examples ({share:.1%}) are longer than max_seq_length "
                         f"{self.max_len} and their answers are cut in part: {file} {line_list(lines, unit=self.unit)}; "
                         "raise train.max_seq_length or shorten them", file, lines,
                         {"split": split, "share": round(share, 4), "max_seq_length": self.max_len,
                          "cut_entirely": len(self.whole), **({"unit": self.unit} if self.unit != "line" else {})})


def lengths(tokenizer: Tokenizer, messages: list[dict[str, str]]) -> tuple[int, int]:
    """(prompt tokens, full tokens) the way training tokenizes an example (harness.train.local.tokenize_chat)."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if f_ids[: len(p_ids)] != p_ids:
        return len(p_ids), len(p_ids) + len(tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"])
    return len(p_ids), len(f_ids)


def truncation(tokenizer: Tokenizer, examples: list[Example], max_len: int) -> Truncation:
    out = Truncation(max_len, len(examples), unit=examples[0].unit if examples else "line")
    for e in examples:
        n_prompt, n_full = lengths(tokenizer, e.messages)
        if n_prompt >= max_len:
            out.whole.append((e.source, e.line, n_prompt))
        elif n_full > max_len:
            out.partial.append((e.source, e.line))
    return out


def special_tokens(tokenizer: Tokenizer) -> list[str]:
    """The tokenizer's special and added special tokens (turn markers, end of text, ...), longest first."""
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok))
    return sorted((t for t in found if t), key=len, reverse=True)


def special_token_lines(tokenizer: Tokenizer, examples: list[Example]) -> list[str]:
    """'file:line: messages[i] (role) holds special token(s) ...' for each message that holds one."""
    markers = special_tokens(tokenizer)
    out = []
    for e in examples:
        for i, m in enumerate(e.messages):
            hits = [t for t in markers if t in m["content"]]
            if hits:
                out.append(f"{e.where}: messages[{i}] ({m['role']}) holds the tokenizer's special "
                           f"token(s) {', '.join(hits)}, which would become real turn markers")
    return out


# -- what the guides ask of the data --------------------------------------------------------------------------
def few_examples(train: list[Example], split: str = "train") -> DataCheck | None:
    """A warning below 100 training examples, quoting the guides."""
    if not train or len(train) >= GUIDE_MINIMUM:
        return None
    return DataCheck("few_examples", "warning",
                     f"{split}: {len(train)} training examples in {train[0].source}, fewer than {GUIDE_MINIMUM}. The "
                     "fine-tuning guides advise a \"minimum 100 examples, 500+ recommended\"; with fewer, scores "
                     "and findings rest on little", train[0].source, [],
                     {"split": split, "examples": len(train), "minimum": GUIDE_MINIMUM, "recommended": 500})


def _answers(examples: list[Example]) -> list[Example]:
    return [e for e in examples if e.messages[-1]["role"] == "assistant"]


def is_json_answer(text: str) -> bool:
    """The whole answer is one JSON object or array (prose around it, or a bare string or number, is not)."""
    try:
        value = json.loads(text.strip())
    except ValueError:
        return False
    return isinstance(value, dict | list)


def format_consistency(examples: list[Example], split: str = "train", majority: float = JSON_MAJORITY
                       ) -> DataCheck | None:
    """When most final assistant answers are JSON, a warning listing the lines whose answer is not."""
    answers = _answers(examples)
    if not answers:
        return None
    bad = [e.line for e in answers if not is_json_answer(e.reference)]
    share = 1 - len(bad) / len(answers)
    if not bad or share < majority:
        return None
    file = answers[0].source
    return DataCheck("format_consistency", "warning",
                     f"{split}: {len(answers) - len(bad)} of {len(answers)} final assistant answers ({share:.0%}) are "
                     f"JSON, {len(bad)} not: {file} {line_list(bad, unit=answers[0].unit)}. The guides: \"if you want "
                     "JSON output, every example should have JSON output\"; make these JSON too, or drop them", file,
                     bad, {"split": split, "json_share": round(share, 4), "majority": majority, **unit_of(answers)})


def length_outliers(examples: list[Example], split: str = "train", iqrs: float = OUTLIER_IQRS) -> DataCheck | None:
    """Answers whose word count lies beyond Q3 + iqrs*IQR or below Q1 - iqrs*IQR (IQR at least 1 word);
    needs 10 answers."""
    import numpy as np

    answers = _answers(examples)
    if len(answers) < 10:
        return None
    counts = np.array([len(e.reference.split()) for e in answers])
    q1, q3 = (float(q) for q in np.percentile(counts, [25, 75]))
    spread = iqrs * max(q3 - q1, 1.0)
    low, high = q1 - spread, q3 + spread
    out = [(e.line, int(n)) for e, n in zip(answers, counts, strict=True) if n < low or n > high]
    if not out:
        return None
    file = answers[0].source
    shown = ", ".join(f"{answers[0].unit} {line} ({n} words)" for line, n in out[:20]) + (", ..." if len(out) > 20 else "")
    return DataCheck("length_outliers", "warning",
                     f"{split}: {count(len(out), 'answer')} far longer or shorter than the rest (word counts outside "
                     f"[{low:g}, {high:g}], i.e. beyond {iqrs:g} IQR of the quartiles {q1:g} and {q3:g}; median "
                     f"{float(np.median(counts)):g}): {file} {shown}; check they are what the model should learn",
                     file, [line for line, _ in out],
                     {"split": split, "words": [n for _, n in out], "q1": q1, "q3": q3, "low": low, "high": high,
                      **unit_of(answers)})


def personal_data(examples: list[Example], split: str = "train") -> DataCheck | None:
    """A warning with the count and lines of each kind of personal data in any message (values masked)."""
    found = scan(examples)
    kinds = [k for k in KINDS if found.counts[k]]
    if not kinds:
        return None
    file = examples[0].source
    parts = [f"{found.counts[k]} x {KINDS[k]} ({line_list(found.lines[k], unit=examples[0].unit)}; e.g. {', '.join(found.masked[k])})"
             for k in kinds]
    every = sorted({line for k in kinds for line in found.lines[k]})
    return DataCheck("personal_data", "warning",
                     f"{split}: personal data in {file}: {'; '.join(parts)}. Remove or pseudonymise it before "
                     "training: a model can repeat what it was trained on", file, every,
                     {"split": split, "counts": {k: found.counts[k] for k in kinds},
                      "by_kind": {k: found.lines[k] for k in kinds}, **unit_of(examples)})


# -- near-duplicates between splits ---------------------------------------------------------------------------
def near_duplicates(train: list[Example], other: list[Example], split: str,
                    threshold: float = NEAR_DUPLICATE_THRESHOLD) -> DataCheck | None:
    """A warning naming each pair of a train and an `other` example at or above the similarity threshold, or sharing
    a distinctive run of RUN_WORDS words with alike prompts (shared_run_pairs)."""
    pairs = [(a, b, s, 0) for a, b, s in near_duplicate_pairs(train, other, threshold)] if train and other else []
    found = {(a.line, b.line) for a, b, _, _ in pairs}
    pairs += [p for p in (shared_run_pairs(train, other) if train and other else [])
              if (p[0].line, p[1].line) not in found]
    if not pairs:
        return None
    pairs.sort(key=lambda p: (p[1].line, p[0].line))
    file, train_file = other[0].source, train[0].source
    same = sum(a.key() == b.key() for a, b, _, _ in pairs)
    by_run = sum(r > 0 for *_, r in pairs)
    lines = sorted({b.line for _, b, _, _ in pairs})
    shown = "; ".join(f"{split} {b.at} ~ train {a.at} ({s:.2f}{f', {r} words in a row' if r else ''})"
                      for a, b, s, r in pairs[:20])
    return DataCheck("near_duplicates", "warning",
                     f"{split}: near-duplicates of training examples in {train_file}: {count(len(lines), 'example')} "
                     f"in {file} ({count(len(pairs), 'pair')} with Jaccard similarity of {SHINGLE_WORDS}-word shingles >= "
                     f"{threshold:g}{f', {same} identical' if same else ''}"
                     + (f"; {by_run} below it sharing a run of {RUN_WORDS}+ words no other training example has, with "
                        "alike prompts" if by_run else "") + f"): {shown}"
                     f"{'; ...' if len(pairs) > 20 else ''}. A {split} set the model has nearly seen in training "
                     "overstates its scores; remove them from one side", file, lines,
                     {"split": split, "train_file": train_file, "threshold": threshold,
                      "pairs": [{"train_line": a.line, "line": b.line, "similarity": round(s, 4),
                                 "identical": a.key() == b.key(), **({"shared_run": r} if r else {})}
                                for a, b, s, r in pairs], **unit_of(other),
                      **({"train_unit": train[0].unit} if train[0].unit != "line" else {})})


def dataset_checks(train: list[Example], held_out: dict[str, list[Example]], *,
                   threshold: float = NEAR_DUPLICATE_THRESHOLD) -> list[DataCheck]:
    """The checks that need no tokenizer: on the training examples their number, format consistency and answer
    length outliers; personal data in every split; near-duplicates between train and each held-out split."""
    checks = [few_examples(train), format_consistency(train), length_outliers(train)] if train else []
    checks += [personal_data(ex, split) for split, ex in [("train", train), *held_out.items()]]
    checks += [near_duplicates(train, ex, split, threshold) for split, ex in held_out.items()]
    return [c for c in checks if c is not None]


@dataclass(frozen=True)
class TokenCounts:
    """The chat-templated token counts of a source's examples."""

    total: int
    mean: float
    p50: float
    p95: float
    max: int


@dataclass
class Leakage:
    """One `--against` source: how it was read, and the pairs (line here, its line there) of identical examples and
    of examples with the same prompt."""

    file: str
    exact: list[tuple[int, int]]
    same_prompt: list[tuple[int, int]]
    problems: list[str]
    format: FormatInfo | None
    unit: str


@dataclass
class FileReport:
    """What `harness data check` found in one source; the tokenizer's findings are None without a tokenizer."""

    file: str
    examples: int
    problems: list[str]
    format: FormatInfo | None  # None: nothing could be read
    unit: str  # 'line', or 'row' for a table or `datasets` split
    duplicates: list[list[int]]  # the lines of each example written more than once
    messages_by_role: dict[str, int]
    against: list[Leakage] = field(default_factory=list)
    checks: list[DataCheck] = field(default_factory=list)
    tokens: TokenCounts | None = None
    truncation: Truncation | None = None  # also None without a max_seq_length
    special_tokens: list[str] | None = None


def check_files(path: Path | DataLocation, against: Sequence[Path | DataLocation], tokenizer: Tokenizer | None,
                max_seq_length: int | None = None, *, threshold: float = NEAR_DUPLICATE_THRESHOLD, fmt: str = "auto",
                columns: dict[str, str] | None = None) -> FileReport:
    """`harness data check`: how each source was read (format, mapping), counts, token lengths, truncation, special
    tokens, duplicates within the source and leakage into the `against` sources, and the data-quality checks (the
    source checked as training data)."""
    import numpy as np

    got = read_examples(_location(path), role="train", fmt=fmt, columns=columns, min_examples=0)
    examples, problems = got.examples, got.problems
    keys: dict[str, list[int]] = {}
    for e in examples:
        keys.setdefault(e.key(), []).append(e.line)
    roles: dict[str, int] = {}
    for e in examples:
        for m in e.messages:
            roles[m["role"]] = roles.get(m["role"], 0) + 1
    report = FileReport(got.info.source if got.info else str(path), len(examples), problems, got.info,
                        examples[0].unit if examples else "line", [lines for lines in keys.values() if len(lines) > 1],
                        roles)
    checks: list[DataCheck] = []
    if tokenizer is not None and examples:
        texts = [tokenizer.apply_chat_template(e.messages, tokenize=False) for e in examples]
        counts = np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]])
        report.tokens = TokenCounts(int(counts.sum()), float(counts.mean()), float(np.percentile(counts, 50)),
                                    float(np.percentile(counts, 95)), int(counts.max()))
        if max_seq_length:
            cut = truncation(tokenizer, examples, max_seq_length)
            report.truncation = cut
            problems += cut.errors(f"--max-seq-length {max_seq_length}")
            checks += [c for c in [cut.check("train")] if c]
        report.special_tokens = special_token_lines(tokenizer, examples)
    held_out: dict[str, list[Example]] = {}
    for other in against:
        read = read_examples(_location(other), role="test", fmt=fmt, columns=columns, min_examples=0,
                             need_assistant=False)
        other_examples, label = read.examples, read.info.source if read.info else str(other)
        held_out[Path(label).stem if Path(label).stem not in held_out else label] = other_examples
        other_keys = {e.key(): e.line for e in other_examples}
        other_prompts = {json.dumps(e.prompt_messages if e.messages[-1]["role"] == "assistant" else e.messages,
                                    sort_keys=True): e.line for e in other_examples}
        exact = [(lines[0], other_keys[k]) for k, lines in keys.items() if k in other_keys]
        prompt = [(e.line, other_prompts[p]) for e in examples
                  if (p := json.dumps(e.prompt_messages, sort_keys=True)) in other_prompts]
        report.against.append(Leakage(label, exact, prompt, read.problems, read.info,
                                      other_examples[0].unit if other_examples else "line"))
    report.checks = checks + dataset_checks(examples, held_out, threshold=threshold)
    return report


def _location(p: Path | DataLocation) -> DataLocation:
    return p if isinstance(p, DataLocation) else DataLocation(Path(p))
