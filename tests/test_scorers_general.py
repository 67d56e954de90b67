"""general scorer: multiple choice as lm-evaluation-harness scores it (acc, acc_norm), perplexity, one batched call."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, flat_fn, write_jsonl
from fakes import ScriptedModel

from harness.data.suites import load_suite
from harness.errors import HarnessInputError
from harness.scorers import ScoreContext, make_scorer
from harness.scorers.general import Item, contexts
from harness.spec.plan import Variant

ITEMS = [
    {"id": "g1", "category": "knowledge", "context": "Capital of France?", "choices": [" Paris", " Rome"], "gold": 0},
    # acc picks the short choice by summed log-likelihood; acc_norm (per character) picks the long one
    {"id": "g2", "category": "reading", "context": "Pick one:", "choices": [" a", " bbbbbbbbb"], "gold": 1},
    {"id": "g3", "category": "knowledge", "context": "2+2=", "choices": [" 3", " 4", " 5"], "gold": " 4"},
]
LOGLIKS = {("Capital of France?", " Paris"): -1.0, ("Capital of France?", " Rome"): -4.0,
           ("Pick one:", " a"): -2.0, ("Pick one:", " bbbbbbbbb"): -3.0,
           ("2+2=", " 3"): -1.0, ("2+2=", " 4"): -2.0, ("2+2=", " 5"): -3.0}
TEXTS = [{"id": "t1", "text": "one two three four"}, {"id": "t2", "text": "five six"}]


def make_suite(tmp_path: Path, items: list[dict], text: bool = True) -> Path:
    d = tmp_path / "gen"
    d.mkdir(exist_ok=True)
    (d / "suite.yaml").write_text(yaml.safe_dump({"name": "gen", "version": 1, "kind": "general",
                                                  "items": "items.jsonl",
                                                  "options": {"text": "text.jsonl" if text else None}}))
    write_jsonl(d / "items.jsonl", items)
    write_jsonl(d / "text.jsonl", TEXTS)
    return d


def run(suite_dir: Path, model: object, **options: object):
    suite = load_suite(suite_dir, options)
    fn, record = make_scorer(suite.kind, suite.options)
    return flat_fn(fn, ScoreContext(model=model, suite=suite, variant=Variant("v", "v", "lora"), test=[], train_log=[])), record


def test_acc_and_acc_norm_as_lm_eval(tmp_path: Path) -> None:
    model = ScriptedModel(logliks=lambda c, x: LOGLIKS[(c, x)])
    out, record = run(make_suite(tmp_path, ITEMS), model)
    assert model.loglik_calls == [7]  # every (context, choice) pair in one call
    ex = {e["example_id"]: e["detail"] for e in out.examples}
    assert (ex["g1"]["acc"], ex["g1"]["acc_norm"]) == (1.0, 1.0)
    assert (ex["g2"]["pred"], ex["g2"]["pred_norm"]) == (0, 1)  # -2/2 = -1 < -3/10 = -0.3
    assert (ex["g3"]["gold"], ex["g3"]["acc"]) == (1, 0.0)  # gold given as the choice's text
    m = {r["metric"]: r for r in out.scores}
    assert m["acc"]["value"] == pytest.approx(1 / 3) and m["acc_norm"]["value"] == pytest.approx(2 / 3)
    assert m["acc:knowledge"]["value"] == 0.5 and m["acc:knowledge"]["n"] == 2
    assert record["args"]["target_delimiter"] == ""


def test_perplexity_is_per_token_per_word_and_bits_per_byte(tmp_path: Path) -> None:
    out, _ = run(make_suite(tmp_path, ITEMS), ScriptedModel(logliks=lambda c, x: LOGLIKS[(c, x)]))
    m = {r["metric"]: r for r in out.scores}
    # ScriptedModel: log p(text) = -2 per whitespace word, one token per word
    assert m["perplexity"]["value"] == pytest.approx(math.e ** 2) and m["perplexity"]["n"] == 2
    assert m["word_perplexity"]["value"] == pytest.approx(math.e ** 2)
    n_bytes = sum(len(t["text"].encode()) for t in TEXTS)
    assert m["bits_per_byte"]["value"] == pytest.approx(2 * 6 / n_bytes / math.log(2))
    out, _ = run(make_suite(tmp_path, ITEMS, text=False), ScriptedModel(logliks=lambda c, x: LOGLIKS[(c, x)]))
    assert "perplexity" not in {r["metric"] for r in out.scores}


def test_fewshot_contexts_hold_other_items_answered() -> None:
    items = [Item(it["id"], it["context"], it["choices"], 1 if it["id"] == "g3" else it["gold"]) for it in ITEMS]
    ctxs = contexts(items, 1, description="D: ", target_delimiter="", fewshot_delimiter="\n\n", seed=1)
    assert all(c.startswith("D: ") for c in ctxs)
    assert ctxs[0].endswith("\n\nCapital of France?") and "Capital of France?" not in ctxs[0][:-20]
    assert contexts(items, 1, description="", target_delimiter="", fewshot_delimiter="\n\n", seed=1) == \
        [c[3:] for c in ctxs]  # seeded: the same shots every time


def test_models_without_loglikelihoods_answer_by_letter(tmp_path: Path) -> None:
    model = ScriptedModel(lambda prompt: "A" if "France" in prompt else "B")
    model.supports_loglikelihood = False
    out, _ = run(make_suite(tmp_path, ITEMS), model)
    m = {r["metric"]: r for r in out.scores}
    assert m["acc"]["value"] == pytest.approx(3 / 3)  # g1 -> A (Paris), g2 -> B, g3 -> B (" 4")
    assert "acc_norm" not in m and "perplexity" not in m
    assert m["acc"]["scorer_args"]["multiple_choice"] == "generation"


def test_bad_items_are_listed(tmp_path: Path) -> None:
    bad = [dict(ITEMS[0], gold=5), dict(ITEMS[1], choices=[" only"]), {"id": "x", "choices": [" a", " b"], "gold": 0}]
    with pytest.raises(HarnessInputError) as exc:
        run(make_suite(tmp_path, bad), ScriptedModel())
    text = str(exc.value)
    assert "items.jsonl:1: 'gold' must be the index (0..1)" in text
    assert "items.jsonl:2: 'choices' must list at least two" in text and "items.jsonl:3: 'context'" in text


def _hand_loglik(model, tok, context: str, continuation: str) -> float:
    """lm-evaluation-harness's method, one request at a time with plain torch: trailing spaces of the context move
    to the continuation; context+continuation is encoded once and split where the context's encoding ends."""
    import torch

    n = len(context) - len(context.rstrip())
    if n:
        context, continuation = context[:-n], context[-n:] + continuation
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    ctx_len = len(tok(context, add_special_tokens=False)["input_ids"])
    cont = whole[ctx_len:]
    with torch.no_grad():
        logits = model(torch.tensor([whole[:-1]])).logits[0]
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(logprobs[ctx_len - 1 + i, t] for i, t in enumerate(cont)))


