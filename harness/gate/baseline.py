"""Baselines: a variant's scores, per-example outcomes, suite versions and fingerprints as a JSON file for the gate."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.errors import HarnessInputError
from harness.output_file import write_output
from harness.scorers import UNDECLARED, metric_info, suite_kinds
from harness.store.db import Store
from harness.store.reads import load_run, variant_record
from harness.store.review import ratings_of
from harness.textfiles import read_text
from harness.verdicts.ratings import rating_snapshot
from harness.verdicts.recommend import recommend

FORMAT = "finetune-harness-baseline"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("variant", "run", "data_fingerprints", "suites", "scores", "examples", "findings")


def _clean(x: Any) -> Any:
    """A value from pandas/DuckDB as plain JSON: NaN/NA -> None, numpy scalars -> Python."""
    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if hasattr(x, "item") and not isinstance(x, str | bytes):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, datetime):
        return x.isoformat(timespec="seconds")
    return x


def _int(x: Any) -> int | None:
    x = _clean(x)
    return None if x is None else int(x)


def _sample_metrics(samples: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    """(suite, example_id) -> {metric: value}: one variant's stored per-sample values (sample_scores)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for suite, eid, metric, value in samples[["suite", "example_id", "metric", "value"]].itertuples(index=False):
        if value is not None and math.isfinite(float(value)):
            out.setdefault((str(suite), str(eid)), {})[str(metric)] = float(value)
    return out


def _declared(kind: str | None, row: dict[str, Any]) -> dict[str, Any]:
    """{'declared': the metric's declaration} where one is known (a user's scorer's comes from the stored record)."""
    record = row.get("scorer") if isinstance(row.get("scorer"), dict) else None
    m = metric_info(kind, str(row["metric"]), record)
    return {} if m is UNDECLARED else {"declared": m.record()}


def snapshot(store: Store, run_id: str, variant_id: str) -> dict[str, Any]:
    """Everything the gate compares about one stored variant, in the baseline file's shape (no created_at)."""
    rec = variant_record(store, run_id, variant_id)
    run, v = rec.run, rec.variant
    config = v.get("config") or {}
    params = {k: _clean(v.get(k)) for k in ("rank", "epochs", "learning_rate", "seed")}
    params = {k: x if x is None or k == "learning_rate" else int(x) for k, x in params.items()}
    params["checkpoint"] = config.get("checkpoint")
    score_versions = {r["suite"]: _clean(r["suite_version"]) for r in rec.scores.to_dict("records")}
    suites: dict[str, dict[str, Any]] = {}
    for ident in run.get("suites") or []:
        name = str(ident.get("name"))
        suites[name] = {"version": _clean(score_versions.get(name)) or str(ident.get("version")),
                        "kind": ident.get("kind"), "fingerprint": ident.get("fingerprint"),
                        "options": ident.get("options") or {}}
    kinds = suite_kinds(rec.scores)
    per_sample = _sample_metrics(rec.samples) if not rec.samples.empty else {}
    for name, version in score_versions.items():  # scores whose suite the run row does not list
        suites.setdefault(name, {"version": version, "kind": kinds.get(name), "fingerprint": None, "options": {}})
    snap = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "harness_version": __version__,
        "run": {"run_id": run_id, "name": _clean(run.get("name")), "spec_hash": _clean(run.get("spec_hash")),
                "git_sha": _clean(run.get("git_sha")), "harness_version": _clean(run.get("harness_version")),
                "model": _clean(run.get("model"))},
        "variant": {"variant_id": variant_id, "name": _clean(v.get("name")), "method": _clean(v.get("method")),
                    "params": params, "base_model": _clean(v.get("base_model")),
                    "artifact": _clean(v.get("artifact")), "status": _clean(v.get("status"))},
        "model_fingerprint": _clean(run.get("model_fingerprint")),
        "data_fingerprints": run.get("data_fingerprints") or {},
        "suites": suites,
        "scores": [{"suite": r["suite"], "metric": r["metric"], "value": _clean(r["value"]),
                    "ci_low": _clean(r["ci_low"]), "ci_high": _clean(r["ci_high"]), "n": _int(r["n"]),
                    **_declared(suites.get(r["suite"], {}).get("kind") or kinds.get(r["suite"]), r)}
                   for r in rec.scores.to_dict("records")],
        "examples": [{"suite": r["suite"], "example_id": r["example_id"], "passed": _clean(r["passed"]),
                      "metrics": per_sample.get((str(r["suite"]), str(r["example_id"])), {})}
                     for r in rec.examples.to_dict("records")],
        "findings": [{"check": r["check"], "severity": _clean(r["severity"]), "message": _clean(r["message"]),
                      "evidence": r["evidence"]} for r in rec.findings.to_dict("records")],
    }
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


def finished_snapshot(store: Store, run_id: str, variant_id: str) -> dict[str, Any]:
    """A snapshot of a finished variant; a failed one is a bad-input error that says what failed."""
    snap = snapshot(store, run_id, variant_id)
    if snap["variant"]["status"] != "finished":
        err = variant_record(store, run_id, variant_id).variant.get("error")
        raise HarnessInputError(f"variant {snap['variant']['name']} ({variant_id}) of run {run_id} is "
                                f"{snap['variant']['status']}: {err}. Choose a finished variant.")
    return snap


# -- files --------------------------------------------------------------------------------------------
def dumps(baseline: dict[str, Any]) -> str:
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


def load_baseline(path: str | Path) -> dict[str, Any]:
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
    return data


def check_same_experiment(baseline: dict[str, Any], candidate: dict[str, Any], baseline_path: str | Path) -> None:
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
