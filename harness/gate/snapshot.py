"""The baseline file's shape, typed: everything the gate compares about one stored variant (`harness baseline save`
writes it; a gate builds the candidate's the same way). TypedDicts, as the file is JSON and stays a plain dict."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from harness.scores import JSONDict, JSONValue
from harness.verdicts.compare import Interval
from harness.verdicts.ratings import RatingEntry


class SnapRun(TypedDict):
    """Key `run`: the run the variant was stored by."""

    run_id: str
    name: str | None
    spec_hash: str | None
    git_sha: str | None
    harness_version: str | None
    model: str | None


class SnapVariant(TypedDict):
    """Key `variant`: which variant, how it was made, and whether it finished."""

    variant_id: str
    name: str | None
    method: str | None
    params: dict[str, JSONValue]  # rank, epochs, learning_rate, seed, checkpoint
    base_model: str | None
    artifact: str | None
    status: str | None


class SnapSuite(TypedDict):
    """Key `suites.<name>`: the suite's version, kind, content fingerprint and options."""

    version: str | None
    kind: str | None
    fingerprint: str | None
    options: JSONDict


class SnapScore(Interval):
    """An entry of `scores`: one metric's stored score, with its declaration where one is known."""

    suite: str
    metric: str
    declared: NotRequired[JSONDict]  # Metric.record() of the metric's declaration


class SnapExample(TypedDict):
    """An entry of `examples`: one example's pass/fail and its per-sample metric values."""

    suite: str
    example_id: str
    passed: bool | None
    metrics: dict[str, float]


class SnapFinding(TypedDict):
    """An entry of `findings`: a finding the variant had."""

    check: str
    severity: str | None
    message: str | None
    evidence: JSONValue


class Snapshot(TypedDict):
    """A baseline file (or the candidate the gate builds the same way)."""

    format: str
    format_version: int
    harness_version: str
    run: SnapRun
    variant: SnapVariant
    model_fingerprint: str | None
    data_fingerprints: dict[str, str]  # split -> fingerprint of its data
    suites: dict[str, SnapSuite]
    scores: list[SnapScore]
    examples: list[SnapExample]
    findings: list[SnapFinding]
    ratings: NotRequired[dict[str, RatingEntry]]  # criterion -> the variant's human ratings (gate.ratings)
    created_at: NotRequired[str]  # when the baseline file was saved
