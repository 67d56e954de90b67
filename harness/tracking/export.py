"""Send a stored run to MLflow or W&B (`harness export`, and the end of a sweep with a `tracking:` block).

The store is the source of truth: an export reads it, never writes it, and sending again adds nothing (runs are
found again by the harness run and variant ids). At the end of a sweep a tracker that cannot be reached is a warning
that says what was not sent and the command that sends it later; the sweep's exit code does not change.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from harness.errors import HarnessInputError
from harness.spec.tracking import MlflowSpec, TrackingSpec, WandbSpec, parse_tracking, tracking_from_text
from harness.tracking.delivery import TRACKERS, Delivery, redact
from harness.tracking.payload import GatePayload, SweepPayload, sweep_payload

# At the end of a sweep an unreachable MLflow server is given up on in about a minute, not MLflow's default of
# several minutes of retries; a variable the user set wins.
QUICK_MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class ExportError(HarnessInputError):
    """A tracker could not be reached or refused the run: what was sent, what was not, and how to send it later."""

    def __init__(self, message: str, delivery: Delivery, command: str):
        self.delivery, self.command = delivery, command
        super().__init__(message, title=f"export to {TRACKERS[delivery.tracker]} incomplete")


def export_command(tracker: str, run_id: str, db: str | Path) -> str:
    """The command that sends this run later."""
    return f"harness export {tracker} {shlex.quote(run_id)} --db {shlex.quote(str(db))}"


def settings_for(tracker: str, tracking: TrackingSpec) -> MlflowSpec | WandbSpec:
    """The tracker's block of the spec, or its defaults (the environment variables the library reads)."""
    if tracker not in TRACKERS:
        raise HarnessInputError(f"unknown tracker {tracker!r}: choose {' or '.join(TRACKERS)}")
    block = getattr(tracking, tracker)
    return block if block is not None else (MlflowSpec() if tracker == "mlflow" else WandbSpec())


def _gate(db: str | Path, payload: SweepPayload, baseline: str | Path | None) -> None:
    """Evaluate the gate when a baseline is given: --baseline, or the spec's gate.baseline where that file exists
    (relative to the working directory, as `harness gate --baseline` takes it, or to the spec's folder)."""
    from harness.gate.junit import junit_tree
    from harness.gate.output import markdown
    from harness.gate.result import FAIL, SKIP
    from harness.gate.run import gate_result
    from harness.spec.gate import rules_from_text

    if baseline is None:
        try:
            named = rules_from_text(payload.spec_text, "the stored spec").baseline
        except HarnessInputError:
            named = None
        spec_path = payload.params.get("spec_path")
        near: list[Path] = []
        if named:  # as CI passes it (from the checkout), or beside the spec
            near = [Path(named)] + ([Path(spec_path).parent / named] if isinstance(spec_path, str) else [])
        baseline = next((p for p in near if p.is_file()), None)
    if baseline is None:
        payload.gate_note = "no gate outcome: no baseline (gate.baseline in the spec, or --baseline)"
        return
    try:
        result = gate_result(db, payload.run_id, baseline=baseline)
    except HarnessInputError as exc:
        payload.gate_note = f"no gate outcome: the gate could not run ({exc.render()})"
        return
    import xml.etree.ElementTree as ET

    cand = result.candidate.get("variant", {})
    root = junit_tree(result).getroot()
    junit = ET.tostring(root, encoding="unicode", xml_declaration=True) if root is not None else ""
    payload.gate = GatePayload(result.passed, str(cand.get("name") or cand.get("variant_id")), len(result.checks),
                               result.count(FAIL), result.count(SKIP), junit, markdown(result))


