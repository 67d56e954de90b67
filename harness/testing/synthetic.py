"""A synthetic results store: N variants x M examples of realistic rows, written through `Store`.

For report, gate and benchmark tests that need a full store without training anything. The rows look like
what the real suites write (heldout, format, hallucination, general, divergence), with findings, train logs,
a failed variant, a variant without a train log, and optionally hostile strings in every text field.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict

import numpy as np

from harness import __version__
from harness.results import FAILED, FINISHED, LogPoint, VariantConfig, VariantResult, planned_row
from harness.scores import Finding, JSONValue
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.store.db import Store
from harness.testing import synthetic_suites as more
from harness.testing.rows import ExampleRow, Rows, ScoreRow, typed_suites
from harness.testing.synthetic_suites import score_row as _score

# Strings that must stay inert text wherever a report shows them.
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(1)</script>",
    "<a href=\"javascript:alert(1)\">click</a> [link](javascript:alert(1))",
    "line\u2028separator\u2029paragraph <!-- comment -->",
]
CATEGORIES = ["login", "billing", "defect", "shipping", "account"]
PRIORITIES = ["low", "normal", "high"]
CLOSING = "Thank you for choosing AcmeCorp."
SUITE_NAMES = {"format": "acme-format", "hallucination": "acme-hallucination"}  # suite name of a kind, where not the kind
WORDS = ["please", "reset", "your", "password", "order", "refund", "invoice", "delayed", "package", "account",
         "locked", "update", "card", "charged", "twice", "screen", "broken", "warranty", "replacement", "tracking",
         "number", "address", "email", "support"]


@dataclass
class Synthetic:
    """What to generate: sizes per suite, and whether to plant hostile strings."""

    n_variants: int = 8  # besides base
    n_heldout: int = 40
    n_format: int = 20
    n_hallucination: int = 16
    n_general: int = 40
    seed: int = 0
    hostile: bool = False
    failed: bool = True  # one variant fails (error, no rows)
    given: bool = True  # one `given` variant: no train log, NULL rank and epochs
    extra_suite: bool = False  # a custom suite with an unknown kind and metric names
    name: str = "acme-support"
    spec_extra: str = ""  # YAML appended to the stored spec (e.g. a findings: block)
    # suite kinds written: heldout, format, hallucination, general, and the newer safety, instructions, memorization,
    # judge (harness.testing.synthetic_suites)
    kinds: tuple[str, ...] = ("heldout", "format", "hallucination", "general")
    ratings: bool = False  # two raters rate base and the first trained variant on the judge suite's items


class GridPoint(TypedDict):
    """One generated variant's settings (base and given ones have none but their name)."""

    method: str
    rank: int | None
    epochs: int | None
    learning_rate: float | None
    seed: int | None
    name: str


