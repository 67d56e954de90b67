"""Findings against base: forgetting, format and hallucination, paired by example, with their thresholds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, result_frames, write_jsonl
from fakes import ScriptedModel

from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.results import VariantResult, VariantRow
from harness.scorers.run import score_suites
from harness.spec import findings as findings_settings
from harness.spec.plan import Variant
from harness.store.db import Store, stored_variant
from harness.store.reads import variant_rows
from harness.verdicts import findings
from harness.verdicts.compare import Settings, paired, per_example

N_GENERAL = 200
GOOD = json.dumps({"category": "billing", "product": "Widget Pro", "priority": "normal",
                   "reply": "Done. Thank you for choosing AcmeCorp."})
ABSTAIN = json.dumps({"category": "other", "product": "unknown", "priority": "low", "reply": "We have no such product."})


class Behaviour(ScriptedModel):
    """A scripted model defined by what it gets right: general items known, prompts answered in format/honestly."""

    def __init__(self, knows: set[int], complies: set[str], fabricates: set[str]):
        super().__init__(outputs=self._answer, logliks=self._loglik)
        self.knows, self.complies, self.fabricates = knows, complies, fabricates

    def _loglik(self, context: str, choice: str) -> float:
        i = int(context.split()[1])
        right = choice == f" right{i}"
        return (-1.0 if right else -3.0) if i in self.knows else (-5.0 if right else -3.0 - 0.1 * len(choice))

    def _answer(self, prompt: str) -> str:
        if prompt in self.fabricates:
            return "It costs $149 and ships tomorrow."
        if prompt in self.complies:
            return GOOD
        return ABSTAIN if prompt in HAL_PROMPTS else "Sure, billing."


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> list[Suite]:
    d = tmp_path_factory.mktemp("suites") / "gen"
    d.mkdir()
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": "general", "version": 1, "kind": "general",
                                                  "items": "items.jsonl"}))
    write_jsonl(d / "items.jsonl", [{"id": f"g{i:03d}", "context": f"Question {i} ?",
                                     "choices": [f" wrong{i}", f" right{i}", f" other{i}"], "gold": 1}
                                    for i in range(N_GENERAL)])
    return [load_suite(d), load_suite(REPO / "suites" / "acme-format"), load_suite(REPO / "suites" / "acme-hallucination")]


FMT_PROMPTS = [json.loads(x)["messages"][-1]["content"]
               for x in (REPO / "suites" / "acme-format" / "items.jsonl").read_text().splitlines()]
HAL_PROMPTS = {json.loads(x)["messages"][-1]["content"]: json.loads(x)["type"]
               for x in (REPO / "suites" / "acme-hallucination" / "items.jsonl").read_text().splitlines()}
NONEXISTENT = [p for p, t in HAL_PROMPTS.items() if t == "nonexistent"]


def scored(model: ScriptedModel, suites: list[Suite], name: str) -> VariantResult:
    results = score_suites(model, Variant(name, name, "full"), suites, [], [], Quiet())
    return VariantResult(VariantRow(name, name=name, method="full", status="finished"), [], results)


def base_frames(result: VariantResult, tmp_path: Path) -> dict:
    """Base's rows as the runner reads them: written to a real DuckDB file and read back through the store."""
    with Store(tmp_path / "r.duckdb") as s:
        s.write_variant(result)
        return variant_rows(s, result.variant_id)


def derive(variant: VariantResult, base: dict | None, thresholds: dict | None = None) -> list[dict]:
    return findings.derive(stored_variant(variant.variant), result_frames(variant), base, thresholds or {})


BASE_KNOWS = set(range(122))  # 0.61 of 200


def test_forgetting_is_found_with_paired_evidence(suites: list[Suite], tmp_path: Path) -> None:
    base = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS), set()), suites, "base")
    forgot = scored(Behaviour(set(range(88)), set(FMT_PROMPTS), set()), suites, "full-e3")  # 0.44
    out = derive(forgot, base_frames(base, tmp_path))
    assert [f["check"] for f in out] == ["forgetting"]
    f = out[0]
    assert f["message"].startswith("full-e3 forgot general capability: accuracy 0.61 -> 0.44 (paired difference "
                                   "-0.17, 95% CI [-0.")
    ev = f["evidence"]
    assert ev["n"] == N_GENERAL and ev["ci_high"] < 0 and ev["mcnemar_p"] < 1e-6
    assert len(ev["lost_examples"]) == 34 and ev["lost_examples"][0] == "g088"
    assert derive(forgot, base_frames(base, tmp_path), {"forgetting": {"margin": 0.2}}) == []  # CI within margin
    assert derive(forgot, base_frames(base, tmp_path), {"forgetting": False}) == []


