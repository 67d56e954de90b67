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
from harness.store.db import Store

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


def _json(text: Any, default: Any) -> Any:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return default
    return json.loads(text) if isinstance(text, str) else text


def _numeric(detail: dict[str, Any]) -> dict[str, float | bool]:
    """The numeric per-example metrics of an examples.detail object (top-level numbers and booleans)."""
    out: dict[str, float | bool] = {}
    for k, v in detail.items():
        if isinstance(v, bool) or isinstance(v, int | float) and math.isfinite(v):
            out[k] = v
    return out


def snapshot(store: Store, run_id: str, variant_id: str) -> dict[str, Any]:
    """Everything the gate compares about one stored variant, in the baseline file's shape (no created_at)."""
    run = store.run_row(run_id)
    v = store.query("SELECT * FROM variants WHERE variant_id = ? AND run_id = ?", [variant_id, run_id]).iloc[0].to_dict()
    config = _json(v.get("config"), {}) or {}
    params = {k: _clean(v.get(k)) for k in ("rank", "epochs", "learning_rate", "seed")}
    params = {k: x if x is None or k == "learning_rate" else int(x) for k, x in params.items()}
    params["checkpoint"] = config.get("checkpoint")
    scores = store.query(
        "SELECT suite, metric, value, ci_low, ci_high, n, suite_version FROM scores WHERE variant_id = ? "
        "ORDER BY suite, metric", [variant_id])
    examples = store.query(
        "SELECT suite, example_id, passed, detail FROM examples WHERE variant_id = ? ORDER BY suite, example_id",
        [variant_id])
    findings = store.query(
        'SELECT "check", severity, message, evidence FROM findings WHERE variant_id = ? '
        'ORDER BY "check", message', [variant_id])
    score_versions = {r["suite"]: _clean(r["suite_version"]) for _, r in scores.iterrows()}
    suites: dict[str, dict[str, Any]] = {}
    for ident in _json(run.get("suites"), []) or []:
        name = str(ident.get("name"))
        suites[name] = {"version": _clean(score_versions.get(name)) or str(ident.get("version")),
                        "kind": ident.get("kind"), "fingerprint": ident.get("fingerprint"),
                        "options": ident.get("options") or {}}
    for name, version in score_versions.items():  # scores whose suite the run row does not list
        suites.setdefault(name, {"version": version, "kind": None, "fingerprint": None, "options": {}})
    return {
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
        "data_fingerprints": _json(run.get("data_fingerprints"), {}) or {},
        "suites": suites,
        "scores": [{"suite": r["suite"], "metric": r["metric"], "value": _clean(r["value"]),
                    "ci_low": _clean(r["ci_low"]), "ci_high": _clean(r["ci_high"]), "n": _int(r["n"])}
                   for _, r in scores.iterrows()],
        "examples": [{"suite": r["suite"], "example_id": r["example_id"], "passed": _clean(r["passed"]),
                      "metrics": _numeric(_json(r["detail"], {}) or {})} for _, r in examples.iterrows()],
        "findings": [{"check": r["check"], "severity": _clean(r["severity"]), "message": _clean(r["message"]),
                      "evidence": _json(r["evidence"], None)} for _, r in findings.iterrows()],
    }


# -- which variant --------------------------------------------------------------------------------
def recommended_variant(store: Store, run_id: str) -> tuple[str, str]:
    """(variant_id, reason): best heldout field_accuracy, else exact_match, among finished non-base variants
    without findings (with findings only when every variant has some)."""
    variants = store.run_table(run_id, "variants")
    done = variants[(variants["status"] == "finished") & (variants["method"] != "base")]
    if done.empty:
        raise HarnessInputError(f"run {run_id} has no finished variant besides base; name one with --variant "
                                f"(its variants: {_listing(variants)})")
    findings = store.run_table(run_id, "findings")
    flagged = set(findings["variant_id"]) if not findings.empty else set()
    pool = done[~done["variant_id"].isin(flagged)]
    caveat = "without findings"
    if pool.empty:
        pool, caveat = done, "(every one has findings)"
    kinds = {s.get("name"): s.get("kind") for s in _json(store.run_row(run_id).get("suites"), []) or []}
    heldout = [n for n, k in kinds.items() if k == "heldout"] or ["heldout"]
    scores = store.run_table(run_id, "scores")
    scores = scores[scores["variant_id"].isin(pool["variant_id"]) & scores["suite"].isin(heldout)]
    for metric in ("field_accuracy", "exact_match"):
        s = scores[(scores["metric"] == metric) & scores["value"].notna()]
        if not s.empty:
            order = {vid: i for i, vid in enumerate(pool["variant_id"])}
            best = max(s.itertuples(), key=lambda r: (r.value, -order[r.variant_id]))
            name = pool.set_index("variant_id").loc[best.variant_id, "name"]
            return str(best.variant_id), (f"recommended: {name}, best {best.suite}.{metric} ({best.value:.3f}) "
                                          f"of {len(pool)} finished variant(s) {caveat}")
    first = pool.iloc[0]
    return str(first["variant_id"]), f"recommended: {first['name']}, the first finished variant (no heldout scores)"


def resolve_variant(store: Store, run_id: str, ref: str | None) -> tuple[str, str]:
    """(variant_id, how it was chosen) for an id, a name, a unique id prefix, or None/'recommended'."""
    if ref in (None, "", "recommended"):
        return recommended_variant(store, run_id)
    variants = store.run_table(run_id, "variants")
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
        err = store.query("SELECT error FROM variants WHERE variant_id = ?", [variant_id]).iloc[0]["error"]
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(baseline), encoding="utf-8")
    return path


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and check a baseline file; every problem is named with the file and key."""
    path = Path(path)
    if not path.is_file():
        raise HarnessInputError(f"--baseline {path}: no such file. Write one with "
                                "`harness baseline save RUN --variant ID -o baselines/NAME.json`.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"{path}:{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(path)
        raise HarnessInputError(f"{where}: not a valid baseline JSON file ({exc}); re-save it with "
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
