"""`harness selftest --train`: plant real defects by training and check that the findings catch them.

Two small sweeps of the run's own spec, in a scratch store: (a) a destructive learning rate (100x the run's
largest) should make the model forget or break its format; (b) many epochs on a small subset of the training
data should overfit. Each is a real sweep (train, score, derive findings) on the spec's model, so this is for
small models; the scratch files are written beside the spec and removed afterwards.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import yaml
from pydantic import ValidationError

from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.spec.schema import ExperimentSpec
from harness.store.db import Store

PLANTS = (
    ("destructive learning rate", {"forgetting", "format", "hallucination", "overfitting"}),
    ("many epochs on a small subset", {"overfitting"}),
)
SUBSET = 16
EPOCHS = 20


def _spec_of(db: str, run_id: str) -> tuple[dict[str, object], ExperimentSpec, Path]:
    """The run's stored spec: as written (the planted specs keep what they do not change) and validated."""
    with Store(db, read_only=True) as store:
        row = store.run_row(run_id)
    path = Path(str(row.get("spec_path") or ""))
    if not path.is_file():
        raise HarnessInputError(f"selftest --train: the run's spec {path} is not there any more; run it from a "
                                "checkout that has it")
    raw = yaml.safe_load(row.get("spec") or "") or {}
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise HarnessInputError(f"selftest --train: run {run_id}'s stored spec is not valid for this harness "
                                f"({exc.error_count()} problem(s); `harness sweep {path} --dry-run` lists them)"
                                ) from None
    if not spec.data.train:
        raise HarnessInputError(f"selftest --train: run {run_id}'s spec trains nothing (no data.train)")
    return raw, spec, path


def _planted_specs(raw: dict[str, object], spec: ExperimentSpec, folder: Path, tag: str
                   ) -> list[tuple[str, set[str], Path]]:
    method = next((m for m in spec.sweep.method if m in ("lora", "qlora", "full")), "lora")
    lr = max(spec.sweep.values("learning_rate"))
    base = {**raw, "name": f"{spec.name}-selftest", "gate": {}}
    one = {"method": [method], "rank": spec.sweep.values("rank")[:1], "seed": [0]}
    destructive = {**base, "sweep": {**one, "epochs": spec.sweep.values("epochs")[:1], "learning_rate": [lr * 100]}}
    train = (folder / str(spec.data.train)).read_text(encoding="utf-8").splitlines()
    subset = folder / f".selftest-{tag}-train.jsonl"
    subset.write_text("\n".join([ln for ln in train if ln.strip()][:SUBSET]) + "\n", encoding="utf-8")
    validation = spec.data.validation if isinstance(spec.data.validation, str) else 0.25
    data = {**spec.data.model_dump(exclude_unset=True), "train": subset.name, "validation": validation}
    overfit = {**base, "data": data, "sweep": {**one, "epochs": [EPOCHS], "learning_rate": [lr]},
               "train": {**spec.train.model_dump(exclude_unset=True), "eval_every_epochs": 1.0}}
    out: list[tuple[str, set[str], Path]] = []
    for (what, expected), body in zip(PLANTS, (destructive, overfit), strict=True):
        path = folder / f".selftest-{tag}-{len(out)}.yaml"
        path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
        out.append((what, expected, path))
    return out


def train_selftest(db: str, run_id: str) -> int:
    """Run the planted sweeps; 0 when each raised a finding it should, else 1."""
    from harness.sweep.runner import run_sweep

    raw, spec, spec_path = _spec_of(db, run_id)
    tag = run_id.replace("/", "-")
    planted = _planted_specs(raw, spec, spec_path.parent, tag)
    code = 0
    try:
        with tempfile.TemporaryDirectory(prefix="harness-selftest-") as scratch:
            for what, expected, path in planted:
                store_path = Path(scratch) / f"{path.stem}.duckdb"
                rid = run_sweep(path, store_path, progress=Quiet(), out=io.StringIO())
                with Store(store_path, read_only=True) as store:
                    found = set(store.run_table(str(rid), "findings")["check"])
                hit = found & expected
                code = max(code, 0 if hit else 1)
                print(f"trained defect: {what}: findings {', '.join(sorted(found)) or 'none'} -> "
                      + ("caught" if hit else f"MISSED (expected one of {', '.join(sorted(expected))})"))
    finally:
        for p in spec_path.parent.glob(f".selftest-{tag}-*"):
            p.unlink(missing_ok=True)
    return code
