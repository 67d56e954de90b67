"""End to end on tiny-random-llama: a sweep into a real DuckDB file, resume, bad data, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.progress import Quiet
from harness.store.db import Store
from harness.sweep.runner import run_sweep
from harness.testing.rows import typed_suites


def run(spec: Path, db: Path, **kw: object) -> str:
    rid = run_sweep(spec, db, progress=Quiet(), out=open(spec.parent / "out.txt", "w"), **kw)  # type: ignore[arg-type]
    assert rid is not None
    return rid


def test_tiny_sweep_stores_every_variant(tiny_experiment: Path) -> None:
    db = tiny_experiment.parent / "r.duckdb"
    rid = run(tiny_experiment, db)
    with Store(db, read_only=True) as s:
        v = s.run_table(rid, "variants")
        assert list(v["name"]) == ["base", "lora-r2-e1", "lora-r4-e1", "full-e1"]
        assert set(v["status"]) == {"finished"}, v[["name", "error"]]
        scores = s.run_table(rid, "scores")
        for vid in v["variant_id"]:
            metrics = set(scores[scores.variant_id == vid]["metric"])
            assert {"exact_match", "field_accuracy", "rougeL", "bleu", "chrf", "loss"} <= metrics
        with_ci = scores[scores["ci_low"].notna()]  # the added divergence suite's single observations have none
        assert (with_ci["ci_low"] <= with_ci["value"] + 1e-9).all() and (with_ci["value"] <= with_ci["ci_high"] + 1e-9).all()
        assert set(scores[scores["ci_low"].isna()]["suite"]) <= {"divergence"}
        ex = s.run_table(rid, "examples")
        assert ex.groupby("variant_id").size().to_dict() == {vid: 10 for vid in v["variant_id"]}
        log = s.run_table(rid, "train_log")
        for vid in v[v.method != "base"]["variant_id"]:
            splits = set(log[log.variant_id == vid]["split"])
            assert splits == {"train", "validation"}
        trained = v[v.method != "base"]
        assert (trained["trainable_params"] > 0).all() and (trained["train_tokens"] > 0).all()
        lora = trained[trained.method == "lora"]
        assert (lora["trainable_params"] < lora["total_params"]).all()
        for art in trained["artifact"]:
            files = {p.name for p in Path(art).iterdir()}
            assert any(f.endswith(".safetensors") for f in files) and not any(f.endswith(".bin") for f in files)
        run_row = s.run_row(rid)
        assert run_row["status"] == "finished" and run_row["spec_hash"] and run_row["data_fingerprints"]["test"]


def test_rerun_trains_nothing(tiny_experiment: Path) -> None:
    db = tiny_experiment.parent / "r.duckdb"
    first = run(tiny_experiment, db)
    with Store(db, read_only=True) as s:
        before = s.query("SELECT variant_id, finished_at FROM variant_results ORDER BY 1")
        n_examples = s.query("SELECT count(*) AS n FROM examples").iloc[0, 0]
    second = run(tiny_experiment, db)
    with Store(db, read_only=True) as s:
        after = s.query("SELECT variant_id, finished_at FROM variant_results ORDER BY 1")
        assert before.equals(after)  # nothing retrained or rescored
        # `variants` lists the whole sweep under the new run, pointing at the run that produced each result
        listed = s.query("SELECT * FROM variants WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1)")
        assert len(listed) == 4 and listed["reused"].all() and set(listed["produced_by_run"]) == {first}
        assert s.query("SELECT count(*) FROM examples").iloc[0, 0] == n_examples  # referenced, not copied
        links = s.query("SELECT * FROM run_variants WHERE run_id = ?", [second])
        assert len(links) == 4 and links["reused"].all()
        assert len(s.run_table(second, "scores")) == len(s.run_table(first, "scores"))


def test_bad_jsonl_exits_2_and_leaves_store_unchanged(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tiny_experiment.parent / "r.duckdb"
    with Store(db) as s:  # an existing store with one run in it
        s.start_run({"name": "earlier"})
    train = tiny_experiment.parent / "train.jsonl"
    lines = train.read_text().splitlines()
    lines[2] = "{not json"
    lines[5] = json.dumps({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]})
    train.write_text("\n".join(lines) + "\n")
    before = db.read_bytes()
    code = main(["sweep", str(tiny_experiment), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{train}:3: invalid JSON" in err and f"{train}:6: messages[0] has unknown role 'robot'" in err
    assert db.read_bytes() == before


def test_crash_between_variants_leaves_only_whole_variants(tiny_experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.sweep.execute as variant_mod

    real = variant_mod.execute_variant
    calls = {"n": 0}

    def crashing(task, progress=None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user hits Ctrl-C during the third variant
        return real(task, progress)

    monkeypatch.setattr(variant_mod, "execute_variant", crashing)
    db = tiny_experiment.parent / "r.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run(tiny_experiment, db)
    with Store(db, read_only=True) as s:
        stored = s.query("SELECT variant_id, name FROM variant_results")
        assert sorted(stored["name"]) == ["base", "lora-r2-e1"]
        for table in ("scores", "examples", "train_log"):
            ids = set(s.query(f"SELECT DISTINCT variant_id FROM {table}")["variant_id"])
            assert ids <= set(stored["variant_id"])
        assert s.query("SELECT status FROM runs").iloc[0, 0] == "interrupted"
    monkeypatch.setattr(variant_mod, "execute_variant", real)
    rid = run(tiny_experiment, db)  # resume: only the two missing variants are done
    with Store(db, read_only=True) as s:
        links = s.query("SELECT reused FROM run_variants WHERE run_id = ? ORDER BY position", [rid])
        assert list(links["reused"]) == [True, True, False, False]


def test_failed_write_rolls_back_the_whole_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.results import VariantResult, VariantRow

    with Store(tmp_path / "r.duckdb") as s:
        real_insert = s._insert

        def failing(table: str, rows):  # type: ignore[no-untyped-def]
            if table == "examples":
                raise RuntimeError("disk full")
            real_insert(table, rows)

        monkeypatch.setattr(s, "_insert", failing)
        result = VariantResult(VariantRow("v1", name="x", status="finished"),
                               suites=typed_suites([{"suite": "h", "metric": "m", "value": 1.0}],
                                                   [{"suite": "h", "example_id": "1"}]))
        with pytest.raises(RuntimeError):
            s.write_variant(result)
        for table in ("variants", "scores", "examples"):
            assert s.query(f"SELECT count(*) FROM {table}").iloc[0, 0] == 0


def test_dry_run_prints_plan_and_writes_nothing(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tiny_experiment.parent / "r.duckdb"
    assert main(["sweep", str(tiny_experiment), "--db", str(db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lora-r2-e1" in out and "full-e1" in out and "estimated training tokens" in out
    assert not db.exists()


def test_runs_and_models_commands(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tiny_experiment.parent / "r.duckdb"
    assert main(["runs", "--db", str(db)]) == 2  # no store yet: bad input, says so
    assert "harness sweep" in capsys.readouterr().err
    run(tiny_experiment, db, only=["lora-r2-e1"])
    assert main(["runs", "--db", str(db)]) == 0
    assert "tiny" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "smollm2-135m-instruct" in capsys.readouterr().out


def test_unknown_model_and_suite_are_bad_input(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tiny_experiment.read_text().replace("tiny-random-llama", "tiny-randm-llama").replace(
        "name: heldout", "name: heldot")
    tiny_experiment.write_text(text)
    assert main(["sweep", str(tiny_experiment), "--db", str(tiny_experiment.parent / "r.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'tiny-random-llama'" in err and "Did you mean 'heldout'" in err


def test_missing_json_fields_are_null(tmp_path: Path) -> None:
    with Store(tmp_path / "r.duckdb") as s:
        rid = s.start_run({"name": "x"})
        assert s.query("SELECT data_fingerprints IS NULL AS n FROM runs WHERE run_id = ?", [rid]).iloc[0, 0]


def test_newer_schema_is_refused_with_a_reason(tmp_path: Path) -> None:
    from harness.errors import HarnessInputError

    with Store(tmp_path / "r.duckdb") as s:
        s.con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(HarnessInputError, match="newer than this harness"):
        Store(tmp_path / "r.duckdb", read_only=True)


def test_a_store_locked_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "r.duckdb"
    Store(db).close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        assert main(["runs", "--db", str(db)]) == 2
    finally:
        holder.kill()


def test_unreachable_hub_model_names_the_alternatives(tiny_experiment: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny_experiment.write_text(tiny_experiment.read_text().replace("tiny-random-llama", "no-such-org/no-such-model"))
    assert main(["sweep", str(tiny_experiment), "--db", str(tiny_experiment.parent / "r.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "no-such-org/no-such-model" in err and "offline" in err and "smollm2-135m-instruct" in err


def test_item13_one_findings_count(tiny_experiment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's closing line and the summary count the same findings, and neither calls a variant's own
    overfitting finding a comparison against base (issue 23, item 13)."""
    import io

    import harness.sweep.execute as variant_mod
    from harness.progress import Progress
    from harness.results import FINISHED, RunParts, VariantResult, finish_row
    from harness.scores import Finding

    def scored(task, progress=None):  # type: ignore[no-untyped-def]  # no training: each variant's own finding
        result = VariantResult(finish_row(task.planned(), RunParts(), FINISHED))
        if task.variant.trains:
            result.findings.append(Finding("overfitting", "warning", f"{task.variant.name} is overfitting", {}))
        return result

    monkeypatch.setattr(variant_mod, "execute_variant", scored)
    log = io.StringIO()
    db = tiny_experiment.parent / "r.duckdb"
    out = io.StringIO()
    assert run_sweep(tiny_experiment, db, progress=Progress(live=False, stream=log), out=out)
    closing = [line for line in log.getvalue().splitlines() if " findings " in line or " finding " in line]
    assert len(closing) == 1 and closing[0].endswith("] 3 findings (overfitting 3), listed with the summary "
                                                     "(comparisons against base are corrected together across the "
                                                     "run)"), log.getvalue()
    summary = out.getvalue()
    assert "3 findings (overfitting 3):" in summary
    assert summary.count("] ") >= 3 and summary.count("overfitting: ") == 3


