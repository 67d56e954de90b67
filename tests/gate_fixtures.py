"""Helpers for gate and baseline tests: runs written through the real Store with exact per-example outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from harness import stats
from harness.results import VariantConfig, VariantResult, VariantRow
from harness.spec.plan import Variant
from harness.store.db import Store
from harness.testing.rows import typed_findings, typed_suites

HELDOUT = {"name": "heldout", "version": "1", "kind": "heldout", "options": {"max_new_tokens": 8},
           "fingerprint": "f-heldout-1"}
_T0 = datetime(2026, 1, 1)
_runs = 0


def flips(passed: list[bool], down: int, up: int = 0) -> list[bool]:
    """`passed` with the first `down` passes turned into failures and the first `up` failures into passes."""
    out = list(passed)
    for target, n in ((True, down), (False, up)):
        idx = [i for i, p in enumerate(passed) if p == target][:n]
        for i in idx:
            out[i] = not target
    return out


def outcomes(n: int, rate: float, seed: int) -> list[bool]:
    rng = np.random.default_rng(seed)
    return [bool(x) for x in rng.random(n) < rate]


def heldout(passed: list[bool], suite: dict[str, Any] = HELDOUT, bleu: tuple[float, float, float] = (0.3, 0.2, 0.4)
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(scores, examples) of a heldout suite whose exact_match and field_accuracy come from `passed`."""
    em = np.array(passed, dtype=float)
    fa = np.where(em == 1.0, 1.0, 0.5)  # a half-right JSON answer when not an exact match
    name, version = suite["name"], suite["version"]
    scores = [
        {"suite": name, "metric": "exact_match", "value": v, "ci_low": lo, "ci_high": hi, "n": len(em),
         "suite_version": version} for v, lo, hi in [stats.mean_ci(em)]
    ] + [
        {"suite": name, "metric": "field_accuracy", "value": v, "ci_low": lo, "ci_high": hi, "n": len(fa),
         "suite_version": version} for v, lo, hi in [stats.mean_ci(fa)]
    ] + [{"suite": name, "metric": "bleu", "value": bleu[0], "ci_low": bleu[1], "ci_high": bleu[2], "n": len(em),
          "suite_version": version}]
    examples = [{"suite": name, "example_id": f"test:{i + 1}", "prompt": f"<b>ticket {i}</b>", "reference": "{}",
                 "output": "{}", "passed": bool(p),
                 "detail": {"exact_match": bool(p), "field_accuracy": float(fa[i]), "fields": {"a": bool(p)},
                            "note": "text is not a metric"}}
                for i, p in enumerate(passed)]
    return scores, examples


def variant(variant_id: str, name: str, passed: list[bool], *, method: str = "lora", seed: int = 0,
            findings: list[dict[str, Any]] | None = None, extra: tuple[list, list] | None = None,
            status: str = "finished", suite: dict[str, Any] = HELDOUT) -> dict[str, Any]:
    scores, examples = heldout(passed, suite)
    if extra:
        scores, examples = scores + extra[0], examples + extra[1]
    return {"variant": {"variant_id": variant_id, "name": name, "method": method, "rank": 4 if method == "lora" else None,
                        "epochs": 1, "learning_rate": 1e-3, "seed": seed, "base_model": "tiny@v1",
                        "status": status, "error": None if status == "finished" else "RuntimeError: boom",
                        "artifact": f"/runs/{variant_id}", "config": {"variant_id": variant_id}},
            "scores": scores, "examples": examples, "findings": findings or []}


def typed_row(v: dict[str, Any]) -> VariantRow:
    """A fixture's variant dict as the typed row a sweep stores (config: its plan, no train settings)."""
    plan = Variant(v["variant_id"], v["name"], v["method"], v["rank"], v["epochs"], v["learning_rate"], v["seed"])
    return VariantRow(**{k: x for k, x in v.items() if k != "config"}, config=VariantConfig(plan, None))


def write_run(db: Path, variants: list[dict[str, Any]], *, test_fp: str = "test-fp-1",
              suites: list[dict[str, Any]] | None = None, spec: str | None = None, name: str = "planted") -> str:
    """Write a finished run with these variants (dicts from `variant`) through Store; returns the run id."""
    global _runs
    _runs += 1
    with Store(db) as store:
        run_id = store.start_run({
            "run_id": f"run-{_runs:03d}-{name}", "name": name, "spec": spec, "spec_hash": "h", "status": "running",
            "started_at": _T0 + timedelta(minutes=_runs), "harness_version": "0.1.0", "model": "tiny",
            "model_fingerprint": "tiny@v1", "data_fingerprints": {"train": "tr", "validation": "va", "test": test_fp},
            "suites": suites if suites is not None else [HELDOUT], "spec_path": f"/specs/{name}.yaml"})
        ids = [v["variant"]["variant_id"] for v in variants]
        store.link_variants(run_id, ids, [False] * len(ids))
        for v in variants:
            store.write_variant(VariantResult(typed_row(v["variant"]), [], typed_suites(v["scores"], v["examples"]),
                                              typed_findings(v["findings"])))
        store.finish_run(run_id, "finished")
    return run_id


# The JUnit structure CI tools read (the attributes and children Jenkins' junit-10.xsd allows, made stricter:
# counts are integers, time a decimal, classname and time required on every testcase).
JUNIT_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:complexType name="outcome" mixed="true">
    <xs:attribute name="message" type="xs:string"/><xs:attribute name="type" type="xs:string"/>
  </xs:complexType>
  <xs:element name="testsuites"><xs:complexType>
    <xs:sequence><xs:element ref="testsuite" maxOccurs="unbounded"/></xs:sequence>
    <xs:attribute name="name" type="xs:string"/><xs:attribute name="tests" type="xs:nonNegativeInteger"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger"/><xs:attribute name="errors" type="xs:nonNegativeInteger"/>
    <xs:attribute name="time" type="xs:decimal"/>
  </xs:complexType></xs:element>
  <xs:element name="testsuite"><xs:complexType>
    <xs:sequence>
      <xs:element name="properties" minOccurs="0"><xs:complexType><xs:sequence>
        <xs:element name="property" maxOccurs="unbounded"><xs:complexType>
          <xs:attribute name="name" type="xs:string" use="required"/>
          <xs:attribute name="value" type="xs:string" use="required"/>
        </xs:complexType></xs:element>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element ref="testcase" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
    <xs:attribute name="skipped" type="xs:nonNegativeInteger"/><xs:attribute name="time" type="xs:decimal"/>
    <xs:attribute name="timestamp" type="xs:dateTime"/><xs:attribute name="hostname" type="xs:string"/>
  </xs:complexType></xs:element>
  <xs:element name="testcase"><xs:complexType>
    <xs:choice minOccurs="0" maxOccurs="unbounded">
      <xs:element name="failure" type="outcome"/><xs:element name="error" type="outcome"/>
      <xs:element name="skipped" type="outcome"/><xs:element name="system-out" type="xs:string"/>
    </xs:choice>
    <xs:attribute name="name" type="xs:string" use="required"/>
    <xs:attribute name="classname" type="xs:string" use="required"/>
    <xs:attribute name="time" type="xs:decimal" use="required"/>
  </xs:complexType></xs:element>
</xs:schema>"""
