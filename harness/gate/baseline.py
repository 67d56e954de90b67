"""Baselines: a variant's scores, per-example outcomes, suite versions and fingerprints as a JSON file for the gate."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pandas as pd

from harness import __version__
from harness.errors import HarnessInputError
from harness.gate.snapshot import SnapExample, SnapFinding, SnapRun, SnapScore, Snapshot, SnapSuite, SnapVariant
from harness.output_file import write_output
from harness.scorers import UNDECLARED, metric_info, suite_kinds
from harness.scores import JSONValue
from harness.store.db import Store
from harness.store.reads import load_run, variant_record
from harness.store.review import ratings_of
from harness.textfiles import read_text
from harness.verdicts.ratings import rating_snapshot
from harness.verdicts.recommend import recommend

FORMAT = "finetune-harness-baseline"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("variant", "run", "data_fingerprints", "suites", "scores", "examples", "findings")


def _clean(x: object) -> JSONValue:
    """A value from pandas/DuckDB as plain JSON: NaN/NA -> None, numpy scalars -> Python."""
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    item = getattr(x, "item", None)
    if callable(item) and not isinstance(x, str | bytes):
        x = item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, datetime):
        return x.isoformat(timespec="seconds")
    if x is None or isinstance(x, str | int | float | bool | list | dict):
        return x
    return str(x)


def _text(x: object) -> str | None:
    """A stored text cell, None where missing."""
    x = _clean(x)
    return None if x is None else str(x)


def _float(x: object) -> float | None:
    x = _clean(x)
    return float(x) if isinstance(x, int | float) else None


def _bool(x: object) -> bool | None:
    x = _clean(x)
    return None if x is None else bool(x)


def _int(x: object) -> int | None:
    x = _clean(x)
    return int(x) if isinstance(x, int | float | str) else None


def _sample_metrics(samples: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """(suite, example_id) -> {metric: value}: one variant's stored per-sample values (sample_scores)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for suite, eid, metric, value in samples[["suite", "example_id", "metric", "value"]].itertuples(index=False):
        if value is not None and math.isfinite(float(value)):
            out.setdefault((str(suite), str(eid)), {})[str(metric)] = float(value)
    return out


def _score(kind: str | None, row: Mapping[str, object]) -> SnapScore:
    """A stored score as the baseline keeps it, with the metric's declaration where one is known (a user's scorer's
    comes from the stored record)."""
    record = row.get("scorer")
    m = metric_info(kind, str(row["metric"]), record if isinstance(record, dict) else None)
    out = SnapScore(suite=str(row["suite"]), metric=str(row["metric"]), value=_float(row["value"]),
                    ci_low=_float(row["ci_low"]), ci_high=_float(row["ci_high"]), n=_int(row["n"]))
    if m is not UNDECLARED:
        out["declared"] = m.record()
    return out