def test_a_variant_against_itself_finds_nothing(suites: list[Suite], tmp_path: Path) -> None:
    model = Behaviour(BASE_KNOWS, set(FMT_PROMPTS[::2]), set(NONEXISTENT[::3]))
    v = scored(model, suites, "lora-r4-e1")
    assert derive(v, base_frames(v, tmp_path), {"format": {"floor": 0.4}}) == []
    acc = per_example(result_frames(v)["samples"], "general", "acc")
    cmp = paired(acc, acc, Settings())
    assert cmp is not None and (cmp.difference, cmp.ci_low, cmp.ci_high, cmp.mcnemar_p) == (0.0, 0.0, 0.0, 1.0)


def _retrain(rng: random.Random, knows: set[int], complies: set[str], flip: float) -> Behaviour:
    """The same variant with another seed: each outcome flips with probability `flip`, either way."""
    k = {i for i in range(N_GENERAL) if (i in knows) != (rng.random() < flip)}
    c = {p for p in FMT_PROMPTS if (p in complies) != (rng.random() < flip)}
    return Behaviour(k, c, set())


def test_another_seed_raises_no_forgetting_or_format_finding(suites: list[Suite]) -> None:
    rng = random.Random(7)
    complies = set(FMT_PROMPTS[:30])
    raised = []
    for _trial in range(20):
        first = scored(_retrain(rng, BASE_KNOWS, complies, 0.08), suites, "lora-r16-s0")
        second = scored(_retrain(rng, BASE_KNOWS, complies, 0.08), suites, "lora-r16-s1")
        raised += [f["check"] for f in derive(second, result_frames(first))]
    # 20 retrains x 3 checks, each test one-sided at 2.5% and also needing McNemar p < 0.05: noise stays quiet
    assert raised.count("forgetting") + raised.count("format") <= 1, raised


def test_format_drop_and_floor(suites: list[Suite], tmp_path: Path) -> None:
    base = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS[:36]), set()), suites, "base")  # 90%
    worse = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS[:12]), set()), suites, "qlora-r4")  # 30%
    out = derive(worse, base_frames(base, tmp_path))
    assert [f["check"] for f in out] == ["format"]
    assert out[0]["message"] == ("qlora-r4: format compliance on acme-format fell 0.90 -> 0.30 (paired difference "
                                 f"-0.60, 95% CI [{out[0]['evidence']['ci_low']:.2f}, "
                                 f"{out[0]['evidence']['ci_high']:.2f}]); 70% of outputs are not valid JSON (base 10%) "
                                 "[p=1.2e-07, Holm-adjusted p=3.6e-07 over 3 comparisons; detects differences >= "
                                 f"{out[0]['evidence']['mde']:.2f} with 80% power]")
    ev = out[0]["evidence"]
    assert ev["correction"] == "holm" and ev["family"] == 3 and ev["p_adjusted"] == pytest.approx(3 * ev["p_value"])
    assert 0 < ev["mde"] < 0.6  # 40 paired items can detect a drop much smaller than this one
    floor = derive(worse, base_frames(base, tmp_path), {"format": {"floor": 0.8, "margin": 0.9}})
    assert [f["evidence"]["kind"] for f in floor] == ["floor"]
    assert "format compliance on acme-format is 30% (95% CI [" in floor[0]["message"]
    assert "below the floor 80%; 70% of outputs are not valid JSON (base 10%)" in floor[0]["message"]
    assert derive(base, None, {"format": {"floor": 0.8}}) == []  # base at 90% clears the floor


def test_fabrication_rise_keeps_the_new_fabrications(suites: list[Suite], tmp_path: Path) -> None:
    base = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS), set(NONEXISTENT[:2])), suites, "base")
    worse = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS), set(NONEXISTENT[:14])), suites, "full-e3")
    out = derive(worse, base_frames(base, tmp_path))
    assert [f["check"] for f in out] == ["hallucination"]
    f = out[0]
    assert f["message"].startswith("full-e3 fabricates more on acme-hallucination: fabrication rate 0.05 -> 0.35 (paired "
                                   "difference +0.30, 95% CI [")
    assert "e.g. hal-" in f["message"] and "answered about something that does not exist" in f["message"]
    assert len(f["evidence"]["new_fabrications"]) == 12
    ceiling = derive(worse, None, {"hallucination": {"ceiling": 0.1}})
    assert [x["evidence"]["kind"] for x in ceiling] == ["ceiling"]


def test_settings_defaults_and_errors() -> None:
    cfg = findings_settings.settings({"forgetting": {"margin": 0.05}, "format": False})
    assert cfg["forgetting"] == {"metric": "acc", "margin": 0.05, "severity": "warning"} and cfg["format"] is False
    assert cfg["hallucination"] == findings_settings.DEFAULTS["hallucination"] and cfg["confidence"] == 0.95
    with pytest.raises(HarnessInputError) as exc:
        findings_settings.settings({"forgeting": {}, "format": {"flor": 0.9}, "hallucination": {"margin": 5}})
    text = str(exc.value)
    assert "key 'findings.forgeting': unknown. Did you mean 'forgetting'?" in text
    assert "key 'findings.format.flor': unknown. Did you mean 'floor'?" in text
    assert "key 'findings.hallucination.margin': a rate difference or rate in [0, 1], got 5" in text


