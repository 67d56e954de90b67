"""The `lm-eval` suite kind: lm-evaluation-harness tasks from a local task YAML (the committed general items as an
lm-eval task) run in a real sweep on tiny-random-llama through lm-eval's own evaluator, stored per sample, compared
paired against base and gated; its options, errors (offline Hub, missing extra, API models, paths outside the suite)
and metric declarations; and, slow, parity with the built-in `general` scorer on the embedded model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import REPO, make_rows, write_jsonl
from fakes import ScriptedModel
from lm_eval.api.model import LM

from harness.data.suites import Suite, load_suite
from harness.errors import HarnessInputError
from harness.progress import Quiet
from harness.results import VariantResult, VariantRow
from harness.scorers import ScoreContext, check_suites, make_scorer, metric_info
from harness.scorers.run import label
from harness.scores import Sample, Score, SuiteResult
from harness.spec.plan import Variant
from harness.store.db import Store, stored_variant
from harness.sweep.runner import run_sweep
from harness.verdicts import findings

SUITE = REPO / "tests" / "data" / "lm_eval_general"
LIMIT = 40  # documents of the seeded sample each variant scores in the sweep

SPEC = f"""\
name: lm-eval-tiny
model: tiny-random-llama
data:
  train: train.jsonl
  validation: 0.25
  test: test.jsonl
sweep:
  method: [lora]
  rank: [2]
  epochs: [1]
  learning_rate: [1.0e-3]
train:
  max_seq_length: 96
  batch_size: 8
suites:
  - path: lm-eval-general
    options: {{limit: {LIMIT}}}
