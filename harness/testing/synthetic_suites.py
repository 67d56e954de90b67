"""Synthetic rows of the newer suite kinds (safety, instructions, memorization, judge) and human ratings of the judge
suite's items, shaped as their scorers and `harness review import` store them; used by harness.testing.synthetic."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

import numpy as np
import numpy.typing as npt

from harness.scores import JSONDict
from harness.store.db import Store
from harness.store.review import save_sheet, store_ratings
from harness.testing.rows import ExampleRow, Rows, ScoreRow

SAFETY_CATEGORIES = ["fraud", "malware", "weapons", "self-harm"]
INSTRUCTION_TYPES = ["punctuation:no_comma", "length_constraints:number_words", "change_case:english_lowercase",
                     "detectable_format:json_format", "startend:end_checker"]
RUBRIC = [{"name": "accuracy", "scale": "1-5", "higher_is_better": True, "help": ""},
          {"name": "hallucination", "scale": "yes/no", "higher_is_better": False, "help": ""}]
COPIED = "your refund will be issued to the original payment method within five working days of the return"
Hostile = Callable[[int, str], str]  # plants a hostile string into row i's text (or leaves it)


def _ci(x: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """Mean with a normal-approximation 95% interval (cheap; real scorers bootstrap)."""
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    half = 1.96 * float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else 0.0
    if x.min() >= 0 and x.max() <= 1:  # a rate: keep the interval inside [0, 1]
        return m, max(0.0, m - half), min(1.0, m + half)
    return m, m - half, m + half


def score_row(suite: str, kind: str, metric: str, x: npt.ArrayLike) -> ScoreRow:
    """A `scores` row of one metric over per-example values x."""
    values = np.asarray(x, dtype=float)
    m, lo, hi = _ci(values)
    return {"suite": suite, "metric": metric, "value": m, "ci_low": lo, "ci_high": hi, "n": len(values),
            "suite_version": "1", "scorer": {"kind": kind, "args": {}}}


def _rate(metric: str, x: list[float], suite: str, kind: str) -> ScoreRow:
    return score_row(suite, kind, metric, np.array(x, dtype=float))


def safety(rng: np.random.Generator, q: float, hostile: Hostile, n: int = 24) -> Rows:
    """Harmful requests (refusal_rate) and benign look-alikes (over_refusal_rate), in four categories; a tuned
    variant (q above base's 0.12) refuses fewer harmful requests and over-refuses fewer benign ones."""
    refuse = float(np.clip(0.85 - 0.6 * (q - 0.12), 0, 1))
    over = float(np.clip(0.30 - 0.3 * (q - 0.12), 0, 1))
    rows: list[ExampleRow] = []
    values: dict[str, list[float]] = {}
    for i in range(n):
        harmful, cat = i % 3 != 2, SAFETY_CATEGORIES[i % 4]
        refused = bool(rng.random() < (refuse if harmful else over))
        metric = "refusal_rate" if harmful else "over_refusal_rate"
        verdict = ("refused" if refused else "complied") if harmful else ("over-refused" if refused else "answered")
        out = "I can't help with that." if refused else "Sure, here is how: step 1 ..."
        for m in (metric, f"{metric}:{cat}"):
            values.setdefault(m, []).append(float(refused))
        rows.append({"suite": "safety", "example_id": f"saf-{i:03d}", "prompt": hostile(i, f"Request {i} about {cat}"),
                     "reference": "(refuse)" if harmful else "(answer)", "output": hostile(i, out),
                     "passed": refused == harmful,
                     "detail": {"type": "harmful" if harmful else "benign", "category": cat, "verdict": verdict,
                                "refused": refused, "reason": "refusal pattern 1" if refused else "no refusal phrase",
                                metric: float(refused), f"{metric}:{cat}": float(refused)}})
    order = ["refusal_rate", "over_refusal_rate"] + sorted(m for m in values if ":" in m)
    return [_rate(m, values[m], "safety", "safety") for m in order], rows


def instructions(rng: np.random.Generator, q: float, hostile: Hostile, n: int = 20) -> Rows:
    """IFEval-style prompts with one or two instruction types each; strict and loose per prompt and per type."""
    follow = {t: float(np.clip(0.35 + 0.1 * k + 0.3 * (q - 0.12), 0, 1)) for k, t in enumerate(INSTRUCTION_TYPES)}
    rows: list[ExampleRow] = []
    per: list[dict[str, float]] = []
    for i in range(n):
        types = [INSTRUCTION_TYPES[i % 5]] + ([INSTRUCTION_TYPES[(i + 2) % 5]] if i % 2 else [])
        strict = [bool(rng.random() < follow[t]) for t in types]
        loose = [s or bool(rng.random() < 0.3) for s in strict]
        verdicts: list[JSONDict] = [{"id": t, "strict": s, "loose": lo}
                                    for t, s, lo in zip(types, strict, loose, strict=True)]
        v = {"prompt_strict": float(all(strict)), "prompt_loose": float(all(loose)),
             "instruction_strict": sum(strict) / len(types), "instruction_loose": sum(loose) / len(types),
             **{f"instruction_strict:{t}": float(s) for t, s in zip(types, strict, strict=True)}}
        per.append(v)
        rows.append({"suite": "instructions", "example_id": f"ifeval-{i:03d}",
                     "prompt": hostile(i, f"Write a reply to ticket {i}; follow: {', '.join(types)}"),
                     "reference": "; ".join(types), "output": hostile(i, "a reply"),
                     "passed": v["prompt_strict"] == 1.0, "detail": {"instructions": verdicts, **v}})
    metrics = ["prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose"]
    metrics += [f"instruction_strict:{t}" for t in sorted(INSTRUCTION_TYPES)]
    return [_rate(m, [v[m] for v in per if m in v], "instructions", "instructions") for m in metrics], rows


def memorization(rng: np.random.Generator, q: float, base: bool, hostile: Hostile, n_test: int = 20,
                 n_train: int = 10) -> Rows:
    """Field accuracy on sampled training prompts and on the test set (the gap), and test outputs that copy a
    training answer's span (regurgitation), each copy with its source line."""
    copy_p = 0.0 if base else float(np.clip(0.3 * q, 0, 1))
    rows: list[ExampleRow] = []
    test_fa: list[float] = []
    train_fa: list[float] = []
    regurg: list[float] = []
    for i in range(n_test):
        copied = bool(rng.random() < copy_p)
        fa = float(rng.random() < q)
        test_fa.append(fa)
        regurg.append(float(copied))
        copy: JSONDict | None = {"span": hostile(i, COPIED), "words": 17, "train_example": f"train.jsonl:{11 + 7 * i}",
                "train_example_id": f"train-{11 + 7 * i:04d}"} if copied else None
        rows.append({"suite": "memorization", "example_id": f"ex-{i:04d}", "prompt": f"Ticket ex-{i:04d}",
                     "reference": "{}", "output": hostile(i, COPIED if copied else "We are on it."),
                     "passed": not copied,
                     "detail": {"split": "test", "copied": copy, "regurgitation_rate": float(copied),
                                "test_field_accuracy": fa}})
    fit = q if base else min(1.0, q + 0.25)
    for i in range(n_train):
        fa = float(rng.random() < fit)
        train_fa.append(fa)
        rows.append({"suite": "memorization", "example_id": f"train:train-{i:04d}", "prompt": f"Train ticket {i}",
                     "reference": "{}", "output": "{}", "passed": bool(fa),
                     "detail": {"split": "train", "source": f"train.jsonl:{i + 1}", "train_field_accuracy": fa}})
    scores = [_rate("regurgitation_rate", regurg, "memorization", "memorization"),
              _rate("train_field_accuracy", train_fa, "memorization", "memorization"),
              _rate("test_field_accuracy", test_fa, "memorization", "memorization")]
    gap = float(np.mean(train_fa) - np.mean(test_fa))
    scores.append({**scores[-1], "metric": "gap_field_accuracy", "value": gap, "ci_low": gap - 0.2,
                   "ci_high": gap + 0.2, "n": n_test + n_train})
    return scores, rows


def judge(rng: np.random.Generator, q: float, hostile: Hostile, n: int = 20) -> Rows:
    """Pointwise judgments of the held-out outputs on a two-criterion rubric (accuracy 1-5, hallucination yes/no)."""
    rows: list[ExampleRow] = []
    acc: list[float] = []
    hal: list[float] = []
    for i in range(n):
        a = int(np.clip(round(1 + 4 * q + rng.normal(0, 0.8)), 1, 5))
        h = bool(rng.random() < 0.5 - 0.4 * q)
        acc.append(float(a))
        hal.append(float(h))
        rows.append({"suite": "judge", "example_id": f"ex-{i:04d}", "prompt": f"Ticket ex-{i:04d}",
                     "reference": "{}", "output": hostile(i, "We are on it."), "passed": a >= 4 and not h,
                     "detail": {"judgment": {"accuracy": {"score": a, "rationale": hostile(i, "matches the reference")},
                                             "hallucination": {"score": "yes" if h else "no", "rationale": "ok"}},
                                "judge:accuracy": float(a), "judge:hallucination": float(h)}})
    scores = [_rate("judge:accuracy", acc, "judge", "judge"), _rate("judge:hallucination", hal, "judge", "judge")]
    scores.append({**scores[0], "metric": "judge_errors", "value": 0.0, "ci_low": 0.0, "ci_high": 0.0})
    for s in scores:
        s["scorer"] = {"kind": "judge", "args": {"judge": "openai:gpt-judge", "judge_identity": "openai:gpt-judge@fake",
                                                 "rubric_version": "r1"}}
    return scores, rows


def write_ratings(store: Store, run_id: str, variant_ids: list[str], judged: dict[str, dict[str, tuple[int, bool]]],
                  seed: int = 0) -> str:
    """A blind sheet over the judge suite's items for these variants, rated by two raters who mostly agree with the
    judge (`judged`: variant -> example -> (accuracy, hallucination)); returns the sheet id."""
    rng = np.random.default_rng(seed + 99)
    sheet_id = f"sheet-{run_id}"
    examples = sorted(set.intersection(*(set(judged[v]) for v in variant_ids)))[:12]
    labels = [chr(ord("A") + k) for k in range(len(variant_ids))]
    save_sheet(store, {"sheet_id": sheet_id, "run_id": run_id, "suite": "judge", "created_at": datetime(2025, 1, 7),
                       "seed": seed, "sample": len(examples), "stratify": "none", "reference": True, "rubric": RUBRIC,
                       "variant_ids": variant_ids, "raters": ["alice", "bob"], "harness_version": "test"},
               [{"sheet_id": sheet_id, "position": p, "example_id": e, "label": lab, "variant_id": v}
                for p, e in enumerate(examples) for lab, v in zip(labels, variant_ids, strict=True)])
    for rater in ("alice", "bob"):
        rows = []
        for e in examples:
            for lab, v in zip(labels, variant_ids, strict=True):
                a, h = judged[v][e]
                rating = int(np.clip(a + rng.choice([-1, 0, 0, 0, 1]), 1, 5))
                for crit, value in (("accuracy", float(rating)), ("hallucination", float(h))):
                    rows.append({"sheet_id": sheet_id, "rater": rater, "example_id": e, "variant_id": v,
                                 "criterion": crit, "value": value, "comment": "", "label": lab,
                                 "rated_at": datetime(2025, 1, 8, 10)})
        store_ratings(store, sheet_id, rater, rows)
    return sheet_id
