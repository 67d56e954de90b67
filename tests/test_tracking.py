"""Experiment trackers: a stored sweep sent to MLflow (local SQLite store) and W&B (offline), read back with each
library's own API; sending again adds nothing; a tracker that cannot be reached never fails a sweep."""

from __future__ import annotations

import json
import math
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.errors import HarnessInputError
from harness.spec.tracking import parse_tracking, tracking_from_text
from harness.store.db import Store
from harness.testing.synthetic import Synthetic, make_synthetic_store

pytestmark = pytest.mark.skipif(find_spec("mlflow") is None or find_spec("wandb") is None,
                                reason="needs the mlflow and wandb extras: pip install 'finetune-harness[mlflow,wandb]'")

TRACKING = """tracking:
  mlflow: {tracking_uri: "sqlite:///%(db)s", experiment: acme}
  wandb: {mode: offline, dir: "%(dir)s"}
"""


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, made once (its migrations take seconds) and copied by each test."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """W&B offline, its config, cache and data folders in the test's folder; a marker API key to look for."""
    key = "harness-test-key-" + "7" * 24  # too short for W&B: online, it refuses it at once
    for var, sub in (("WANDB_CONFIG_DIR", "cfg"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / sub))
    monkeypatch.setenv("WANDB_API_KEY", key)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    return key


def _store(tmp_path: Path, mlflow_db: Path) -> tuple[Path, str]:
    db = tmp_path / "results.duckdb"
    extra = TRACKING % {"db": mlflow_db, "dir": tmp_path / "wb"}
    [run_id] = make_synthetic_store(db, Synthetic(n_variants=6, n_heldout=12, n_format=6, n_hallucination=6,
                                                  n_general=8, spec_extra=extra))
    return db, run_id


def _stored(db: Path, run_id: str) -> dict[str, pd.DataFrame]:
    with Store(db, read_only=True) as store:
        return {t: store.run_table(run_id, t) for t in ("variants", "scores", "train_log", "findings")}


def _assert_scores(metrics: dict[str, float], scores: pd.DataFrame) -> None:
    """Every stored score of a variant, with its CI bounds and n, under `<suite>.<metric>[.ci_low|.ci_high|.n]`."""
    for s in scores.to_dict("records"):
        name = f"{s['suite']}.{s['metric']}"
        for key, want in ((name, s["value"]), (f"{name}.ci_low", s["ci_low"]), (f"{name}.ci_high", s["ci_high"]),
                          (f"{name}.n", s["n"])):
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert key not in metrics
            else:
                assert metrics[key] == pytest.approx(float(want)), key


def test_mlflow_export_reads_back_and_a_second_export_adds_nothing(
        tmp_path: Path, mlflow_template: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow_db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, mlflow_db)
    monkeypatch.chdir(tmp_path)  # MLflow's artifacts go to ./mlruns
    db, run_id = _store(tmp_path, mlflow_db)
    stored = _stored(db, run_id)
    n = len(stored["variants"]) + 1
    from harness.gate.baseline import save_baseline
    from harness.gate.run import gate_result

    baseline = save_baseline(db, run_id, variant=None, output=tmp_path / "baseline.json")
    passed = gate_result(db, run_id, baseline=baseline).passed
    assert main(["export", "mlflow", "latest", "--db", str(db), "--baseline", str(baseline)]) == 0
    assert f"{n} run(s) sent" in capsys.readouterr().out

    uri = f"sqlite:///{mlflow_db}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    runs = mlflow.search_runs(experiment_names=["acme"], filter_string=f"tags.`harness.run_id` = '{run_id}'",
                              output_format="list")
    parents = [r for r in runs if r.data.tags["harness.level"] == "sweep"]
    children = {r.data.tags["harness.variant_id"]: r for r in runs if r.data.tags["harness.level"] == "variant"}
    assert len(parents) == 1 and len(runs) == 1 + len(stored["variants"])
    parent = parents[0]
    assert set(children) == set(stored["variants"]["variant_id"])
    assert {r.data.tags["mlflow.parentRunId"] for r in children.values()} == {parent.info.run_id}
    assert parent.data.params["run_id"] == run_id and parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"report.html", "findings.json", "spec.yaml"}
    report = Path(client.download_artifacts(parent.info.run_id, "report.html", str(tmp_path / "dl")))
    assert "<html" in report.read_text(encoding="utf-8")[:500].lower()
    assert parent.data.metrics["findings.count"] == len(stored["findings"]) > 0
    assert parent.data.metrics["gate.passed"] == float(passed)  # the gate's outcome, and its JUnit file
    assert parent.data.tags["harness.gate"] == ("passed" if passed else "failed")
    junit = Path(client.download_artifacts(parent.info.run_id, "gate/junit.xml", str(tmp_path / "dl")))
    assert "<testsuite" in junit.read_text(encoding="utf-8")

    for v in stored["variants"].to_dict("records"):
        child = children[v["variant_id"]]
        vid = v["variant_id"]
        assert child.info.run_name == v["name"]
        assert child.info.status == ("FINISHED" if v["status"] == "finished" else "FAILED")
        assert child.data.params["method"] == v["method"]
        if v["rank"] is not None and not pd.isna(v["rank"]):
            assert child.data.params["rank"] == str(int(v["rank"]))
        scores = stored["scores"][stored["scores"]["variant_id"] == vid]
        assert len(scores) or v["status"] == "failed"
        _assert_scores(child.data.metrics, scores)
        log = stored["train_log"][stored["train_log"]["variant_id"] == vid]
        for split in ("train", "validation"):
            want = log[log["split"] == split].sort_values("step")
            got = sorted(client.get_metric_history(child.info.run_id, f"{split}/loss"), key=lambda m: m.step)
            assert [m.step for m in got] == [int(s) for s in want["step"]]  # every step, none twice
            assert [m.value for m in got] == pytest.approx(list(want["loss"]))
        findings = json.loads(Path(client.download_artifacts(child.info.run_id, "findings.json",
                                                             str(tmp_path / "dl" / vid))).read_text())
        assert len(findings) == child.data.metrics["findings.count"] == (stored["findings"]["variant_id"] == vid).sum()
    assert len(stored["train_log"]) and any(children[v].data.metrics["findings.count"] for v in children)

    def snapshot() -> dict[str, int]:
        found = client.search_runs([parent.info.experiment_id], run_view_type=3)  # active and deleted
        return {r.info.run_id: len(client.get_metric_history(r.info.run_id, "train/loss")) for r in found}

    before = snapshot()
    assert main(["export", "mlflow", run_id, "--db", str(db), "--baseline", str(baseline)]) == 0
    assert f"0 run(s) sent, {n} already there" in capsys.readouterr().out
    assert snapshot() == before