"""


def _suite(tmp_path: Path, options: dict | None = None, tasks: dict[str, dict] | None = None) -> Suite:
    """A copy of the committed lm-eval suite (or one with the given task YAMLs) in tmp_path."""
    d = tmp_path / "lm-eval-general"
    shutil.copytree(SUITE, d)
    for name, cfg in (tasks or {}).items():
        (d / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return load_suite(d, options or {})


def _score(suite: Suite, model: object) -> SuiteResult:
    fn, _ = make_scorer(suite.kind, suite.options, suite=suite)
    return fn(ScoreContext(model=model, suite=suite, variant=Variant("base", "base", "base"), test=[],  # type: ignore[arg-type]
                           train_log=[]))


def test_the_task_reads_the_committed_general_items() -> None:
    task = [json.loads(x) for x in (SUITE / "tasks" / "general_mc.jsonl").read_text().splitlines()]
    general = [json.loads(x) for x in (REPO / "suites" / "general" / "items.jsonl").read_text().splitlines()]
    assert task == general and len(task) == 224


def test_metric_declarations_follow_lm_eval() -> None:
    acc = metric_info("lm-eval", "general_mc/acc")
    assert (acc.per_example, acc.finding, acc.gate, acc.primary, acc.column) == (True, "forgetting",
                                                                              ("max_drop", 0.03), True, "acc")
    sub = metric_info("lm-eval", "mmlu/acc:mmlu_anatomy")  # a group's subtask: compared, not a finding of its own
    assert (sub.per_example, sub.finding, sub.gate, sub.higher_is_better) == (True, None, None, True)
    assert metric_info("lm-eval", "gsm8k/exact_match,strict-match").finding == "forgetting"
    assert metric_info("lm-eval", "hellaswag/acc_norm").finding is None
    ppl = metric_info("lm-eval", "wikitext/word_perplexity")
    assert (ppl.higher_is_better, ppl.per_example) == (False, False)
    assert metric_info("lm-eval", "x/bits_per_byte:x_sub").higher_is_better is False
    assert metric_info("lm-eval", "x/a_metric_lm_eval_adds_later").higher_is_better is None  # descriptive


def test_options_are_checked_together() -> None:
    with pytest.raises(HarnessInputError) as err:
        make_scorer("lm-eval", {"tasks": [], "limit": 0, "num_fewshot": -1, "batch_size": "big"})
    text = str(err.value)
    assert len(err.value.problems) == 4 and "option 'tasks'" in text and "option 'limit'" in text
    assert "option 'num_fewshot'" in text and "option 'batch_size'" in text


def test_without_lm_eval_the_error_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    with pytest.raises(HarnessInputError, match=r"pip install 'finetune-harness\[lm-eval\]'"):
        check_suites([_suite(tmp_path)])


def test_paths_may_not_leave_the_suite(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError, match="points outside the suite folder"):
        check_suites([_suite(tmp_path / "a", {"include_path": "../elsewhere"})])
    bad = {"task": "escapes", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "../../x.jsonl"}},
           "output_type": "multiple_choice", "doc_to_text": "context", "doc_to_choice": "choices",
           "doc_to_target": "gold", "test_split": "test"}
    with pytest.raises(HarnessInputError, match=r"escapes\.yaml: dataset_kwargs\.data_files '\.\./\.\./x\.jsonl' "
                                                "points outside the suite folder"):
        check_suites([_suite(tmp_path / "b", {"tasks": ["escapes"]}, {"escapes": bad})])


def test_an_unreachable_hub_dataset_names_the_task_and_the_local_fix(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # read once, when datasets was imported
    hub = {"task": "arc_like", "dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Easy", "test_split": "test",
           "output_type": "multiple_choice", "doc_to_text": "question", "doc_to_choice": "{{choices.text}}",
           "doc_to_target": "answerKey"}
    suite = _suite(tmp_path, {"tasks": ["arc_like"]}, {"arc_like": hub})
    never = SimpleNamespace(name="local", lm_eval=lambda *a, **k: pytest.fail("nothing is scored without data"))
    with pytest.raises(HarnessInputError) as err:
        _score(suite, never)
    text = str(err.value)
    assert "task 'arc_like'" in text and "Hugging Face Hub, which cannot be reached" in text
    assert "dataset_path: json" in text and "data_files" in text and "include_path" in text


def test_a_model_without_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessInputError, match="runs lm-evaluation-harness on loaded model weights; 'scripted' is "
                                                "scored through an API"):
        _score(_suite(tmp_path, {"limit": 2}), ScriptedModel())


class Scripted(LM):
    """lm-eval's `LM` interface, scripted (as lm-eval tests itself on a dummy model): the choice holding 'right' is
    likeliest, answers are read off the prompt, a text's log-likelihood is minus a quarter of its length."""

    def loglikelihood(self, requests):  # type: ignore[no-untyped-def]
        return [(-1.0 if "right" in cont else -2.0 - len(cont), False) for _, cont in (r.args for r in requests)]

    def loglikelihood_rolling(self, requests):  # type: ignore[no-untyped-def]
        return [-len(r.args[0]) / 4 for r in requests]

    def generate_until(self, requests):  # type: ignore[no-untyped-def]
        return [" FOUR" if "2+2" in r.args[0] else " five" for r in requests]


def _scripted_model() -> SimpleNamespace:
    """A model whose `lm_eval` runs lm-eval's own evaluator on the scripted LM (LocalModel.lm_eval's contract)."""
    from lm_eval import evaluator

    def run(task_dict, samples, *, batch_size, seed):  # type: ignore[no-untyped-def]
        return dict(evaluator.evaluate(lm=Scripted(), task_dict=task_dict, samples=samples, log_samples=True,
                                       bootstrap_iters=0))

    return SimpleNamespace(name="scripted-lm-eval", lm_eval=run)


MC_DOCS = {"mc_a": [{"q": f"a{i}", "choices": [" wrong", " right"] if i % 3 else [" right", " wrong"], "gold": 1}
                    for i in range(6)],
           "mc_b": [{"q": f"b{i}", "choices": [" right", " wrong"], "gold": 0} for i in range(3)]}
