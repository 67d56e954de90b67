"""What a blind rating sheet holds: which variants, which test items (a seeded sample, or those the variants disagree
on most), and each item's outputs in a seeded shuffled order under neutral labels A, B, C."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypedDict

import numpy as np

from harness import __version__
from harness.errors import HarnessInputError
from harness.spec.review import Criterion
from harness.store.reads import RunData, is_missing
from harness.verdicts.recommend import prompt_vs_finetuning, recommend

LABELS = "ABCDEFGH"
DEFAULT_OUTPUTS = 4  # base, the recommended variant and up to two rivals a human should see beside it
Stratify = Literal["none", "disagreement", "calibrate"]


@dataclass(frozen=True)
class Output:
    label: str
    variant_id: str
    text: str


@dataclass(frozen=True)
class Item:
    """One test item on the sheet: its prompt, reference, and the outputs in label order (A, B, ...)."""

    position: int
    example_id: str
    prompt: str
    reference: str
    outputs: tuple[Output, ...]


@dataclass
class Sheet:
    """A planned sheet. Everything but `items`' texts and the rubric goes to the store only, never into the files."""

    sheet_id: str
    run_id: str
    run_name: str
    suite: str
    seed: int
    sample: int
    stratify: str
    reference: bool
    rubric: list[Criterion]
    variant_ids: list[str]
    items: list[Item]
    raters: list[str] = field(default_factory=list)
    why: str = ""  # how the variants were chosen

    def store_rows(self) -> tuple[dict[str, object], list[dict[str, object]]]:
        """(the review_sheets row, the review_items rows): the blind mapping lives here alone."""
        row: dict[str, object] = {"sheet_id": self.sheet_id, "run_id": self.run_id, "suite": self.suite,
               "created_at": datetime.now(UTC).replace(tzinfo=None), "seed": self.seed, "sample": self.sample,
               "stratify": self.stratify, "reference": self.reference,
               "rubric": [c.model_dump() for c in self.rubric], "variant_ids": self.variant_ids,
               "raters": self.raters, "harness_version": __version__}
        items: list[dict[str, object]] = [{"sheet_id": self.sheet_id, "position": it.position, "example_id": it.example_id,
                  "label": o.label, "variant_id": o.variant_id} for it in self.items for o in it.outputs]
        return row, items


def default_variants(data: RunData) -> tuple[list[str], str]:
    """base, the recommended variant (the gate's default candidate when none is recommended), the variants tied with
    it, and the best prompt variant when the run has one: at most DEFAULT_OUTPUTS, with a sentence saying so."""
    rec = recommend(data)
    picked = [data.base_id] if data.base_id else []
    picked += [rec.candidate_id] if rec.candidate_id else []
    picked += list(rec.tie_group)
    verdict = prompt_vs_finetuning(data)
    if verdict is not None:
        picked.append(verdict.prompt_id)
    ids = list(dict.fromkeys(v for v in picked if v))[:DEFAULT_OUTPUTS]
    why = ("base, the recommended variant" + (", the variants statistically tied with it" if len(rec.tie_group) > 1
                                               else "") + (", the best prompt variant" if verdict else ""))
    return ids, f"default variants ({why}; at most {DEFAULT_OUTPUTS}); choose others with --variants"


class Pooled(TypedDict):
    """A test item every chosen variant answered: its prompt, reference and each variant's output."""

    prompt: str
    reference: str
    outputs: dict[str, str]  # variant_id -> its output


def _outputs(data: RunData, suite: str, variant_ids: list[str]) -> dict[str, Pooled]:
    """example_id -> {prompt, reference, outputs: {variant_id: text}} for items every chosen variant answered."""
    ex = data.examples[(data.examples["suite"] == suite) & data.examples["variant_id"].isin(variant_ids)]
    items: dict[str, Pooled] = {}
    for r in ex.to_dict("records"):
        if is_missing(r["output"]):
            continue
        it = items.setdefault(str(r["example_id"]), Pooled(prompt=str(r["prompt"] or ""),
                                                           reference="" if is_missing(r["reference"]) else
                                                           str(r["reference"]), outputs={}))
        it["outputs"].setdefault(str(r["variant_id"]), str(r["output"]))
    return {k: v for k, v in items.items() if len(v["outputs"]) == len(variant_ids)}