def snapshot(store: Store, run_id: str, variant_id: str) -> Snapshot:
    """Everything the gate compares about one stored variant, in the baseline file's shape (no created_at)."""
    rec = variant_record(store, run_id, variant_id)
    run, v = rec.run, rec.variant
    config = v.get("config") or {}
    params: dict[str, JSONValue] = {k: _int(v.get(k)) for k in ("rank", "epochs", "seed")}
    params = {"rank": params["rank"], "epochs": params["epochs"], "learning_rate": _clean(v.get("learning_rate")),
              "seed": params["seed"], "checkpoint": config.get("checkpoint")}
    score_versions = {str(r["suite"]): _text(r["suite_version"]) for r in rec.scores.to_dict("records")}
    suites: dict[str, SnapSuite] = {}
    for ident in run.get("suites") or []:
        name = str(ident.get("name"))
        options = ident.get("options")
        suites[name] = SnapSuite(version=score_versions.get(name) or str(ident.get("version")),
                                 kind=_text(ident.get("kind")), fingerprint=_text(ident.get("fingerprint")),
                                 options=options if isinstance(options, dict) and options else {})
    kinds = suite_kinds(rec.scores)
    per_sample = _sample_metrics(rec.samples) if not rec.samples.empty else {}
    for name, version in score_versions.items():  # scores whose suite the run row does not list
        suites.setdefault(name, SnapSuite(version=version, kind=kinds.get(name), fingerprint=None, options={}))
    fingerprints = run.get("data_fingerprints") or {}
    snap = Snapshot(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        harness_version=__version__,
        run=SnapRun(run_id=run_id, name=_text(run.get("name")), spec_hash=_text(run.get("spec_hash")),
                    git_sha=_text(run.get("git_sha")), harness_version=_text(run.get("harness_version")),
                    model=_text(run.get("model"))),
        variant=SnapVariant(variant_id=variant_id, name=_text(v.get("name")), method=_text(v.get("method")),
                            params=params, base_model=_text(v.get("base_model")), artifact=_text(v.get("artifact")),
                            status=_text(v.get("status"))),
        model_fingerprint=_text(run.get("model_fingerprint")),
        data_fingerprints={str(k): str(x) for k, x in fingerprints.items()} if isinstance(fingerprints, dict) else {},
        suites=suites,
        scores=[_score(suites[str(r["suite"])]["kind"] if str(r["suite"]) in suites and suites[str(r["suite"])]["kind"]
                       else kinds.get(str(r["suite"])), r) for r in rec.scores.to_dict("records")],
        examples=[SnapExample(suite=str(r["suite"]), example_id=str(r["example_id"]), passed=_bool(r["passed"]),
                              metrics=per_sample.get((str(r["suite"]), str(r["example_id"])), {}))
                  for r in rec.examples.to_dict("records")],
        findings=[SnapFinding(check=str(r["check"]), severity=_text(r["severity"]), message=_text(r["message"]),
                              evidence=r["evidence"]) for r in rec.findings.to_dict("records")],
    )
    rated = ratings_of(store, [variant_id])
    if not rated.empty:  # human ratings: per criterion the mean, its interval and each item's mean (gate.ratings)
        snap["ratings"] = rating_snapshot(rated, variant_id)
    return snap


# -- which variant --------------------------------------------------------------------------------
def resolve_variant(store: Store, run_id: str, ref: str | None) -> tuple[str, str]:
    """(variant_id, how it was chosen) for an id, a name, a unique id prefix, or None/'recommended' (the one
    recommendation policy: the recommended variant, or the best flagged one when every variant has findings)."""
    variants = store.run_table(run_id, "variants")
    if ref in (None, "", "recommended"):
        rec = recommend(load_run(store, run_id))
        if rec.candidate_id is None:
            raise HarnessInputError(f"{rec.reason} Name a variant with --variant (run {run_id} has: "
                                    f"{_listing(variants)})")
        return rec.candidate_id, rec.reason
    for col in ("variant_id", "name"):
        exact = variants[variants[col] == ref]
        if len(exact) == 1:
            return str(exact.iloc[0]["variant_id"]), f"candidate chosen with --variant {ref}"
    matches = variants[variants["variant_id"].str.startswith(str(ref))]
    if len(matches) == 1:
        return str(matches.iloc[0]["variant_id"]), f"candidate chosen with --variant {ref}"
    what = "is ambiguous" if len(matches) > 1 else "is not in this run"
    raise HarnessInputError(f"--variant {ref!r} {what}. Run {run_id} has: {_listing(variants)} "
                            "(give an id, an id prefix, a name, or 'recommended')")


def _listing(variants: pd.DataFrame) -> str:
    return ", ".join(f"{r['name']} ({r['variant_id']}, {r['status']})" for _, r in variants.iterrows()) or "(none)"


