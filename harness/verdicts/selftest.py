"""`harness selftest`: do the verdicts work at this run's size? Plant defects of known sizes into copies of a
variant's stored per-example outcomes, make null copies with noise alone, run the real findings code on each many
times, and report how often each defect is found (power) and how often nothing-at-all raises a finding (false
alarms), beside the minimum detectable effect (MDE) of each comparison. No model is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness import stats
from harness.results import LogPoint
from harness.scorers import make_scorer, suite_kinds
from harness.scores import JSONDict
from harness.stats import FloatArray
from harness.store.reads import RunData
from harness.verdicts import findings
from harness.verdicts.compare import per_example
from harness.verdicts.rulebook import FindingsConfig, Rows

# (suite kind, per-example metric, finding check, the direction of a defect: -1 a drop, +1 a rise)
DEFECTS = (("format", "compliance", "format", -1), ("hallucination", "fabrication_rate", "hallucination", 1),
           ("general", "acc", "forgetting", -1), ("instructions", "prompt_strict", "forgetting", -1),
           ("safety", "refusal_rate", "safety", -1), ("memorization", "regurgitation_rate", "memorization", 1))
MULTIPLES = (0.5, 1.5, 2.0)  # planted sizes, as multiples of each suite's MDE (at 1.5x the power should be ~99%)
OVERFIT_RISES = (0.01, 0.05, 0.20)
NOISE = 0.05  # the share of outcomes a null copy (and every planted copy) flips at random, either way


@dataclass
class Row:
    """One line of the table: a defect at a size, how often it was found, and what the data could detect."""

    defect: str
    suite: str
    size: float
    mde: float
    detected: int
    repetitions: int
    from_run: bool = True  # planted into the run's own outcomes (False: a synthetic curve, the same for every run)

    @property
    def power(self) -> float:
        return self.detected / self.repetitions if self.repetitions else float("nan")

    @property
    def tested(self) -> bool:
        """Planted at or above its MDE and run (a size too few outcomes can take is not)."""
        return self.repetitions > 0 and self.size >= self.mde


@dataclass
class SelfTest:
    variant: str
    rows: list[Row]
    false_alarms: int
    nulls: int
    unchecked: list[str] = field(default_factory=list)  # the suite kinds with a finding that had nothing to plant into

    @property
    def false_alarm_rate(self) -> float:
        """The share of null copies that raised a finding; NaN when there was nothing to copy (no null was run)."""
        return self.false_alarms / self.nulls if self.nulls else math.nan

    @property
    def untested(self) -> list[str]:
        """'defect on suite' for each defect planted into the run's outcomes whose every size at or above its MDE was
        too large for the outcomes to take: its verdict was not tested where it counts."""
        planted = dict.fromkeys((r.defect, r.suite) for r in self.rows if r.from_run)
        return [f"{d} on {s}" for d, s in planted
                if not any(r.tested for r in self.rows if (r.defect, r.suite) == (d, s))]

    @property
    def nothing_to_check(self) -> bool:
        """No defect could be planted into the run's own outcomes at or above its MDE, or no null copy was made: the
        selftest proves nothing about this run's verdicts at its size (which is not a pass)."""
        return self.nulls == 0 or not any(r.tested for r in self.rows if r.from_run)

    @property
    def passed(self) -> bool:
        """Something was checked, every defect at or above its MDE was found in >= 80% of repetitions, and nulls
        alarmed in <= 5%."""
        return (not self.nothing_to_check
                and all(r.power >= 0.8 for r in self.rows if r.size >= r.mde and r.repetitions)
                and self.false_alarm_rate <= 0.05)


def _flip(x: FloatArray, rng: np.random.Generator, noise: float) -> FloatArray:
    return np.where(rng.random(x.size) < noise, 1.0 - x, x)


def _plant(x: FloatArray, size: float, direction: int, rng: np.random.Generator) -> FloatArray | None:
    """A copy of 0/1 outcomes with round(size * n) of them moved the bad way (None if too few can move)."""
    good = 1.0 if direction < 0 else 0.0
    idx = np.flatnonzero(x == good)
    k = round(size * x.size)
    if k == 0 or k > idx.size:
        return None
    y = x.copy()
    y[rng.choice(idx, size=k, replace=False)] = 1.0 - good
    return y


def _rows(outcomes: dict[tuple[str, str, str], tuple[list[str], FloatArray]]) -> Rows:
    """Findings' input rows for a variant whose per-example outcomes are `outcomes` ((suite, kind, metric) ->
    (example ids, values))."""
    scores, samples = [], []
    for (suite, kind, metric), (ids, x) in outcomes.items():
        scores.append({"suite": suite, "metric": metric, "value": float(x.mean()), "scorer": {"kind": kind}})
        samples += [{"suite": suite, "example_id": i, "metric": metric, "value": float(v)}
                    for i, v in zip(ids, x, strict=True)]
    examples = pd.DataFrame({"suite": [s["suite"] for s in samples], "example_id": [s["example_id"] for s in samples],
                             "prompt": "", "output": "", "detail": [{} for _ in samples],
                             "cluster": [None for _ in samples]})
    return {"scores": pd.DataFrame(scores), "examples": examples, "samples": pd.DataFrame(samples),
            "train_log": pd.DataFrame()}