def disagreement(texts: list[str]) -> float:
    """1 - the mean pairwise similarity of the outputs (difflib's ratio over word sequences): 0 when all agree."""
    words = [t.split() for t in texts]
    pairs = [(a, b) for i, a in enumerate(words) for b in words[i + 1:]]
    if not pairs:
        return 0.0
    return 1.0 - float(np.mean([difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() for a, b in pairs]))


def _item_rng(seed: int, example_id: str) -> np.random.Generator:
    """A generator seeded by the sheet's seed and the item alone, so an item's label order never depends on which
    other items were sampled."""
    return np.random.default_rng([seed, int(hashlib.sha256(example_id.encode()).hexdigest()[:12], 16)])


def _pick(pool: dict[str, Pooled], variant_ids: list[str], n: int, seed: int, stratify: Stratify,
          priority: dict[str, float] | None = None) -> list[str]:
    ids = sorted(pool)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    if stratify == "disagreement":  # the most disagreeing first; the seeded order breaks ties
        score = {e: disagreement([pool[e]["outputs"][v] for v in variant_ids]) for e in ids}
        order.sort(key=lambda e: -score[e])
    elif stratify == "calibrate":  # where judge and raters most likely disagree (verdicts.calibration.disagreements)
        order.sort(key=lambda e: -(priority or {}).get(e, -1.0))
    return order[:n]


def plan_sheet(data: RunData, variant_ids: list[str], rubric: list[Criterion], *, sample: int, seed: int,
               stratify: Stratify = "none", reference: bool = True, raters: list[str] | None = None,
               why: str = "", priority: dict[str, float] | None = None) -> Sheet:
    """The sheet for these variants: `sample` test items (seeded), each with its outputs shuffled under A, B, C."""
    suite = data.suite_of("heldout")
    if suite is None:
        raise HarnessInputError(f"run {data.run.get('run_id')} has no heldout suite: a sheet rates outputs on the "
                                "test set, which the heldout suite generates. Add 'heldout' to the spec's suites.")
    if not 1 <= len(variant_ids) <= len(LABELS):
        raise HarnessInputError(f"--variants: a sheet shows 1 to {len(LABELS)} outputs per item, got "
                                f"{len(variant_ids)}")
    status = dict(zip(data.variants["variant_id"], data.variants["status"], strict=True))
    unfinished = [v for v in variant_ids if status.get(v) != "finished"]
    if unfinished:
        raise HarnessInputError(f"--variants: {', '.join(unfinished)} did not finish in run {data.run.get('run_id')}; "
                                "only finished variants have outputs to rate")
    pool = _outputs(data, suite, variant_ids)
    if not pool:
        raise HarnessInputError(f"run {data.run.get('run_id')}: no test item of suite {suite} has an output from "
                                "every chosen variant; choose others with --variants")
    chosen = _pick(pool, variant_ids, sample, seed, stratify, priority)
    items = []
    for pos, eid in enumerate(chosen):
        order = [variant_ids[i] for i in _item_rng(seed, eid).permutation(len(variant_ids))]
        outs = tuple(Output(LABELS[i], v, pool[eid]["outputs"][v]) for i, v in enumerate(order))
        items.append(Item(pos + 1, eid, pool[eid]["prompt"], pool[eid]["reference"], outs))
    ident = {"run": str(data.run.get("run_id")), "suite": suite, "reference": reference, "stratify": stratify,
             "rubric": [c.model_dump() for c in rubric],
             "items": [[it.example_id, [(o.label, o.variant_id) for o in it.outputs]] for it in items]}
    sheet_id = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    return Sheet(sheet_id, str(data.run.get("run_id")), str(data.run.get("name") or ""), suite, seed, sample,
                 stratify, reference, list(rubric), list(variant_ids), items, list(raters or []), why)