def test_item15_dry_run_counts_a_shared_training_once(tiny_experiment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With train.epochs_from_one_run, epochs [1, 3] train once for 3 epochs per group: the dry run's total counts
    that run once (not 1 + 3 epochs) and says which variants share it (issue 23, item 15)."""
    import re

    from harness.sweep.runner import Sweep

    text = tiny_experiment.read_text().replace("epochs: [1]", "epochs: [1, 3]")
    tiny_experiment.write_text(text.replace("train:\n", "train:\n  epochs_from_one_run: true\n"))
    per_epoch = Sweep(tiny_experiment)._train_tokens_per_epoch()
    assert per_epoch > 0
    assert main(["sweep", str(tiny_experiment), "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"estimated training tokens in all: ([\d,]+) \(each shared run counted once\)", out)
                .group(1).replace(",", ""))
    assert total == 3 * 3 * per_epoch  # three groups (lora r2, lora r4, full), each one 3-epoch run
    shared = re.findall(r"shared run (\w+): (\S+), (\S+) are checkpoints of one 3-epoch training of ([\d,]+) tokens",
                        out)
    assert sorted((a, b) for _, a, b, _ in shared) == [("full-e1of3", "full-e3of3"), ("lora-r2-e1of3", "lora-r2-e3of3"),
                                                       ("lora-r4-e1of3", "lora-r4-e3of3")]
    assert {int(n.replace(",", "")) for *_, n in shared} == {3 * per_epoch}
    assert out.count(" shared (") == 6  # each grouped variant's row names its run
    tiny_experiment.write_text(text)  # separate runs: 1 + 3 epochs for each of the three
    assert main(["sweep", str(tiny_experiment), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"estimated training tokens in all: {3 * 4 * per_epoch:,}\n" in out and "shared" not in out