def finished_snapshot(store: Store, run_id: str, variant_id: str, *, incomplete: bool = False) -> Snapshot:
    """A snapshot of a finished variant (or, with `incomplete`, of one whose failed suites the gate fails); a failed
    one is a bad-input error that says what failed."""
    snap = snapshot(store, run_id, variant_id)
    if snap["variant"]["status"] not in (("finished", "incomplete") if incomplete else ("finished",)):
        err = variant_record(store, run_id, variant_id).variant.get("error")
        raise HarnessInputError(f"variant {snap['variant']['name']} ({variant_id}) of run {run_id} is "
                                f"{snap['variant']['status']}: {err}. Choose a finished variant.")
    return snap


# -- files --------------------------------------------------------------------------------------------
def dumps(baseline: Snapshot) -> str:
    """Deterministic JSON (sorted keys, indent 2, strict numbers) that diffs well in git."""
    return json.dumps(baseline, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def save_baseline(db: str | Path, run: str | None = "latest", *, variant: str | None,
                  output: str | Path) -> Path:
    """Write a stored variant's results as a baseline JSON file; returns its path."""
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run(run)
        variant_id, _ = resolve_variant(store, run_id, variant)
        baseline = finished_snapshot(store, run_id, variant_id)
    baseline["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    path = Path(output)
    if path.exists() and path.is_dir():
        raise HarnessInputError(f"-o {output}: is a folder; give a file name such as baselines/NAME.json")
    return write_output(path, dumps(baseline))


def load_baseline(path: str | Path) -> Snapshot:
    """Read and check a baseline file; every problem is named with the file and key."""
    path = Path(path)
    if not path.is_file():
        raise HarnessInputError(f"--baseline {path}: no such file. Write one with "
                                "`harness baseline save RUN --variant ID -o baselines/NAME.json`.")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise HarnessInputError(f"{path}:{exc.lineno}: not a valid baseline JSON file ({exc}); re-save it with "
                                "`harness baseline save`.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HarnessInputError(f"{path}: not a finetune-harness baseline (key 'format' is not {FORMAT!r}); "
                                "write one with `harness baseline save`.")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise HarnessInputError(f"{path}: key 'format_version' is {version!r}; this harness reads up to "
                                f"{FORMAT_VERSION}. Upgrade finetune-harness or re-save the baseline.")
    problems = [f"{path}: missing key '{k}'" for k in REQUIRED_KEYS if k not in data]
    for i, s in enumerate(data.get("scores") or []):
        missing = [k for k in ("suite", "metric", "value") if k not in s]
        if missing:
            problems.append(f"{path}: key 'scores[{i}]' lacks {', '.join(missing)}")
    for i, e in enumerate(data.get("examples") or []):
        if not {"suite", "example_id"} <= set(e):
            problems.append(f"{path}: key 'examples[{i}]' needs 'suite' and 'example_id'")
    if problems:
        raise HarnessInputError(problems[:20], title=f"baseline {path} is invalid")
    return cast(Snapshot, data)  # its shape checked above, as far as a gate needs it


def check_same_experiment(baseline: Snapshot, candidate: Snapshot, baseline_path: str | Path) -> None:
    """A baseline saved from another experiment (another name and another test set) is bad input, not a failed
    gate: it names both experiments."""
    b_name = (baseline.get("run") or {}).get("name")
    c_name = (candidate.get("run") or {}).get("name")
    b_test = (baseline.get("data_fingerprints") or {}).get("test")
    c_test = (candidate.get("data_fingerprints") or {}).get("test")
    if b_name and c_name and b_name != c_name and b_test != c_test:
        raise HarnessInputError(
            f"--baseline {baseline_path} belongs to experiment {b_name!r} (run {baseline['run'].get('run_id')}), "
            f"but the candidate comes from experiment {c_name!r} (run {candidate['run'].get('run_id')}), scored on "
            f"another test set. Gate against a baseline of {c_name!r}: `harness baseline save RUN --variant ID -o "
            f"baselines/{c_name}.json`.", title="baseline from another experiment")