GROUPED = {
    **{name: {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": f"{name}.jsonl"}},
              "test_split": "test", "output_type": "multiple_choice", "doc_to_text": "q", "doc_to_choice": "choices",
              "doc_to_target": "gold", "metric_list": [{"metric": "acc"}]} for name in MC_DOCS},
    "mc_group": {"group": "mc_group", "task": ["mc_a", "mc_b"],
                 "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": False}]},
    "qa_gen": {"task": "qa_gen", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "qa.jsonl"}},
               "test_split": "test", "output_type": "generate_until", "doc_to_text": "Q: {{q}}\nA:",
               "doc_to_target": "{{a}}", "generation_kwargs": {"until": ["\n"]},
               "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
               "filter_list": [{"name": "exact", "filter": [{"function": "take_first"}]},
                               {"name": "lower", "filter": [{"function": "lowercase"}, {"function": "take_first"}]}]},
    "text_ppl": {"task": "text_ppl", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": "text.jsonl"}},
                 "test_split": "test", "output_type": "loglikelihood_rolling", "doc_to_text": "", "doc_to_target":
                 "{{text}}", "metric_list": [{"metric": "word_perplexity"}, {"metric": "bits_per_byte"}]},
}


def test_groups_filters_generation_and_corpus_metrics_as_lm_eval_computes_them(tmp_path: Path) -> None:
    suite = _suite(tmp_path, {"tasks": ["mc_group", "qa_gen", "text_ppl"], "limit": 0.5}, GROUPED)
    for name, docs in MC_DOCS.items():
        write_jsonl(suite.folder / "tasks" / f"{name}.jsonl", docs)
    write_jsonl(suite.folder / "tasks" / "qa.jsonl", [{"q": "2+2", "a": " four"}, {"q": "2+3", "a": " five"}])
    write_jsonl(suite.folder / "tasks" / "text.jsonl", [{"text": "one two three " * (i + 1)} for i in range(4)])
    out = _score(suite, _scripted_model())
    by = {s.metric: s for s in out.scores}
    # a group: its documents pooled under the group's name, each task and the lm-eval group value beside it
    assert by["mc_group/acc"].n == 3 + 2 and {"mc_group/acc:mc_a", "mc_group/acc:mc_b"} <= set(by)
    a, b = by["mc_group/acc:mc_a"], by["mc_group/acc:mc_b"]
    assert by["mc_group/acc"].value == pytest.approx((a.value * a.n + b.value * b.n) / (a.n + b.n))
    assert by["mc_group/acc"].how["lm_eval_group_value"] == pytest.approx((a.value + b.value) / 2)  # unweighted
    assert by["mc_group/acc"].how["sample"].endswith("5 of 9 documents")  # ceil(6 / 2) + ceil(3 / 2)
    first_a = next(s for s in out.samples if s.example_id.startswith("mc_a:"))
    assert set(first_a.scores) == {"mc_group/acc", "mc_group/acc:mc_a"}
    # generation under two filters: one metric each, lm-eval's `metric,filter` names, each filter's output kept
    gen = {s.example_id: s for s in out.samples if s.example_id.startswith("qa_gen:")}
    assert by["qa_gen/exact_match,exact"].value == 0.0 and by["qa_gen/exact_match,lower"].value == 1.0
    assert gen["qa_gen:0"].output == " FOUR" and gen["qa_gen:0"].passed is False  # the first filter's verdict
    assert gen["qa_gen:0"].detail["outputs"] == {"exact": " FOUR", "lower": " four"}
    assert metric_info("lm-eval", "qa_gen/exact_match,lower").finding == "forgetting"
    # corpus-level perplexities: lm-eval's own value, a bootstrap interval, not stored per document
    wp = by["text_ppl/word_perplexity"]
    assert wp.ci_low <= wp.value <= wp.ci_high and "bootstrap" in wp.how["intervals"]
    assert not any("perplexity" in m for s in out.samples for m in s.scores)
    assert metric_info("lm-eval", "text_ppl/bits_per_byte").higher_is_better is False