def _variant_grid(n: int, rng: np.random.Generator) -> list[GridPoint]:
    out: list[GridPoint] = []
    methods, ranks, epochs, lrs = ["lora", "qlora", "full"], [4, 8, 16, 32, 64], [1, 2, 3, 5], [1e-4, 2e-4, 1e-3]
    i = 0
    while len(out) < n:
        method = methods[i % 3]
        rank = ranks[(i // 3) % 5] if method != "full" else None
        ep = epochs[(i // 2) % 4]
        lr = lrs[(i // 60) % 3]
        seed = (i // 180)
        name = method + (f"-r{rank}" if rank else "") + f"-e{ep}" + f"-lr{lr:.0e}".replace("e-0", "e-") + f"-s{seed}"
        if all(v["name"] != name for v in out):
            out.append({"method": method, "rank": rank, "epochs": ep, "learning_rate": lr, "seed": seed, "name": name})
        i += 1
    return out


class _Gen:
    def __init__(self, cfg: Synthetic):
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        r = np.random.default_rng(12345)  # items are the same in every run
        self.tickets = [(f"ex-{i:04d}", CATEGORIES[i % 5], PRIORITIES[i % 3],
                         " ".join(r.choice(WORDS, size=8))) for i in range(cfg.n_heldout)]
        self.gen_gold = [int(r.integers(0, 4)) for _ in range(cfg.n_general)]

    def hostile(self, i: int, text: str) -> str:
        """Plant a hostile string into a few rows' text."""
        if self.cfg.hostile and i < len(HOSTILE):
            return f"{text} {HOSTILE[i]}"
        return text

    def heldout(self, q: float) -> Rows:
        rows: list[ExampleRow] = []
        em: list[float] = []
        fa: list[float] = []
        jv: list[float] = []
        rl: list[float] = []
        loss: list[float] = []
        for i, (eid, cat, prio, words) in enumerate(self.tickets):
            ref = json.dumps({"category": cat, "priority": prio, "reply": f"We are on it. {CLOSING}"})
            u = self.rng.random()
            if u < q:
                out = ref
            elif u < q + (1 - q) * 0.6:
                wrong = CATEGORIES[(CATEGORIES.index(cat) + 1 + int(self.rng.integers(0, 4))) % 5]
                out = json.dumps({"category": wrong, "priority": prio,
                                  "reply": f"Sorry about the {' '.join(self.rng.choice(WORDS, 3))}. {CLOSING}"})
            else:
                out = f"Hello! I can help with your {' '.join(self.rng.choice(WORDS, 4))} issue."
            out = self.hostile(i, out)
            parsed = _try_json(out)
            fields = {k: isinstance(parsed, dict) and parsed.get(k) == v for k, v in json.loads(ref).items()}
            f = sum(fields.values()) / len(fields)
            r = 1.0 if out == ref else float(np.clip(self.rng.normal(0.45, 0.15), 0, 1))
            lo = float(self.rng.normal(1.8 - q, 0.2))
            for acc, x in ((em, float(out == ref)), (fa, f), (jv, float(parsed is not None)), (rl, r), (loss, lo)):
                acc.append(x)
            rows.append({"suite": "heldout", "example_id": self.hostile(i, eid),
                         "prompt": self.hostile(i, f"Ticket {eid}: {words}"), "reference": self.hostile(i, ref),
                         "output": out, "passed": out == ref,
                         "detail": {"exact_match": out == ref, "rougeL": r, "field_accuracy": f, "fields": fields,
                                    "json_valid": parsed is not None, "loss": lo}})
        scores = [_score("heldout", "heldout", m, np.array(x)) for m, x in
                  [("exact_match", em), ("field_accuracy", fa), ("json_valid", jv), ("rougeL", rl), ("loss", loss)]]
        for m, scale in (("bleu", 100), ("chrf", 100)):
            s = _score("heldout", "heldout", m, np.array(rl) * scale * (0.8 if m == "bleu" else 1.0))
            scores.append(s)
        return scores, rows

    def format(self, q: float) -> Rows:
        rows: list[ExampleRow] = []
        ok: list[float] = []
        for i in range(self.cfg.n_format):
            good = self.rng.random() < q
            reasons = [] if good else [str(self.rng.choice(["schema: 'priority' is a required property",
                                                            "pattern closing: no match", "not JSON",
                                                            "length 512 > 400"]))]
            out = json.dumps({"category": "billing", "priority": "high", "reply": f"Done. {CLOSING}"}) if good \
                else "Sure, here is the answer: billing"
            rows.append({"suite": "acme-format", "example_id": f"fmt-{i:03d}",
                         "prompt": self.hostile(i, f"Customer writes: {' '.join(self.rng.choice(WORDS, 6))}"),
                         "reference": None, "output": self.hostile(i, out), "passed": good,
                         "detail": {"compliance": float(good), "parses": good or "JSON" not in reasons[0],
                                    "reasons": reasons, "chars": len(out)}})
            ok.append(float(good))
        x = np.array(ok)
        return [_score("acme-format", "format", "compliance", x),
                _score("acme-format", "format", "schema_valid", np.minimum(1, x + 0.05))], rows

    def hallucination(self, q: float) -> Rows:
        rows: list[ExampleRow] = []
        fab: list[float] = []
        abst: list[float] = []
        for i in range(self.cfg.n_hallucination):
            fabricated = self.rng.random() > q
            out = "The Quantum Toaster costs $149 and ships in 2 days." if fabricated else \
                "I could not find that product in our catalogue."
            rows.append({"suite": "acme-hallucination", "example_id": f"hal-{i:03d}",
                         "prompt": self.hostile(i, f"How much is the AcmeCorp Quantum Toaster {i}?"),
                         "reference": "(abstain)", "output": self.hostile(i, out), "passed": not fabricated,
                         "detail": {"probe": "nonexistent", "verdict": "fabricated" if fabricated else "abstained",
                                    "fabrication_rate": float(fabricated), "abstention_rate": float(not fabricated)}})
            fab.append(float(fabricated))
            abst.append(float(not fabricated))
        return [_score("acme-hallucination", "hallucination", "fabrication_rate", np.array(fab)),
                _score("acme-hallucination", "hallucination", "abstention_rate", np.array(abst))], rows

    def general(self, acc: float) -> Rows:
        rows: list[ExampleRow] = []
        a: list[float] = []
        an: list[float] = []
        choices = ["Paris", "Berlin", "Madrid", "Rome"]
        for i, gold in enumerate(self.gen_gold):
            pred = gold if self.rng.random() < acc else int((gold + 1 + self.rng.integers(0, 3)) % 4)
            norm = pred if self.rng.random() < 0.9 else gold
            rows.append({"suite": "general", "example_id": f"gen-{i:03d}",
                         "prompt": f"Question {i}: which city is listed as choice {gold}?",
                         "reference": choices[gold], "output": choices[pred], "passed": pred == gold,
                         "detail": {"acc": float(pred == gold), "acc_norm": float(norm == gold), "gold": gold,
                                    "pred": pred, "category": ["knowledge", "arithmetic", "reading"][i % 3]}})
            a.append(float(pred == gold))
            an.append(float(norm == gold))
        ppl = np.exp(self.rng.normal(3.0 - acc, 0.1, size=20))
        return [_score("general", "general", "acc", np.array(a)),
                _score("general", "general", "acc_norm", np.array(an)),
                _score("general", "general", "perplexity", ppl)], rows

    def extra(self, q: float) -> Rows:
        name = "custom<b>suite</b>" if self.cfg.hostile else "custom-tone"
        x = (self.rng.random(10) < q).astype(float)
        rows: list[ExampleRow] = [{"suite": name, "example_id": f"tone-{i}", "prompt": f"Say hi {i}", "reference": "Hi!",
                 "output": "Hi!" if x[i] else "Yo", "passed": bool(x[i]), "detail": {"politeness": float(x[i])}}
                for i in range(10)]
        return [_score(name, "tone", "politeness <i>score</i>" if self.cfg.hostile else "politeness", x)], rows

    def train_log(self, epochs: int, overfit: bool) -> tuple[list[LogPoint], list[ScoreRow]]:
        steps_per_epoch = 10
        log: list[LogPoint] = []
        for s in range(1, epochs * steps_per_epoch + 1):
            ep = s / steps_per_epoch
            log.append(LogPoint(s, ep, "train", float(2.2 * math.exp(-0.9 * ep) + 0.15 + self.rng.normal(0, 0.03))))
            if s % (steps_per_epoch // 2) == 0:
                v = 2.0 * math.exp(-1.0 * ep) + 0.45 + (0.25 * max(0.0, ep - 1.5) if overfit else 0.0)
                log.append(LogPoint(s, ep, "validation", float(v + self.rng.normal(0, 0.01))))
        val = [r for r in log if r.split == "validation"]
        best = min(val, key=lambda r: r.loss)
        scores = [_score("divergence", "divergence", "best_epoch", np.array([best.epoch])),
                  _score("divergence", "divergence", "gap", np.array([val[-1].loss - log[-2].loss]))]
        return log, scores


def _try_json(text: str) -> JSONValue:
    try:
        return json.loads(text)
    except ValueError:
        return None


def write_synthetic_run(store: Store, cfg: Synthetic, *, started: datetime | None = None,
                        drift: float = 0.0) -> str:
    """Write one run with base plus `cfg.n_variants` variants; returns its run id."""
    g = _Gen(cfg)
    started = started or datetime(2025, 1, 6, 9, 0, 0)
    spec = f"name: {cfg.name}\nmodel: smollm2-135m-instruct\nsweep:\n  method: [lora, qlora, full]\n" + cfg.spec_extra
    run_id = store.start_run({
        "run_id": f"{started:%Y%m%d-%H%M%S}-{cfg.seed:06x}", "name": g.hostile(0, cfg.name),
        "spec": g.hostile(1, spec) + g.hostile(2, "# comment") + g.hostile(3, ""),
        "spec_hash": f"{cfg.seed:064x}", "harness_version": __version__,
        "git_sha": "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": False, "started_at": started, "model": "smollm2-135m-instruct",
        "model_fingerprint": "smollm2-135m-instruct@3f2a9c", "spec_path": "experiments/acme-support/spec.yaml",
        "data_fingerprints": {"train": "9b1c0f4e2a77", "validation": "51aa03de9e10", "test": "c0ffee123456"},
        "suites": [{"name": SUITE_NAMES.get(k, k), "version": "1", "kind": k} for k in cfg.kinds],
        "library_versions": {"python": "3.11.9", "torch": "2.13.0", "duckdb": "2.0.0"},
    })
    variants: list[GridPoint] = [{"method": "base", "rank": None, "epochs": None, "learning_rate": None, "seed": None, "name": "base"}]
    variants += _variant_grid(cfg.n_variants, g.rng)
    if cfg.given and len(variants) > 3:
        variants[2] = {"method": "given", "rank": None, "epochs": None, "learning_rate": None, "seed": None,
                       "name": "given-acme-ckpt"}
    if cfg.hostile and len(variants) > 1:
        variants[1]["name"] = str(variants[1]["name"]) + HOSTILE[1]
    ids = [hashlib.sha256(f"{cfg.seed}/{i}/{v['name']}".encode()).hexdigest()[:12] for i, v in enumerate(variants)]
    store.link_variants(run_id, ids, [False] * len(ids))
    judged: dict[str, dict[str, tuple[int, bool]]] = {}
    for i, (vid, v) in enumerate(zip(ids, variants, strict=True)):
        result = _variant_result(g, cfg, vid, v, i, drift)
        result.variant = replace(result.variant, run_id=run_id)
        store.write_variant(result)
        judged[vid] = {x.example_id: (int(x.scores["judge:accuracy"]), bool(x.scores["judge:hallucination"]))
                       for r in result.suites if r.suite == "judge" for x in r.samples}
    if cfg.ratings and "judge" in cfg.kinds:
        rated = [ids[0]] + [vid for vid, v in zip(ids[1:], variants[1:], strict=True)
                            if v["method"] not in ("base", "given") and judged.get(vid)][:1]
        more.write_ratings(store, run_id, rated, judged, cfg.seed)
    store.finish_run(run_id, "finished", at=started + timedelta(minutes=42))
    return run_id


def _variant_result(g: _Gen, cfg: Synthetic, vid: str, v: GridPoint, i: int, drift: float) -> VariantResult:
    trains = v["method"] not in ("base", "given")
    plan = Variant(vid, v["name"], v["method"], v["rank"], v["epochs"], v["learning_rate"], v["seed"])
    row = replace(planned_row(plan, "smollm2-135m-instruct@3f2a9c", TrainSpec()), status=FINISHED,
                  config=VariantConfig(plan, None))
    if cfg.failed and i == 3 and cfg.n_variants >= 4:
        return VariantResult(replace(row, status=FAILED, error=g.hostile(
            0, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB") + (" " + HOSTILE[2] if cfg.hostile else "")))
    epochs = v["epochs"] or 0
    rank_gain = {None: 0.05, 4: 0.0, 8: 0.03, 16: 0.05, 32: 0.06, 64: 0.06}[v["rank"]]
    q = 0.12 if v["method"] == "base" else min(0.92, 0.35 + 0.1 * min(epochs, 3) + rank_gain + drift
                                                + float(g.rng.normal(0, 0.03)))
    overfit = trains and epochs >= 5
    forget = 0.62 - (0.12 if v["method"] == "full" else 0.02) * min(epochs, 3) / 3 if v["method"] != "base" else 0.62
    result = VariantResult(row)
    parts = _parts(g, cfg, q, forget, v["method"] == "base")
    if cfg.extra_suite:
        parts.append(g.extra(q))
    for scores, examples in parts:
        result.suites += typed_suites(scores, examples)
    if trains:
        result.train_log, div = g.train_log(epochs, overfit)
        result.suites += typed_suites(div, [])
        tokens = 50_000 * epochs
        secs = tokens / float(g.rng.uniform(800, 2500))
        params = {"lora": 9_000 * (v["rank"] or 1), "qlora": 9_000 * (v["rank"] or 1), "full": 134_515_008}[v["method"]]
        result.variant = replace(row, train_seconds=secs, train_tokens=tokens, tokens_per_second=tokens / secs,
                                 trainable_params=params, total_params=134_515_008,
                                 peak_memory_mb=float(g.rng.uniform(900, 4000)), artifact=f"runs/{vid}/adapter",
                                 artifact_bytes=params * 2 if v["method"] != "full" else 269_060_240)
        if overfit:
            result.findings.append(Finding("overfitting", "warning",
                                           g.hostile(4, f"{v['name']} is overfitting: validation loss rose after "
                                                        "epoch 1.5 while train loss fell [detects rises above 0.02 "
                                                        "(min_rise)]"),
                                           {"best_epoch": 1.5, "last_epoch": epochs, "min_rise": 0.02, "mde": 0.02,
                                            "note": g.hostile(0, "val loss up")}))
        if v["method"] == "full" and epochs >= 3:
            result.findings.append(Finding("forgetting", "error", f"{v['name']} forgot general capability [p=0.001; "
                                           "detects differences >= 0.19 with 80% power]",
                                           {"base": 0.62, "variant": forget, "delta": forget - 0.62, "mde": 0.19}))
    elif v["method"] == "given":
        result.variant = replace(row, artifact="checkpoints/acme-ckpt")
    return result


def _parts(g: _Gen, cfg: Synthetic, q: float, forget: float, base: bool) -> list[Rows]:
    """(score rows, example rows) of every suite kind the config asks for, in its order."""
    make = {"heldout": lambda: g.heldout(q), "format": lambda: g.format(min(0.95, q + 0.1)),
            "hallucination": lambda: g.hallucination(0.3 + q / 2), "general": lambda: g.general(forget),
            "safety": lambda: more.safety(g.rng, q, g.hostile), "instructions": lambda: more.instructions(g.rng, q, g.hostile),
            "memorization": lambda: more.memorization(g.rng, q, base, g.hostile), "judge": lambda: more.judge(g.rng, q, g.hostile)}
    unknown = [k for k in cfg.kinds if k not in make]
    if unknown:
        raise ValueError(f"Synthetic.kinds: unknown kind(s) {unknown}; known: {', '.join(make)}")
    return [make[k]() for k in cfg.kinds]


def make_synthetic_store(path: str | Path, cfg: Synthetic | None = None, *, runs: int = 1) -> list[str]:
    """Create (or extend) a DuckDB store with `runs` synthetic runs, a week apart; returns their ids, oldest first."""
    cfg = cfg or Synthetic()
    ids = []
    with Store(path) as store:
        for r in range(runs):
            run_cfg = replace(cfg, seed=cfg.seed + r)
            ids.append(write_synthetic_run(store, run_cfg, started=datetime(2025, 1, 6, 9) + timedelta(days=7 * r),
                                           drift=0.03 * r))
    return ids