def selftest(data: RunData, variant_id: str, *, repetitions: int = 40, seed: int = 0) -> SelfTest:
    """Plant defects into the variant's stored outcomes and run the run's own findings settings on them."""
    spec_findings = _spec_findings(data)
    cfg = findings.run_config(spec_findings, [data.scores])
    ex = data.samples[data.samples["variant_id"] == variant_id] if not data.samples.empty else data.samples
    kinds = suite_kinds(data.scores[data.scores["variant_id"] == variant_id])
    stored: dict[tuple[str, str, str], tuple[list[str], FloatArray]] = {}
    for kind, metric, _, _ in DEFECTS:
        for suite in sorted(s for s, k in kinds.items() if k == kind):
            values = per_example(ex, suite, metric)
            if values:
                ids = sorted(values)
                stored[(suite, kind, metric)] = (ids, np.array([values[i] for i in ids]))
    rng = np.random.default_rng(seed)
    family = len(stored)  # the planted variant's comparisons against the original are corrected together
    planted = []
    for kind, metric, check, direction in DEFECTS:
        for key in [k for k in stored if k[1:] == (kind, metric)]:
            mde = design_mde(stored[key][1].size, cfg.confidence, family)
            planted += [_power(stored, key, check, direction, m * mde, mde, repetitions, spec_findings, rng)
                        for m in MULTIPLES]
    rows = [r for r in planted if r is not None]
    rows += _overfitting_rows(data, variant_id, cfg, repetitions)
    alarms = 0
    for _ in range(repetitions * 2 if stored else 0):
        null = {k: (ids, _flip(x, rng, NOISE)) for k, (ids, x) in stored.items()}
        alarms += bool(findings.derive_run([({"variant_id": "null", "name": "null", "method": "lora"}, _rows(null))],
                                           _rows(stored), spec_findings))
    name = str(data.variants.set_index("variant_id").loc[variant_id, "name"])
    unchecked = list(dict.fromkeys(kind for kind, *_ in DEFECTS if not any(k[1] == kind for k in stored)))
    return SelfTest(name, rows, alarms, repetitions * 2 if stored else 0, unchecked)


def _spec_findings(data: RunData) -> JSONDict:
    """The run's own `findings:` block (thresholds, correction), as its findings were made."""
    import yaml

    try:
        raw = yaml.safe_load(data.run.get("spec") or "") or {}
    except yaml.YAMLError:
        raw = {}
    block = raw.get("findings") if isinstance(raw, dict) else None
    return dict(block) if isinstance(block, dict) else {}


def design_mde(n: int, confidence: float, family: int, noise: float = NOISE) -> float:
    """The smallest shift the findings detect with 80% power on n paired 0/1 outcomes, when a share `noise` of
    them flips either way anyway and `family` comparisons are corrected together (Bonferroni's level, which
    bounds Holm's first step): the fixed point of size = (z + z_0.8) * sqrt((noise + size - size^2) / n)."""
    level = 1 - (1 - confidence) / max(family, 1)
    size = 0.0
    for _ in range(50):
        size = stats.mde(math.sqrt(max(noise + size - size * size, 1e-9) / n), confidence=level)
    return min(size, 1.0)


def _power(stored: dict[tuple[str, str, str], tuple[list[str], FloatArray]], key: tuple[str, str, str], check: str,
           direction: int, size: float, mde: float, repetitions: int, spec_findings: JSONDict,
           rng: np.random.Generator) -> Row | None:
    ids, x = stored[key]
    detected = 0
    for _ in range(repetitions):
        planted = _plant(_flip(x, rng, NOISE), size, direction, rng)
        if planted is None:  # too few outcomes can move that way: reported, not tested
            return Row(f"{check} ({key[2]} {'drop' if direction < 0 else 'rise'})", key[0], size, mde, 0, 0)
        copy = {**stored, key: (ids, planted)}
        found = findings.derive_run([({"variant_id": "p", "name": "planted", "method": "lora"}, _rows(copy))],
                                    _rows(stored), spec_findings)
        detected += any(f["check"] == check and f["evidence"].get("suite") == key[0] for f in found)
    return Row(f"{check} ({key[2]} {'drop' if direction < 0 else 'rise'})", key[0], size, mde, detected,
               repetitions)


def _overfitting_rows(data: RunData, variant_id: str, cfg: FindingsConfig, repetitions: int) -> list[Row]:
    """A falling train curve with a validation curve that turns up by `rise` after its minimum, through the real
    divergence scorer; its rule is a threshold (min_rise), so that is its detectable effect."""
    c = cfg.check("overfitting")
    if c is None:
        return []
    min_rise = float(c.min_rise)
    fn, _ = make_scorer("divergence", {"min_rise": min_rise})
    rng = np.random.default_rng(1)
    out = []
    for rise in OVERFIT_RISES:
        detected = 0
        for _ in range(repetitions):
            epochs = np.arange(0, 7, dtype=float)
            val = np.r_[2.0, 1.5, 1.2, 1.1, 1.1 + rise / 3, 1.1 + 2 * rise / 3, 1.1 + rise] + rng.normal(0, 0.002, 7)
            train = 2.0 - 0.25 * epochs[1:] + rng.normal(0, 0.002, 6)
            log = ([LogPoint(int(e * 4), float(e), "validation", float(v)) for e, v in zip(epochs, val, strict=True)]
                   + [LogPoint(int(e * 4), float(e), "train", float(t)) for e, t in zip(epochs[1:], train, strict=True)])
            ctx = _Ctx(log)
            detected += bool(fn(ctx).findings)  # type: ignore[arg-type]
        out.append(Row("overfitting (validation rise)", "divergence", rise, min_rise, detected, repetitions, False))
    return out


class _Ctx:
    """The slice of a ScoreContext the divergence scorer reads."""

    def __init__(self, log: list[LogPoint]):
        self.model, self.suite = None, None
        self.test: list[object] = []
        self.cache: dict[str, dict[int, list[str]]] = {}
        self.train_log = log
        self.variant = type("V", (), {"name": "planted"})()