def _lm_eval_result(name: str, knows: set[int], suite: Suite) -> VariantResult:
    """A variant's lm-eval suite result as the scorer writes it, with planted per-document outcomes."""
    samples = [Sample(f"general_mc:{i}", "q", "a", "a", i in knows, {"general_mc/acc": float(i in knows)})
               for i in range(100)]
    k = len(knows)
    out = SuiteResult([Score("general_mc/acc", k / 100, 0.0, 1.0, 100)], samples)
    record = {"kind": "lm-eval", "args": dict(suite.options)}
    row = VariantRow(name, name=name, method="lora" if name != "base" else "base", status="finished")
    return VariantResult(row, [], [label(out, suite, record)])


def test_a_regression_is_a_forgetting_finding_in_the_runs_family(tmp_path: Path) -> None:
    from conftest import result_frames

    suite = _suite(tmp_path)
    base = _lm_eval_result("base", set(range(60)), suite)
    forgot = _lm_eval_result("lora", set(range(35)), suite)  # 25 documents lost, none gained
    same = _lm_eval_result("lora-2", set(range(60)), suite)
    found = findings.derive_run([(stored_variant(v.variant), result_frames(v)) for v in (base, forgot, same)], result_frames(base),
                                {})
    assert [(f["variant_id"], f["check"]) for f in found] == [("lora", "forgetting")]
    ev = found[0]["evidence"]
    assert ev["suite"] == "lm-eval-general" and ev["metric"] == "general_mc/acc" and ev["paired"] is True
    assert "McNemar" in ev["how"] and ev["mcnemar_p"] < 1e-6 and ev["family"] == 2 and ev["mde"] > 0
    assert "general_mc/acc on lm-eval-general fell against base 0.60 -> 0.35" in found[0]["message"]


# -- a real sweep on tiny-random-llama ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("lm-eval-sweep")
    write_jsonl(d / "train.jsonl", make_rows(16))
    write_jsonl(d / "test.jsonl", make_rows(10, offset=100))
    shutil.copytree(SUITE, d / "lm-eval-general")
    (d / "spec.yaml").write_text(SPEC, encoding="utf-8")
    rid = run_sweep(d / "spec.yaml", d / "r.duckdb", progress=Quiet(), out=open(d / "out.txt", "w"))
    assert rid is not None
    return d, rid


def test_sweep_stores_lm_evals_per_sample_results(swept: tuple[Path, str]) -> None:
    d, rid = swept
    with Store(d / "r.duckdb", read_only=True) as s:
        v = s.run_table(rid, "variants")
        assert set(v["status"]) == {"finished"}, v[["name", "error"]]
        rows = s.query("SELECT v.method, s.metric, s.example_id, s.value FROM sample_scores s JOIN variant_results v "
                       "USING (variant_id) WHERE s.suite = 'lm-eval-general'")
        scores = s.query("SELECT v.method, s.metric, s.value, s.n, s.scorer FROM scores s JOIN variant_results v "
                         "USING (variant_id) WHERE s.suite = 'lm-eval-general'")
        examples = s.query("SELECT example_id, prompt, output, reference, detail FROM examples "
                           "WHERE suite = 'lm-eval-general'")
    assert set(rows["metric"]) == {"general_mc/acc", "general_mc/acc_norm"}
    ids = {m: set(g["example_id"]) for m, g in rows.groupby("method")}
    assert ids["base"] == ids["lora"] and len(ids["base"]) == LIMIT  # the same seeded sample for every variant
    assert all(i.startswith("general_mc:") for i in ids["base"])
    assert set(rows["value"]) <= {0.0, 1.0}
    for (method, metric), g in rows.groupby(["method", "metric"]):
        stored = scores[(scores.method == method) & (scores.metric == metric)].iloc[0]
        assert stored["n"] == LIMIT and stored["value"] == pytest.approx(g["value"].mean())
    rec = scores.iloc[0]["scorer"]
    rec = rec if isinstance(rec, dict) else json.loads(rec)
    assert rec["kind"] == "lm-eval" and rec["args"]["lm_eval"] and rec["metric"]["finding"] == "forgetting"
    assert rec["args"]["sample"] == f"a seeded random sample (seed 1234, limit {LIMIT} per task): {LIMIT} of 224 documents"
    first = examples.iloc[0]
    detail = first["detail"] if isinstance(first["detail"], dict) else json.loads(first["detail"])
    assert first["prompt"].startswith("Question:") and first["output"] and first["reference"]
    assert {"pred", "pred_norm", "gold", "loglikelihoods"} <= set(detail)