def test_wandb_offline_export_reads_back_and_a_second_export_adds_nothing(
        tmp_path: Path, wandb_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.tracking.wandb_files import local_runs
    from harness.tracking.wandb_tracker import run_key

    db, run_id = _store(tmp_path, tmp_path / "unused.db")
    stored = _stored(db, run_id)
    n = len(stored["variants"]) + 1
    assert main(["export", "wandb", "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert f"{n} run(s) sent" in out.out

    root = tmp_path / "wb"
    parent_runs = local_runs(root, run_key(run_id, None))
    assert len(parent_runs) == 1
    parent = parent_runs[0]
    assert parent.finished and parent.job_type == "sweep" and parent.group == run_id
    assert parent.config["harness.run_id"] == run_id
    assert {"report.html", "findings.json", "spec.yaml"} <= set(parent.files)
    assert (parent.path.parent / "files" / "report.html").read_text(encoding="utf-8").lower().startswith("<!doctype")
    assert parent.summary["findings.count"] == len(stored["findings"]) > 0
    for v in stored["variants"].to_dict("records"):
        vid = v["variant_id"]
        [run] = local_runs(root, run_key(run_id, vid))
        assert run.group == run_id and run.job_type == "variant" and run.name == v["name"]
        assert run.config["harness.variant_id"] == vid and run.config["method"] == v["method"]
        assert run.exit_code == (0 if v["status"] == "finished" else 1)
        scores = stored["scores"][stored["scores"]["variant_id"] == vid]
        assert len(scores) or v["status"] == "failed"
        _assert_scores(run.summary, scores)
        log = stored["train_log"][stored["train_log"]["variant_id"] == vid]
        for split in ("train", "validation"):
            want = log[log["split"] == split].sort_values("step")
            got = [(h["_step"], h[f"{split}/loss"]) for h in run.history if f"{split}/loss" in h]
            assert [s for s, _ in got] == [int(s) for s in want["step"]]
            assert [x for _, x in got] == pytest.approx(list(want["loss"]))
        assert "findings.json" in run.files
        findings = json.loads((run.path.parent / "files" / "findings.json").read_text())
        assert len(findings) == run.summary["findings.count"] == (stored["findings"]["variant_id"] == vid).sum()

    folders = sorted(p.name for p in (root / "wandb").iterdir())
    assert main(["export", "wandb", run_id, "--db", str(db)]) == 0
    assert f"0 run(s) sent, {n} already there" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "wandb").iterdir()) == folders
    # the API key (from the environment only) is in no file W&B wrote and in no output
    for f in root.rglob("*"):
        if f.is_file():
            assert wandb_env.encode() not in f.read_bytes(), f
    assert wandb_env not in out.out + out.err


@pytest.mark.slow  # a real sweep (training included) and both trackers: about a minute on 2 cores
def test_sweep_with_an_unreachable_tracker_exits_0_warns_with_the_export_command(
        tiny_experiment: Path, wandb_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MLflow down: the sweep still exits 0, the store is whole, the warning names the command; W&B offline gets the
    real variants (config, every logged step)."""
    from harness.tracking.wandb_files import local_runs
    from harness.tracking.wandb_tracker import run_key

    spec = tiny_experiment.read_text().replace("method: [lora, full]", "method: [lora]").replace("rank: [2, 4]",
                                                                                                 "rank: [2]")
    tiny_experiment.write_text(spec + "tracking:\n  mlflow: {tracking_uri: \"http://127.0.0.1:9\"}\n"
                               "  wandb: {mode: offline, dir: wb}\n")
    monkeypatch.chdir(tiny_experiment.parent)  # W&B's dir, as MLflow's sqlite paths, is relative to the working dir
    db = tiny_experiment.parent / "r.duckdb"
    assert main(["sweep", str(tiny_experiment), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    with Store(db, read_only=True) as store:
        run_id = store.resolve_run("latest")
        assert store.run_row(run_id)["status"] == "finished"
        variants = store.run_table(run_id, "variants")
        log = store.run_table(run_id, "train_log")
    assert list(variants["status"]) == ["finished", "finished"]
    assert "warning: export to MLflow incomplete" in err and "127.0.0.1:9" in err
    assert f"send it later with: harness export mlflow {run_id} --db {db}" in err
    assert "not sent: the sweep run, base, lora-r2-e1" in err
    assert "tracking: W&B" in err and "3 run(s) sent" in err
    lora = variants[variants["method"] == "lora"].iloc[0]
    [run] = local_runs(Path.cwd() / "wb", run_key(run_id, lora["variant_id"]))
    assert run.config["config.train.max_seq_length"] == 96 and run.config["rank"] == 2
    steps = sorted(int(s) for s in log[(log["variant_id"] == lora["variant_id"]) & (log["split"] == "train")]["step"])
    assert [h["_step"] for h in run.history if "train/loss" in h] == steps and steps


def test_an_unreachable_tracker_at_the_end_of_a_sweep_is_a_warning_naming_the_command(
        tmp_path: Path, wandb_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the sweep calls when it ends: MLflow down and W&B refusing the credentials both warn (what was not sent,
    the command that sends it) and raise nothing; the store is untouched."""
    from harness.spec.tracking import TrackingSpec
    from harness.tracking.export import export_after_sweep

    db = tmp_path / "r.duckdb"
    [run_id] = make_synthetic_store(db, Synthetic(n_variants=2, n_heldout=6, n_format=4, n_hallucination=4,
                                                  n_general=4))
    before = db.read_bytes()
    tracking = TrackingSpec.model_validate({"mlflow": {"tracking_uri": "http://127.0.0.1:9"},
                                            "wandb": {"mode": "online", "dir": str(tmp_path / "wb")}})
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    export_after_sweep(db, run_id, tracking)
    err = capsys.readouterr().err
    for tracker in ("mlflow", "wandb"):
        assert f"send it later with: harness export {tracker} {run_id} --db {db}" in err
    assert "export to MLflow incomplete: MLflow at http://127.0.0.1:9" in err
    assert "export to W&B incomplete: W&B at project 'acme-support', online failed (AuthenticationError" in err
    assert err.count("not sent: the sweep run, base, ") == 2
    assert wandb_env not in err
    assert db.read_bytes() == before


def test_tracking_block_errors_name_the_key_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError) as e:
        parse_tracking({"mlflow": {"trackin_uri": "x"}, "wandb": {"mode": "ofline"}, "wnadb": {}}, "spec.yaml")
    text = e.value.render()
    assert "tracking.mlflow.trackin_uri': unknown key. Did you mean 'tracking_uri'?" in text
    assert "tracking.wandb.mode'" in text and "'offline'" in text
    assert "tracking.wnadb': unknown key. Did you mean 'wandb'?" in text
    with pytest.raises(HarnessInputError, match="WANDB_API_KEY"):
        parse_tracking({"wandb": {"api_key": "abc"}}, "spec.yaml")
    with pytest.raises(HarnessInputError, match="MLFLOW_TRACKING_USERNAME"):
        parse_tracking({"mlflow": {"tracking_uri": "https://me:pw@mlflow.example"}}, "spec.yaml")
    assert tracking_from_text("name: x\ntracking:\n  mlflow:\n", "stored").trackers() == ["mlflow"]
    assert tracking_from_text("name: x\n", "stored").trackers() == []
    spec = tmp_path / "spec.yaml"  # the same checks, with the line, when the spec is loaded
    spec.write_text("name: t\nmodel: tiny-random-llama\ndata: {test: t.jsonl}\nsweep: {method: [prompt]}\n"
                    "prompt: {system: hi}\ntracking:\n  mlflow: {experimnt: x}\n")
    from harness.spec.schema import load_spec

    with pytest.raises(HarnessInputError, match=r"spec.yaml:7: key 'tracking.mlflow.experimnt': unknown key. Did you "
                                                r"mean 'experiment'\?"):
        load_spec(spec)


def test_a_missing_extra_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.duckdb"
    make_synthetic_store(db, Synthetic(n_variants=2, n_heldout=6, n_format=4, n_hallucination=4, n_general=4))
    for name, extra in (("mlflow", "mlflow"), ("wandb", "wandb")):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
        assert main(["export", name, "--db", str(db)]) == 2
        assert f"pip install 'finetune-harness[{extra}]'" in capsys.readouterr().err