def test_acc_equals_a_hand_computation_on_tiny_random_llama(tmp_path: Path) -> None:
    from harness.models.local import LocalModel
    from harness.models.resolve import TINY, build_tiny, load_tokenizer, resolve_model

    items = [json.loads(line) for line in (REPO / "suites" / "general" / "items.jsonl").read_text().splitlines()]
    items = items[::7]  # 32 items across every category
    model, tok = build_tiny(seed=3), load_tokenizer(resolve_model(TINY))
    out, _ = run(make_suite(tmp_path, items, text=False), LocalModel(model, tok, name=TINY, batch_size=8))
    ours = {e["example_id"]: e["detail"] for e in out.examples}
    acc, acc_norm = [], []
    for it in items:
        lls = np.array([_hand_loglik(model, tok, it["context"], c) for c in it["choices"]])
        np.testing.assert_allclose(ours[it["id"]]["loglikelihoods"], lls, rtol=0, atol=2e-4)
        acc.append(float(np.argmax(lls) == it["gold"]))
        acc_norm.append(float(np.argmax(lls / np.array([len(c) for c in it["choices"]])) == it["gold"]))
    m = {r["metric"]: r["value"] for r in out.scores}
    assert m["acc"] == pytest.approx(np.mean(acc)) and m["acc_norm"] == pytest.approx(np.mean(acc_norm))
    assert [ours[it["id"]]["acc"] for it in items] == acc


def test_shared_forward_passes_give_the_unshared_numbers() -> None:
    """Choices that share a context (prefix rows, logits_to_keep) score as each request run alone, also for a model
    whose forward takes no `logits_to_keep`."""
    import torch

    from harness.models.local import LocalModel, _prefix_hosts
    from harness.models.resolve import TINY, build_tiny, load_tokenizer, resolve_model

    assert _prefix_hosts([(1, 2), (1, 2, 3), (1,), (2,), (1, 2, 3, 4)]) == {
        (1,): (1, 2, 3, 4), (1, 2): (1, 2, 3, 4), (1, 2, 3): (1, 2, 3, 4), (1, 2, 3, 4): (1, 2, 3, 4), (2,): (2,)}

    class NoKeep(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask=None, position_ids=None):  # type: ignore[no-untyped-def]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    model, tok = build_tiny(seed=5), load_tokenizer(resolve_model(TINY))
    reqs = [("Question: 2+2?\nAnswer:", c) for c in (" 4", " 5", " four", " 44 apples")]
    reqs += [("The sky is", " blue"), ("", "Hello world"), ("The sky is ", "green")]
    shared = LocalModel(model, tok, name=TINY, batch_size=3).loglikelihood(reqs)
    alone = [LocalModel(model, tok, name=TINY, batch_size=1).loglikelihood([r])[0] for r in reqs]
    plain = LocalModel(NoKeep(model), tok, name=TINY, batch_size=2)
    assert plain.loglikelihood(reqs) and plain._keeps_logits is False
    for (a, ga), (b, gb), (c, _) in zip(shared, alone, plain.loglikelihood(reqs), strict=True):
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-4) and ga == gb


def test_plain_text_requests_on_untouched_weights_are_scored_once_per_process() -> None:
    """base and a prompt variant load the same untouched weights: the prompt variant's plain-text requests (the
    general suite) give base's results without a second forward pass; other weights are scored themselves."""
    from harness.models.local import LocalModel
    from harness.models.resolve import TINY, build_tiny, load_tokenizer, resolve_model

    model, tok = build_tiny(seed=5), load_tokenizer(resolve_model(TINY))
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    reqs = [("The sky is", " blue"), ("Two plus two is", " four")]
    first = LocalModel(model, tok, name="base", batch_size=2, weights="tiny@abc|fp32|sdpa").loglikelihood(reqs)
    n = len(calls)
    assert n > 0
    again = LocalModel(model, tok, name="prompt-1shot", batch_size=2, weights="tiny@abc|fp32|sdpa")
    assert again.loglikelihood(reqs) == first and len(calls) == n  # no forward pass
    assert again.loglikelihood_rolling(["The sky is blue."]) and len(calls) > n  # other requests: computed
    n = len(calls)
    tuned = LocalModel(model, tok, name="lora", batch_size=2)  # no weights key: always computed
    assert tuned.loglikelihood(reqs) == first and len(calls) > n