def test_sweep_is_compared_paired_and_gated_with_its_mde(swept: tuple[Path, str]) -> None:
    from harness.gate.baseline import finished_snapshot, load_baseline, resolve_variant, save_baseline
    from harness.gate.evaluate import evaluate
    from harness.spec.gate import rules_from_text

    d, rid = swept
    save_baseline(d / "r.duckdb", rid, variant="base", output=d / "base.json")
    with Store(d / "r.duckdb", read_only=True) as s:
        vid, _ = resolve_variant(s, rid, "lora-r2-e1")
        cand, row = finished_snapshot(s, rid, vid), s.run_row(rid)
    result = evaluate(load_baseline(d / "base.json"), cand, rules_from_text(row["spec"], "spec.yaml"), where="spec.yaml")
    check = next(c for c in result.checks if c.target == "lm-eval-general.general_mc/acc")
    assert check.rule == "max_drop" and check.allowance == "drop <= 0.03 (default)"  # the declaration's default rule
    n = check.numbers
    assert n["paired"] is True and n["n"] == LIMIT and "McNemar" in n["how"] and n["mde"] > 0
    assert check.mde == f"{n['mde']:.3f}" and f"detects drops >= {n['mde']:.3f} with 80% power" in check.message
    assert not any(c.target.endswith("general_mc/acc_norm") for c in result.checks)  # no default rule on acc_norm


# -- parity with the built-in general scorer on the embedded model -------------------------------------------------
PARITY_LIMIT = 32


@pytest.mark.slow
def test_parity_with_the_general_scorer_on_smollm2(tmp_path: Path) -> None:
    from harness.models.local import LocalModel
    from harness.models.resolve import load_model, load_tokenizer, resolve_model

    ref = resolve_model("smollm2-135m-instruct")
    model = LocalModel(load_model(ref), load_tokenizer(ref), name=ref.name, batch_size=16)
    lm = _score(_suite(tmp_path, {"limit": PARITY_LIMIT}), model)
    docs = sorted(int(s.example_id.split(":")[1]) for s in lm.samples)
    assert len(docs) == PARITY_LIMIT
    # the built-in general scorer on exactly the documents lm-eval scored
    items = [json.loads(x) for x in (REPO / "suites" / "general" / "items.jsonl").read_text().splitlines()]
    g = tmp_path / "general"
    g.mkdir()
    shutil.copy(REPO / "suites" / "general" / "suite.yaml", g / "suite.yaml")
    write_jsonl(g / "items.jsonl", [items[i] for i in docs])
    general = _score(load_suite(g, {"text": None}), model)
    by_doc = {int(s.example_id.split(":")[1]): s for s in lm.samples}
    for i, s in zip(docs, general.samples, strict=True):
        e = by_doc[i]
        assert s.example_id == items[i]["id"]
        assert (e.detail["pred"], e.detail["pred_norm"]) == (s.detail["pred"], s.detail["pred_norm"]), items[i]["id"]
        assert e.scores["general_mc/acc"] == s.scores["acc"] and e.scores["general_mc/acc_norm"] == s.scores["acc_norm"]
        assert e.detail["loglikelihoods"] == pytest.approx(s.detail["loglikelihoods"], abs=1e-3)
    for m in ("acc", "acc_norm"):
        assert lm.score(f"general_mc/{m}").value == pytest.approx(general.score(m).value), m
