"""evaluate scorer: a local Hugging Face `evaluate` metric module (tests/data/word_f1) on scripted held-out outputs,
per-example and corpus-level intervals, the module's hash in the stored arguments, and a hub name offline."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, flat_all, flat_fn
from fakes import ScriptedModel

from harness.data.chat import Example
from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.scorers import ScoreContext, make_scorer, metric_info
from harness.scorers.run import score_suites
from harness.spec.plan import Variant

TESTS = REPO / "tests"
MODULE = TESTS / "data" / "word_f1" / "word_f1.py"
TEST = [Example([{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": ref}], "/d/test.jsonl", i + 1)
        for i, ref in enumerate(["The order shipped today", "refund approved", "ticket closed"])]
OUTPUTS = {"q0": "the order shipped", "q1": "refund denied", "q2": "no idea"}
# by hand: q0 3 common words of 3 and 4 (P 1, R 3/4, F1 6/7); q1 1 of 2 and 2 (P = R = F1 = 1/2); q2 none (0)
F1 = (6 / 7 + 0.5 + 0) / 3
PRECISION, RECALL = (1 + 0.5 + 0) / 3, (0.75 + 0.5 + 0) / 3
MICRO_F1 = 2 * 4 / (7 + 8)  # 4 common words; 7 output words, 8 reference words


def suite(tmp_path: Path, spec_dir: Path | None = TESTS, **options: object) -> Suite:
    d = tmp_path / "ev"
    d.mkdir(exist_ok=True)
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": "ev", "version": 1, "kind": "evaluate", "options": options}))
    s = load_suite(d)
    s.spec_dir = spec_dir
    return s


def run(s: Suite, model: ScriptedModel | None = None):
    fn, record = make_scorer(s.kind, s.options)
    model = model or ScriptedModel(OUTPUTS)
    return flat_fn(fn, ScoreContext(model=model, suite=s, variant=Variant("v", "v", "lora"), test=TEST, train_log=[],
                           cache={})), record


def test_a_local_module_by_hand(tmp_path: Path) -> None:
    out, record = run(suite(tmp_path, metric="data/word_f1"))  # a folder, relative to the spec's folder
    m = {r["metric"]: r for r in out.scores}
    assert set(m) == {"f1", "precision", "recall", "micro_f1"}  # the numeric keys; not 'name'
    assert m["f1"]["value"] == pytest.approx(F1) and m["f1"]["n"] == 3
    assert m["precision"]["value"] == pytest.approx(PRECISION) and m["recall"]["value"] == pytest.approx(RECALL)
    assert m["micro_f1"]["value"] == pytest.approx(MICRO_F1)
    for r in out.scores:
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_low"] < r["ci_high"]
    # f1 averages over examples: kept per example, interval over examples; micro_f1 is corpus-level
    detail = {e["example_id"]: e["detail"] for e in out.examples}
    assert detail["test:1"]["f1"] == pytest.approx(6 / 7) and detail["test:2"]["f1"] == 0.5
    assert detail["test:3"] == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    assert "micro_f1" not in detail["test:1"]
    assert m["f1"]["scorer_args"]["intervals"] == "percentile bootstrap over 3 examples (per-example values)"
    assert m["micro_f1"]["scorer_args"]["intervals"] == ("percentile bootstrap of the corpus computation, 200 "
                                                         "resamples of the examples")
    # the stored arguments name the module and the sha256 of its code
    args = m["f1"]["scorer_args"]
    assert args["metric_module"] == str(MODULE)
    assert args["metric_sha256"] == hashlib.sha256(MODULE.read_bytes()).hexdigest()
    assert record == {"kind": "evaluate", "args": {"metric": "data/word_f1", "metric_args": None, "keys": None,
                                                   "per_example": "auto", "corpus_resamples": 200,
                                                   "max_new_tokens": None}}
    assert [e["output"] for e in out.examples] == list(OUTPUTS.values())
    assert metric_info("evaluate", "f1").per_example and metric_info("evaluate", "f1").higher_is_better
    assert metric_info("evaluate", "wer").higher_is_better is False


def test_keys_metric_args_and_a_py_file_in_the_suite_folder(tmp_path: Path) -> None:
    s = suite(tmp_path, spec_dir=None, metric="my_f1.py", keys=["f1"], metric_args={"lowercase": False})
    shutil.copy(MODULE, s.folder / "my_f1.py")
    out, _ = run(s)
    assert [r["metric"] for r in out.scores] == ["f1"]
    # case kept: q0 shares only 'order' and 'shipped' (P 2/3, R 2/4, F1 4/7)
    assert out.scores[0]["value"] == pytest.approx((4 / 7 + 0.5) / 3)
    assert out.scores[0]["scorer_args"]["metric_module"] == str(s.folder / "my_f1.py")
    with pytest.raises(HarnessInputError, match="returns no numeric bleu; its numeric keys: f1, micro_f1, precision, "
                                                "recall"):
        run(suite(tmp_path, metric="data/word_f1", keys=["bleu"]))
    with pytest.raises(HarnessInputError, match="failed to compute .*check option 'metric_args'"):
        run(suite(tmp_path, metric="data/word_f1", metric_args={"smooth": True}))


def test_per_example_off_bootstraps_the_corpus_computation(tmp_path: Path) -> None:
    out, _ = run(suite(tmp_path, metric="data/word_f1", per_example=False, corpus_resamples=50, keys=["f1"]))
    assert out.scores[0]["value"] == pytest.approx(F1)
    assert out.scores[0]["scorer_args"]["intervals"].endswith("50 resamples of the examples")
    assert all(e["detail"] == {} for e in out.examples)


def test_a_hub_name_offline_says_so_and_suggests_a_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)  # as on a machine without network

    class NotCached:  # and with nothing in evaluate's module cache
        def __init__(self, *a: object, **k: object) -> None:
            pass

        def get_module(self) -> None:
            raise FileNotFoundError("not cached")

    monkeypatch.setattr(evaluate.loading, "CachedEvaluationModuleFactory", NotCached)
    with pytest.raises(HarnessInputError) as exc:
        run(suite(tmp_path, metric="bleu"))
    text = str(exc.value)
    assert "'bleu' is a Hugging Face Hub name and the hub cannot be reached from this machine" in text
    assert "give a local path to the metric module instead" in text and "spaces/evaluate-metric/bleu" in text


def test_paths_stay_inside_the_suite_and_spec_folders(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError, match="no metric module '../../etc/evil.py'"):
        run(suite(tmp_path, metric="../../etc/evil.py"))
    (tmp_path / "ev").mkdir(exist_ok=True)
    (tmp_path / "ev" / "empty").mkdir()
    with pytest.raises(HarnessInputError, match="holds no empty.py; evaluate loads the script named after its folder"):
        run(suite(tmp_path, metric="empty"))
    (tmp_path / "ev" / "broken.py").write_text("x = 1\n")
    with pytest.raises(HarnessInputError, match=r"broken.py: the metric module could not be loaded"):
        run(suite(tmp_path, metric="broken.py"))
    with pytest.raises(HarnessInputError, match="option 'metric': a local metric module"):
        make_scorer("evaluate", {})
    with pytest.raises(HarnessInputError, match="'per_example': one of auto, true, false"):
        make_scorer("evaluate", {"metric": "x", "per_example": "sometimes"})


def test_the_heldout_generation_is_reused(tmp_path: Path) -> None:
    model = ScriptedModel(OUTPUTS)
    heldout = load_suite(REPO / "suites" / "heldout", {"max_new_tokens": 16})
    scores, _, _ = flat_all(score_suites(model, Variant("v", "v", "lora"), [heldout, suite(tmp_path, metric="data/word_f1")],
                                TEST, [], Quiet()))
    assert model.generate_calls == [3]
    f1 = next(r for r in scores if r["suite"] == "ev" and r["metric"] == "f1")
    assert f1["value"] == pytest.approx(F1)
    assert f1["scorer"]["args"]["metric_sha256"] == hashlib.sha256(MODULE.read_bytes()).hexdigest()


def test_the_hash_covers_the_files_the_module_imports(tmp_path: Path) -> None:
    from harness.scorers.evaluate_metric import code_sha256

    script, helper = tmp_path / "m.py", tmp_path / "helpers.py"
    script.write_text("import evaluate\nfrom .helpers import words\n")
    helper.write_text("def words(t):\n    return t.split()\n")
    digest = code_sha256(script)
    assert digest == hashlib.sha256(script.read_bytes() + helper.read_bytes()).hexdigest()
    helper.write_text("def words(t):\n    return t.lower().split()\n")
    assert code_sha256(script) != digest
    assert code_sha256(MODULE) == hashlib.sha256(MODULE.read_bytes()).hexdigest()  # no local imports


def test_a_spec_names_a_metric_module_next_to_it(tiny_experiment: Path) -> None:
    from harness.data.suites import resolve_suites
    from harness.spec.schema import load_spec

    folder = tiny_experiment.parent
    shutil.copytree(MODULE.parent, folder / "metrics" / "word_f1")
    (folder / "ev").mkdir()
    (folder / "ev" / "suite.yaml").write_text(yaml.safe_dump({"name": "ev", "version": 1, "kind": "evaluate"}))
    text = tiny_experiment.read_text().split("suites:")[0]
    tiny_experiment.write_text(text + "suites:\n  - path: ev\n    options: {metric: metrics/word_f1, keys: [f1]}\n")
    (s,) = resolve_suites(load_spec(tiny_experiment))
    assert s.spec_dir == folder.resolve()
    out, _ = run(s)
    assert out.scores[0]["value"] == pytest.approx(F1)
    assert out.scores[0]["scorer_args"]["metric_module"] == str((folder / "metrics" / "word_f1" / "word_f1.py").resolve())


def test_a_missing_module_stops_the_sweep_before_training(tmp_path: Path) -> None:
    from harness.scorers import check_suites

    check_suites([suite(tmp_path, metric="data/word_f1")])  # found and loaded: no complaint
    with pytest.raises(HarnessInputError, match="no metric module 'metrics/nope/x.py'"):
        check_suites([suite(tmp_path, metric="metrics/nope/x.py")])
