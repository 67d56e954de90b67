"""MLflow: one parent run per sweep, one nested child run per variant, found again by the harness ids in their tags."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError
from harness.spec.tracking import MlflowSpec
from harness.tracking.delivery import Delivery, redact
from harness.tracking.payload import EXPORT_TAG, SweepPayload, VariantPayload

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

INSTALL = "pip install 'finetune-harness[mlflow]'"
RUN_TAG, VARIANT_TAG, LEVEL_TAG = "harness.run_id", "harness.variant_id", "harness.level"
STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
BATCH_METRICS, BATCH_PARAMS = 1000, 100  # MLflow's limits per log_batch call


def library() -> ModuleType:
    """The mlflow module, or an error saying how to install it."""
    try:
        import mlflow
        from mlflow.tracking import MlflowClient  # noqa: F401
    except ImportError as exc:
        raise HarnessInputError(f"tracking.mlflow needs MLflow, which is not installed ({exc}); install it with: "
                                f"{INSTALL}") from None
    for name in ("mlflow", "alembic"):  # database migrations and store notices are not the user's business here
        logging.getLogger(name).setLevel(logging.WARNING)
    return mlflow


def client_for(settings: MlflowSpec) -> tuple[MlflowClient, str]:
    """An MlflowClient on the spec's tracking URI (else MLFLOW_TRACKING_URI, else MLflow's default) and that URI."""
    mlflow = library()
    uri = settings.tracking_uri or mlflow.get_tracking_uri()
    return mlflow.tracking.MlflowClient(tracking_uri=uri), uri


def _experiment(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, tags={"harness": "finetune-harness"})
    if exp.lifecycle_stage == "deleted":
        raise HarnessInputError(f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                                f"--experiment-id {exp.experiment_id}) or set tracking.mlflow.experiment to a new name")
    return str(exp.experiment_id)


def find_run(client: MlflowClient, experiment_id: str, run_id: str, variant_id: str | None) -> Run | None:
    """The active MLflow run tagged with this harness run (and variant; None: the sweep's parent run)."""
    for value in (run_id, variant_id or ""):
        if value and not _SAFE_ID.match(value):
            raise HarnessInputError(f"id {value!r} holds characters an MLflow filter cannot quote")
    level = f"tags.`{VARIANT_TAG}` = '{variant_id}'" if variant_id else f"tags.`{LEVEL_TAG}` = 'sweep'"
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}' AND {level}",
                               max_results=10, order_by=["attributes.start_time ASC"])
    complete = [r for r in found if r.data.tags.get(EXPORT_TAG) == "complete"]
    return next(iter(complete or found), None)


def _log(client: MlflowClient, run_id: str, params: Mapping[str, object], metrics: list[tuple[str, float, int]],
         when: int) -> None:
    from mlflow.entities import Metric, Param

    ps = [Param(k, str(v)) for k, v in params.items()]
    for i in range(0, len(ps), BATCH_PARAMS):
        client.log_batch(run_id, params=ps[i:i + BATCH_PARAMS])
    ms = [Metric(k, v, when, step) for k, v, step in metrics]
    for i in range(0, len(ms), BATCH_METRICS):
        client.log_batch(run_id, metrics=ms[i:i + BATCH_METRICS])


def _send_variant(client: MlflowClient, experiment_id: str, parent_id: str, payload: SweepPayload,
                  v: VariantPayload) -> None:
    tags = {RUN_TAG: payload.run_id, VARIANT_TAG: v.variant_id, LEVEL_TAG: "variant", "mlflow.parentRunId": parent_id,
            "harness.status": v.status, "harness.method": str(v.params.get("method", ""))}
    if v.error:
        tags["harness.error"] = v.error[:5000]
    run = client.create_run(experiment_id, start_time=v.started_ms, tags=tags, run_name=v.name)
    rid = run.info.run_id
    when = v.ended_ms or int(time.time() * 1000)
    curves = [(f"{p.split}/loss", p.loss, p.step) for p in v.curves]
    curves += [("train/epoch", p.epoch, p.step) for p in v.curves if p.split == "train" and p.epoch is not None]
    _log(client, rid, v.params, [(k, x, 0) for k, x in v.metrics.items()] + curves, when)
    client.log_text(rid, v.findings_json, "findings.json")
    client.set_tag(rid, EXPORT_TAG, "complete")
    client.set_terminated(rid, status="FINISHED" if v.status == "finished" else "FAILED", end_time=v.ended_ms)


def _send_parent_files(client: MlflowClient, rid: str, payload: SweepPayload) -> None:
    """Report, findings, spec and gate outcome on the parent run (files are replaced, metrics logged once)."""
    if payload.report_html is not None:
        client.log_artifact(rid, str(payload.report_html))
    client.log_text(rid, payload.findings_json, "findings.json")
    if payload.spec_text:
        client.log_text(rid, payload.spec_text, "spec.yaml")
    have = client.get_run(rid).data.metrics
    metrics = [("findings.count", float(payload.n_findings), 0)]
    g = payload.gate
    if g is not None:
        client.log_text(rid, g.junit_xml, "gate/junit.xml")
        client.log_text(rid, g.summary_md, "gate/summary.md")
        client.set_tag(rid, "harness.gate", "passed" if g.passed else "failed")
        client.set_tag(rid, "harness.gate_candidate", g.candidate)
        metrics += [("gate.passed", float(g.passed), 0), ("gate.rules", float(g.rules), 0),
                    ("gate.failed", float(g.failed), 0), ("gate.skipped", float(g.skipped), 0)]
    new = [m for m in metrics if have.get(m[0]) != m[1]]
    _log(client, rid, {}, new, payload.ended_ms or int(time.time() * 1000))


def send_mlflow(payload: SweepPayload, settings: MlflowSpec, delivery: Delivery) -> None:
    """Send the sweep: the parent run (created or found again), each variant not yet complete, then the files."""
    client, uri = client_for(settings)
    name = settings.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or payload.name
    delivery.destination = f"{redact(uri)}, experiment {name!r}"
    experiment_id = _experiment(client, name)
    parent = find_run(client, experiment_id, payload.run_id, None)
    if parent is None:
        parent = client.create_run(experiment_id, start_time=payload.started_ms, run_name=payload.name,
                                   tags={RUN_TAG: payload.run_id, LEVEL_TAG: "sweep", "harness.status": payload.status})
        _log(client, parent.info.run_id, payload.params, [], payload.started_ms or int(time.time() * 1000))
    pid = parent.info.run_id
    parent_done = parent.data.tags.get(EXPORT_TAG) == "complete"
    for v in payload.variants:
        child = find_run(client, experiment_id, payload.run_id, v.variant_id)
        if child is not None and child.data.tags.get(EXPORT_TAG) == "complete":
            delivery.skipped.append(v.name)
            continue
        if child is not None:  # a half-sent child of an export that broke off: sent again from the start
            client.delete_run(child.info.run_id)
        _send_variant(client, experiment_id, pid, payload, v)
        delivery.sent.append(v.name)
    if parent_done and (payload.gate is None or parent.data.metrics.get("gate.passed") is not None):
        delivery.skipped.append("the sweep run")
        return
    _send_parent_files(client, pid, payload)
    client.set_tag(pid, "harness.status", payload.status)
    if payload.final:
        client.set_tag(pid, EXPORT_TAG, "complete")
        client.set_terminated(pid, status=STATUS.get(payload.status, "FINISHED"), end_time=payload.ended_ms)
    delivery.sent.append("the sweep run")
