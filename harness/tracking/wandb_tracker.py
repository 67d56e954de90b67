"""Weights & Biases: one run per sweep (job_type `sweep`) and one per variant (job_type `variant`), grouped by the
harness run id, each with a run id derived from the harness ids so that sending again finds it."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from harness.errors import HarnessInputError
from harness.spec.tracking import WandbSpec
from harness.tracking.delivery import Delivery
from harness.tracking.payload import EXPORT_TAG, LossPoint, Scalar, SweepPayload, VariantPayload
from harness.tracking.wandb_files import local_runs

if TYPE_CHECKING:
    from wandb import Api, Run

INSTALL = "pip install 'finetune-harness[wandb]'"
COMPLETE = {EXPORT_TAG: "complete"}


def run_key(run_id: str, variant_id: str | None) -> str:
    """The W&B run id of a harness run (variant_id None) or of one of its variants: the same on every export."""
    return hashlib.sha256(f"finetune-harness/{run_id}/{variant_id or 'sweep'}".encode()).hexdigest()[:16]


def project_name(name: str) -> str:
    """A spec name as a W&B project name (no / \\ # ? % :, at most 128 characters)."""
    return re.sub(r"[/\\#?%:\s]+", "-", name).strip("-")[:128] or "finetune-harness"


def library() -> ModuleType:
    """The wandb module, or an error saying how to install it."""
    try:
        import wandb
    except ImportError as exc:
        raise HarnessInputError(f"tracking.wandb needs wandb, which is not installed ({exc}); install it with: "
                                f"{INSTALL}") from None
    return wandb


def _rows(curves: list[LossPoint]) -> list[tuple[int, dict[str, float]]]:
    """Loss points as one history row per step (train and validation side by side), steps increasing."""
    rows: dict[int, dict[str, float]] = {}
    for p in curves:
        row = rows.setdefault(p.step, {})
        row[f"{p.split}/loss"] = p.loss
        if p.split == "train" and p.epoch is not None:
            row["train/epoch"] = p.epoch
    return sorted(rows.items())


class _Sender:
    """One export's W&B session: where runs go, and how to tell one that is already there."""

    def __init__(self, wandb: ModuleType, settings: WandbSpec, payload: SweepPayload):
        self.wandb, self.settings, self.payload = wandb, settings, payload
        self.root = Path(settings.dir or os.environ.get("WANDB_DIR") or ".")
        self.project = settings.project or os.environ.get("WANDB_PROJECT") or project_name(payload.name)
        self.entity = settings.entity or os.environ.get("WANDB_ENTITY")
        self._api: Api | None = None

    def complete(self, key: str) -> bool:
        """Already sent in full: a finished local run folder says so, or (online) the server's run does."""
        if any(r.finished and r.summary.get(EXPORT_TAG) == "complete" for r in local_runs(self.root, key)):
            return True
        if self.settings.mode != "online":
            return False
        if self._api is None:
            self._api = self.wandb.Api(timeout=30)
        entity = self.entity or self._api.default_entity
        try:
            run = self._api.run(f"{entity}/{self.project}/{key}")
        except self.wandb.errors.CommError:
            return False
        return bool(run.summary.get(EXPORT_TAG) == "complete")

    def send(self, key: str, name: str, job_type: str, config: dict[str, Scalar], tags: list[str],
             fill: Callable[[Run], None], failed: bool = False) -> None:
        """Create (or resume) the run, let `fill` log into it, mark it complete and finish it."""
        w = self.wandb
        self.root.mkdir(parents=True, exist_ok=True)
        settings = w.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True,
                              x_save_requirements=False, save_code=False, disable_git=True, disable_code=True)
        run = w.init(project=self.project, entity=self.entity, dir=str(self.root), mode=self.settings.mode, id=key,
                     name=name, group=self.payload.run_id, job_type=job_type, config=config, tags=tags,
                     resume="allow", settings=settings)
        try:
            fill(run)
            run.summary.update(COMPLETE)
        except BaseException:
            run.finish(exit_code=1)  # not marked complete: the next export sends it again
            raise
        run.finish(exit_code=1 if failed else 0)

    def save_text(self, run: Run, name: str, text: str) -> None:
        """A file in the run's files folder (uploaded with the run)."""
        path = Path(run.dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        run.save(str(path), base_path=run.dir, policy="now")


def send_wandb(payload: SweepPayload, settings: WandbSpec, delivery: Delivery) -> None:
    """Send the sweep run and every variant run not already sent in full."""
    wandb = library()
    if settings.mode == "disabled":
        delivery.notes.append("tracking.wandb.mode is disabled: nothing sent")
        return
    s = _Sender(wandb, settings, payload)
    delivery.destination = f"project {s.project!r}, {settings.mode}" + (
        f", {s.root / 'wandb'}" if settings.mode == "offline" else "")
    ids = {"harness.run_id": payload.run_id}
    try:
        for v in payload.variants:
            key = run_key(payload.run_id, v.variant_id)
            if s.complete(key):
                delivery.skipped.append(v.name)
                continue

            def fill(run: Run, v: VariantPayload = v) -> None:
                for step, row in _rows(v.curves):
                    run.log(row, step=step)
                run.summary.update({**v.metrics, "harness.status": v.status, **({"harness.error": v.error[:2000]}
                                                                                 if v.error else {})})
                s.save_text(run, "findings.json", v.findings_json)

            s.send(key, v.name, "variant", {**ids, "harness.variant_id": v.variant_id, **v.params},
                   ["finetune-harness", str(v.params.get("method", ""))], fill, failed=v.status != "finished")
            delivery.sent.append(v.name)
        key = run_key(payload.run_id, None)
        if s.complete(key):
            delivery.skipped.append("the sweep run")
            return
        if not payload.final:  # a run still going is sent again (in full) by a later export
            delivery.notes.append(f"run {payload.run_id} is still {payload.status}: its sweep run is sent once it ends")
            return

        def fill_parent(run: Run) -> None:
            summary: dict[str, Scalar] = {"findings.count": payload.n_findings, "harness.status": payload.status}
            if payload.report_html is not None:
                run.save(str(_copy(payload.report_html, Path(run.dir))), base_path=run.dir, policy="now")
            s.save_text(run, "findings.json", payload.findings_json)
            if payload.spec_text:
                s.save_text(run, "spec.yaml", payload.spec_text)
            g = payload.gate
            if g is not None:
                s.save_text(run, "gate/junit.xml", g.junit_xml)
                s.save_text(run, "gate/summary.md", g.summary_md)
                summary.update({"gate.passed": int(g.passed), "gate.rules": g.rules, "gate.failed": g.failed,
                                "gate.skipped": g.skipped, "gate.candidate": g.candidate})
            run.summary.update(summary)

        s.send(key, payload.name, "sweep", {**ids, **payload.params}, ["finetune-harness", "sweep"], fill_parent,
               failed=payload.status != "finished")
        delivery.sent.append("the sweep run")
    finally:
        wandb.teardown()  # stop the wandb-core service this export started


def _copy(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    return dst