@contextlib.contextmanager
def _env_defaults(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables the user did not set, for the duration of the block."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


@contextlib.contextmanager
def prepared(db: str | Path, run: str | None, baseline: str | Path | None = None) -> Iterator[SweepPayload]:
    """The run's payload with its report (in a temporary folder, removed afterwards) and gate outcome."""
    payload = sweep_payload(db, run)
    with tempfile.TemporaryDirectory(prefix="harness-export-") as tmp:
        from harness.report.build import build_report

        payload.report_html = build_report(db, payload.run_id, output=Path(tmp) / "report.html")
        _gate(db, payload, baseline)
        yield payload


def _tracking(payload: SweepPayload, spec: str | Path | None) -> TrackingSpec:
    """The `tracking:` block of `spec`, else of the spec stored with the run."""
    if spec is None:
        return tracking_from_text(payload.spec_text, f"the spec stored with run {payload.run_id}")
    import yaml

    raw = yaml.safe_load(Path(spec).read_text(encoding="utf-8")) if Path(spec).is_file() else None
    if not isinstance(raw, dict):
        raise HarnessInputError(f"--spec {spec}: not a spec file (a YAML mapping with a tracking: block)")
    return parse_tracking(raw.get("tracking"), str(spec))


def library(tracker: str) -> None:
    """Import the tracker's library now, so that a missing extra is said before any work."""
    if tracker == "mlflow":
        from harness.tracking.mlflow_tracker import library as mlflow_library

        mlflow_library()
    else:
        from harness.tracking.wandb_tracker import library as wandb_library

        wandb_library()


def send(db: str | Path, payload: SweepPayload, tracker: str, settings: MlflowSpec | WandbSpec, *,
         quick: bool = False) -> Delivery:
    """Send a prepared payload; raises ExportError (what was sent, what not, the command) when the tracker fails."""
    delivery = Delivery(tracker)
    command = export_command(tracker, payload.run_id, db)
    try:
        with _env_defaults(QUICK_MLFLOW_ENV if quick else {}):
            if isinstance(settings, MlflowSpec):
                from harness.tracking.mlflow_tracker import send_mlflow

                send_mlflow(payload, settings, delivery)
            else:
                from harness.tracking.wandb_tracker import send_wandb

                send_wandb(payload, settings, delivery)
    except HarnessInputError:
        raise
    except Exception as exc:  # any tracker failure: the store still holds everything
        raise ExportError(_failure(payload, delivery, exc, command), delivery, command) from exc
    if payload.gate_note:
        delivery.notes.append(payload.gate_note)
    return delivery


def export_run(db: str | Path, run: str | None, tracker: str, *, spec: str | Path | None = None,
               baseline: str | Path | None = None) -> Delivery:
    """`harness export`: send one stored run to a tracker, with the settings of `spec`'s `tracking:` block, else of
    the spec stored with the run, else the tracker's defaults (its environment variables)."""
    settings_for(tracker, TrackingSpec())  # an unknown tracker name, before any work
    library(tracker)
    with prepared(db, run, baseline) as payload:
        return send(db, payload, tracker, settings_for(tracker, _tracking(payload, spec)))


def _failure(payload: SweepPayload, delivery: Delivery, exc: Exception, command: str) -> str:
    done = set(delivery.sent) | set(delivery.skipped)
    missing = [n for n in ["the sweep run", *(v.name for v in payload.variants)] if n not in done]
    where = f" at {delivery.destination}" if delivery.destination else ""
    cause = redact(f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc).strip()
                   else type(exc).__name__)[:400]
    sent = f"sent {', '.join(sorted(done))}; " if done else ""
    return (f"{TRACKERS[delivery.tracker]}{where} failed ({cause}); {sent}not sent: {', '.join(missing) or 'none'} "
            f"of run {payload.run_id}. The store holds everything; send it later with: {command}")


def export_after_sweep(db: str | Path, run_id: str, tracking: TrackingSpec, out: TextIO | None = None) -> None:
    """The end of a sweep: send the run to each tracker of the spec; a failure is a warning, never an error."""
    err = out or sys.stderr
    try:
        with prepared(db, run_id) as payload:
            for tracker in tracking.trackers():
                try:
                    library(tracker)
                    delivery = send(db, payload, tracker, settings_for(tracker, tracking), quick=True)
                except ExportError as exc:
                    print(f"warning: {exc.render()}", file=err)
                except Exception as exc:  # a missing extra: still only a warning
                    _not_sent(tracker, run_id, db, exc, err)
                else:
                    print(f"tracking: {delivery.line()}", file=err)
    except Exception as exc:  # the store could not be read back, the report failed: nothing sent, still a warning
        for tracker in tracking.trackers():
            _not_sent(tracker, run_id, db, exc, err)


def _not_sent(tracker: str, run_id: str, db: str | Path, exc: Exception, err: TextIO) -> None:
    cause = (redact(str(exc)).splitlines() or [type(exc).__name__])[0][:400]
    print(f"warning: export to {TRACKERS[tracker]} failed ({cause}); nothing of run {run_id} was sent. The store "
          f"holds everything; send it later with: {export_command(tracker, run_id, db)}", file=err)