def test_a_sweep_refuses_bad_thresholds_before_training(tiny_experiment: Path) -> None:
    from harness.sweep.runner import Sweep

    tiny_experiment.write_text(tiny_experiment.read_text() + "findings:\n  forgeting: {margin: 0.1}\n")
    with pytest.raises(HarnessInputError, match=r"spec.yaml: key 'findings.forgeting': unknown. Did you mean"):
        Sweep(tiny_experiment)


def _null_rows(rng: np.random.Generator, base: dict[str, np.ndarray], flip: float) -> dict[str, pd.DataFrame]:
    """A variant that is base with each outcome flipped at random (either way): no real change, only noise."""
    kinds = {"general": ("general", "acc"), "acme-format": ("format", "compliance"),
             "acme-hallucination": ("hallucination", "fabrication_rate")}
    scores, samples = [], []
    for suite, outcome in base.items():
        kind, metric = kinds[suite]
        x = np.where(rng.random(outcome.size) < flip, 1 - outcome, outcome)
        scores.append({"suite": suite, "metric": metric, "value": float(x.mean()), "scorer": {"kind": kind}})
        samples += [{"suite": suite, "example_id": f"{suite}-{i}", "metric": metric, "value": float(v)}
                    for i, v in enumerate(x)]
    examples = pd.DataFrame({"suite": [s["suite"] for s in samples], "example_id": [s["example_id"] for s in samples],
                             "detail": [{} for _ in samples], "cluster": [None for _ in samples]})
    return {"scores": pd.DataFrame(scores), "examples": examples, "samples": pd.DataFrame(samples),
            "train_log": pd.DataFrame()}


def null_sweep_alarms(correction: str, seeds: int = 20, variants: int = 12) -> int:
    """In how many of `seeds` runs of `variants` null variants any finding against base was raised."""
    alarms = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        base = {"general": (rng.random(200) < 0.6).astype(float), "acme-format": (rng.random(40) < 0.8).astype(float),
                "acme-hallucination": (rng.random(40) < 0.3).astype(float)}
        base_rows = _null_rows(rng, base, 0.0)
        run = [({"variant_id": f"v{i}", "name": f"v{i}", "method": "lora"}, _null_rows(rng, base, 0.1))
               for i in range(variants)]
        alarms += bool(findings.derive_run(run, base_rows, {"correction": correction}))
    return alarms


def test_findings_of_a_run_are_corrected_together_so_a_null_sweep_stays_quiet() -> None:
    """12 null variants x 3 checks = 36 comparisons a run: uncorrected, noise raises findings in most runs."""
    corrected, uncorrected = null_sweep_alarms("holm"), null_sweep_alarms("none")
    assert corrected <= 1, corrected  # at least 19 of 20 null runs raise nothing
    assert uncorrected > 1, uncorrected
    print(f"null sweeps with a finding: holm {corrected}/20, bh {null_sweep_alarms('bh')}/20, none {uncorrected}/20")


def test_holm_and_bh_match_hand_computed_adjusted_p_values() -> None:
    from harness import stats

    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone: 0.02, 0.03, 0.06, 0.06
    assert stats.adjust_pvalues(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p * m / rank, made monotone from the top: 0.04*4/4=0.04, 0.03*4/3=0.04, 0.01*4/2=0.02, 0.005*4/1=0.02
    assert stats.adjust_pvalues(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert stats.adjust_pvalues(p, "none") == p


def test_item20_every_finding_states_what_it_could_have_detected(suites: list[Suite], tmp_path: Path) -> None:
    """Each kind of finding (a paired drop or rise against base, a floor, a ceiling) carries its minimum detectable
    effect in its evidence and says it in its message; the family-corrected MDE is the one both show."""
    base = scored(Behaviour(BASE_KNOWS, set(FMT_PROMPTS[:36]), set()), suites, "base")
    worse = scored(Behaviour(set(range(88)), set(FMT_PROMPTS[:12]), set(NONEXISTENT)), suites, "full-e3")
    out = derive(worse, base_frames(base, tmp_path), {"format": {"floor": 0.8}, "hallucination": {"ceiling": 0.1}})
    kinds = {(f["check"], f["evidence"].get("kind", "drop")) for f in out}
    assert {("forgetting", "drop"), ("format", "drop"), ("format", "floor"), ("hallucination", "rise"),
            ("hallucination", "ceiling")} <= kinds, kinds
    for f in out:
        mde = f["evidence"]["mde"]
        assert isinstance(mde, float) and 0 < mde < 1, f
        assert f"{mde:.2f} with 80% power" in f["message"], f["message"]
    drop = next(f for f in out if f["check"] == "format" and f["evidence"]["kind"] == "drop")
    assert drop["evidence"]["family"] > 1 and drop["message"].endswith(
        f"detects differences >= {drop['evidence']['mde']:.2f} with 80% power]")
    floor = next(f for f in out if f["evidence"].get("kind") == "floor")
    assert "detects rates below the floor by >= " in floor["message"]
