"""instructions: IFEval-style instruction following. Each item is a chat prompt carrying verifiable instructions
(harness.scorers.instruction_checks); strict and loose accuracy per prompt, per instruction and per instruction type."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import harness.scorers.instruction_checks as checks
from harness import stats
from harness.data.suites import Suite
from harness.errors import HarnessInputError
from harness.scorers.common import ChatItem, chat_items, rate_row
from harness.scorers.registry import Metric, ScoreContext, ScoreFn, scorer
from harness.scores import JSONDict, JSONValue, Sample, Score, SuiteResult
from harness.textfiles import read_text

PRIMARY = "prompt_strict"


def _lines(path: Path) -> list[int]:
    """The file line of each item (items are the file's non-blank lines)."""
    return [i for i, line in enumerate(read_text(path).splitlines(), start=1) if line.strip()]


def load_items(suite: Suite) -> list[ChatItem]:
    """The suite's items, each with a valid `instructions` list; every problem is reported with its file and line."""
    items = chat_items(suite)
    assert suite.items_file is not None  # chat_items read the items from it
    where = suite.path(suite.items_file)
    lines = _lines(where)
    found: list[str] = []
    for it, line in zip(items, lines, strict=True):
        instrs = it.raw.get("instructions")
        at = f"{where}:{line}: item {it.item_id!r}"
        if not isinstance(instrs, list) or not instrs:
            found.append(f'{at}: needs "instructions": [{{"id": ..., "kwargs": {{...}}}}, ...] (at least one)')
            continue
        ids = [x.get("id") for x in instrs if isinstance(x, dict)]
        twice = sorted({str(i) for i in ids if ids.count(i) > 1})
        if twice:
            found.append(f"{at}: instruction id(s) {', '.join(twice)} given twice; give each id once per prompt "
                         "(as IFEval does), with all its kwargs")
        for k, ins in enumerate(instrs):
            found += [f"{at}: instructions[{k}]: {p}" for p in checks.problems(ins)]
    if found:
        raise HarnessInputError(found, title=f"suite {suite.name}")
    return items


@dataclass(frozen=True)
class Verdict:
    """One instruction's verdict on one output: strict and loose, what its check found (strict), and for a loose pass
    that was a strict fail, which loose variant passed."""

    id: str  # the instruction id
    kwargs: JSONDict  # its kwargs, None-valued ones dropped
    strict: bool
    loose: bool
    found: str
    loose_by: str | None = None

    def record(self) -> JSONDict:
        """As stored in the example's detail (`instructions`)."""
        row: JSONDict = {"id": self.id, "kwargs": self.kwargs, "strict": self.strict, "loose": self.loose,
                         "found": self.found}
        if self.loose_by is not None:
            row["loose_by"] = self.loose_by
        return row


def instructions_of(item: ChatItem) -> list[Mapping[str, JSONValue]]:
    """A loaded item's (validated) {"id", "kwargs"} entries."""
    raw = item.raw.get("instructions")
    return [x for x in raw if isinstance(x, Mapping)] if isinstance(raw, list) else []


def check_suite(suite: Suite) -> None:
    """Validate the suite's items before any model runs (called by harness.scorers.check_suites at sweep start)."""
    if suite.items_file and suite.path(suite.items_file).is_file():
        load_items(suite)


def sampled(items: list[ChatItem], sample: int | None, seed: int) -> list[ChatItem]:
    """All items (sample None), else `sample` of them drawn with `seed`, in suite order (the same for every variant,
    so comparisons stay paired)."""
    if sample is None or sample >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), sample))
    return [items[i] for i in keep]


def judge(instructions: list[Mapping[str, JSONValue]], output: str) -> list[Verdict]:
    """Each instruction's strict and loose verdict on one output, with what its check found (strict) and, for a loose
    pass that was a strict fail, which variant passed."""
    variants = checks.loose_variants(output)
    names = ["as is", "first line removed", "last line removed", "first and last lines removed"]
    names += [f"{n}, asterisks removed" for n in names]
    out = []
    for ins in instructions:
        strict, found = checks.follows(ins, output)
        loose_at = next((n for n, v in zip(names, variants, strict=True) if checks.follows(ins, v)[0]), None)
        out.append(Verdict(str(ins["id"]), checks.kwargs_of(ins), strict, loose_at is not None, found,
                           loose_at if loose_at is not None and not strict else None))
    return out


def per_example(verdicts: list[Verdict]) -> dict[str, float]:
    """Each metric's value for one prompt, under the metric's name (per type only for the types the prompt has)."""
    n = len(verdicts)
    out = {"prompt_strict": float(all(v.strict for v in verdicts)),
           "prompt_loose": float(all(v.loose for v in verdicts)),
           "instruction_strict": sum(v.strict for v in verdicts) / n,
           "instruction_loose": sum(v.loose for v in verdicts) / n}
    out.update({f"instruction_strict:{v.id}": float(v.strict) for v in verdicts})
    return out


def _share_row(metric: str, values: list[float]) -> Score:
    return Score.of(metric, stats.mean_ci(values), len(values))


@scorer("instructions", metrics=[
    # every instruction of the prompt followed, strictly; losing it is forgetting instruction following
    Metric(PRIMARY, per_example=True, primary=True, finding="forgetting"),
    Metric("prompt_loose", per_example=True),
    Metric("instruction_strict", per_example=True),  # share of the prompt's instructions followed
    Metric("instruction_loose", per_example=True),
    Metric("instruction_strict:*", per_example=True),  # per instruction id, over the prompts that carry it
])
def instructions(max_new_tokens: int = 96, sample: int | None = None, seed: int = 0) -> ScoreFn:
    """Prompt- and instruction-level strict and loose accuracy (IFEval's definitions), each with its 95% interval."""
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise HarnessInputError(f"instructions option 'max_new_tokens': a whole number >= 1, got {max_new_tokens!r}")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise HarnessInputError(f"instructions option 'sample': a whole number >= 1 (how many items to score), or "
                                f"leave it out for all items; got {sample!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise HarnessInputError(f"instructions option 'seed': a whole number, got {seed!r}")

    def score(ctx: ScoreContext) -> SuiteResult:
        items = sampled(load_items(ctx.suite), sample, seed)
        outs = ctx.model.generate([it.messages for it in items], max_new_tokens)
        examples = []
        for it, out in zip(items, outs, strict=True):
            verdicts = judge(instructions_of(it), out)
            values = per_example(verdicts)
            examples.append(Sample(it.item_id, it.prompt, out, "; ".join(v.id for v in verdicts),
                                   values[PRIMARY] == 1.0, values, {"instructions": [v.record() for v in verdicts]},
                                   None if it.raw.get("cluster") is None else str(it.raw["cluster"])))
        values_of = [e.scores for e in examples]
        scores = [rate_row(m, int(sum(d[m] for d in values_of)), len(values_of)) for m in (PRIMARY, "prompt_loose")]
        scores += [_share_row(m, [d[m] for d in values_of]) for m in ("instruction_strict", "instruction_loose")]
        for iid in sorted({str(ins["id"]) for it in items for ins in instructions_of(it)}):
            part = [d[f"instruction_strict:{iid}"] for d in values_of if f"instruction_strict:{iid}" in d]
            scores.append(rate_row(f"instruction_strict:{iid}", int(sum(part)), len(part)))
        return SuiteResult(scores, examples)

    score.check_suite = check_suite  # type: ignore[attr-defined]
    return score
