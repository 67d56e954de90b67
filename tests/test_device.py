"""The device/dtype policy over every case, and LocalModel feeding a model on a non-default device."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from harness.errors import HarnessInputError
from harness.models.device import Placement, choose_placement, describe
from harness.models.local import LocalModel

# (cuda, bf16 supported, mps, train.dtype) -> (device, dtype) or the error's key phrase.
ERR_BF16, ERR_FP16 = "does not support bf16", "needs a GPU"


def expected(cuda: bool, bf16: bool, mps: bool, override: str) -> tuple[str, str] | str:
    device = "cuda" if cuda else "mps" if mps else "cpu"
    if override == "auto":
        return (device, ("bf16" if bf16 else "fp16") if cuda else "fp32")
    if override == "bf16" and device != "cpu" and not bf16:
        return ERR_BF16
    if override == "fp16" and device == "cpu":
        return ERR_FP16
    return (device, override)


CASES = list(itertools.product([True, False], [True, False], [True, False], ["auto", "fp32", "bf16", "fp16"]))


def test_policy_table_is_complete() -> None:
    assert len(CASES) == 32


@pytest.mark.parametrize(("cuda", "bf16", "mps", "override"), CASES)
def test_policy(cuda: bool, bf16: bool, mps: bool, override: str) -> None:
    want = expected(cuda, bf16, mps, override)
    if isinstance(want, str):
        with pytest.raises(HarnessInputError, match=want):
            choose_placement(cuda, bf16, mps, override)
        return
    p = choose_placement(cuda, bf16, mps, override)
    assert (p.device, p.dtype) == want
    assert (p.bf16, p.fp16) == (p.dtype == "bf16", p.dtype == "fp16")
    assert p.training_args() == {"use_cpu": p.device == "cpu", "bf16": p.bf16, "fp16": p.fp16}
    assert p.torch_device == ("cuda:0" if p.device == "cuda" else p.device)


def test_policy_spot_checks() -> None:
    assert choose_placement(True, True, False) == Placement("cuda", "bf16", bf16=True, fp16=False)  # A100, 4090
    assert choose_placement(True, False, False) == Placement("cuda", "fp16", bf16=False, fp16=True)  # T4, V100
    assert choose_placement(False, True, False) == Placement("cpu", "fp32", bf16=False, fp16=False)
    with pytest.raises(HarnessInputError, match="one of"):
        choose_placement(False, False, False, "fp8")


def test_weights_dtype() -> None:
    p = choose_placement(True, True, False)
    assert p.weights_dtype("full") == torch.float32  # fp32 master weights; autocast computes in bf16
    assert p.weights_dtype("lora") == torch.bfloat16
    assert choose_placement(False, True, False).weights_dtype("lora") == torch.float32


class DeviceRecordingLM:
    """A scripted causal LM that lives on `device` and records the device of every tensor it receives.

    Logits depend only on the last input token (the next token is scored as input + 1); on the meta device,
    which holds no data, they are zeros. Outputs come back on the CPU: what is checked is what it receives.
    Above `oom_above` rows it raises CUDA's out-of-memory error.
    """

    def __init__(self, vocab: int, device: str = "meta", oom_above: int | None = None):
        self.device = torch.device(device)
        self.vocab = vocab
        self.oom_above = oom_above
        self.seen: list[tuple[str, str]] = []
        self.rows: list[int] = []

    def eval(self) -> DeviceRecordingLM:
        return self

    def _receive(self, call: str, **tensors: Any) -> int:
        for v in tensors.values():
            if isinstance(v, torch.Tensor):
                self.seen.append((call, v.device.type))
        rows = int(tensors["input_ids"].shape[0])
        if self.oom_above is not None and rows > self.oom_above:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory: {rows} rows")
        self.rows.append(rows)
        return rows

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None, logits_to_keep: int = 0, **kw: Any) -> Any:
        self._receive("forward", input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        ids = input_ids[:, -logits_to_keep:] if logits_to_keep else input_ids
        if ids.device.type == "meta":
            return SimpleNamespace(logits=torch.zeros(*ids.shape, self.vocab))
        return SimpleNamespace(logits=5.0 * F.one_hot((ids + 1) % self.vocab, self.vocab).float())

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, **kw: Any) -> Any:
        rows = self._receive("generate", input_ids=input_ids, attention_mask=attention_mask)
        return torch.cat([torch.zeros(rows, input_ids.shape[1], dtype=torch.long),
                          torch.full((rows, 3), 64, dtype=torch.long)], dim=1)


@pytest.fixture(scope="module")
def tok() -> Any:
    from harness.models.resolve import TINY, ModelRef, load_tokenizer

    return load_tokenizer(ModelRef(TINY, "tiny", "", ""))


CONVS = [[{"role": "user", "content": f"question {i} " * (i % 4 + 1)}, {"role": "assistant", "content": f"answer {i}"}]
         for i in range(10)]


@pytest.mark.parametrize("method", ["generate", "loglikelihood", "loglikelihood_rolling", "reference_nll"])
def test_every_tensor_goes_to_the_model_device(tok: Any, method: str) -> None:
    fake = DeviceRecordingLM(len(tok), device="meta")
    lm = LocalModel(fake, tok, name="fake", batch_size=4)
    calls = {"generate": lambda: lm.generate([c[:1] for c in CONVS], max_new_tokens=3),
             "loglikelihood": lambda: lm.loglikelihood([(f"context {i}", " yes") for i in range(10)]),
             "loglikelihood_rolling": lambda: lm.loglikelihood_rolling([f"some text {i}" for i in range(10)]),
             "reference_nll": lambda: lm.reference_nll(CONVS)}
    out = calls[method]()
    assert len(out) == 10
    assert fake.seen, "the model was never called"
    assert {d for _, d in fake.seen} == {"meta"}, fake.seen


def test_batch_size_backs_off_on_out_of_memory(tok: Any) -> None:
    reqs = [(f"context number {i}", f" continuation {i % 3}") for i in range(37)]
    texts = [f"a longer text number {i} " * (i % 5 + 1) for i in range(37)]
    want = LocalModel(DeviceRecordingLM(len(tok), device="cpu"), tok, name="ref", batch_size=1)
    fake = DeviceRecordingLM(len(tok), device="cpu", oom_above=5)
    lm = LocalModel(fake, tok, name="fake", batch_size=32)
    assert lm.loglikelihood(reqs) == want.loglikelihood(reqs)
    assert lm.batch_size == 4  # 32 -> 16 -> 8 -> 4: the largest that fits
    assert max(fake.rows) == 4 and sum(fake.rows) >= 37
    assert lm.loglikelihood_rolling(texts) == want.loglikelihood_rolling(texts)
    assert len(lm.generate([c[:1] for c in CONVS], max_new_tokens=3)) == 10
    with pytest.raises(torch.cuda.OutOfMemoryError):  # nothing fits: the error comes through
        LocalModel(DeviceRecordingLM(len(tok), device="cpu", oom_above=0), tok, name="x", batch_size=4).generate(
            [CONVS[0][:1]], 2)


def test_auto_batch_size_follows_the_device(tok: Any) -> None:
    assert LocalModel(DeviceRecordingLM(len(tok), device="cpu"), tok, name="x").batch_size == 32
    assert LocalModel(DeviceRecordingLM(len(tok), device="meta"), tok, name="x", batch_size=7).batch_size == 7


def test_describe_a_loaded_model() -> None:
    model = SimpleNamespace(device=torch.device("cpu"), dtype=torch.bfloat16, config=SimpleNamespace())
    assert describe(model) == {"device": "cpu", "dtype": "bf16"}
    quant = SimpleNamespace(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float16)
    model = SimpleNamespace(device=torch.device("cpu"), dtype=torch.float16, config=SimpleNamespace(
        quantization_config=quant))
    assert describe(model)["dtype"] == "nf4+fp16"


def test_sweep_records_device_and_dtype(tiny_experiment: Any) -> None:

    from harness.progress import Quiet
    from harness.store.db import Store
    from harness.sweep.runner import run_sweep

    text = tiny_experiment.read_text().replace("method: [lora, full]", "method: [lora]").replace("rank: [2, 4]", "rank: [2]")
    tiny_experiment.write_text(text.replace("  batch_size: 8\n", "  batch_size: 8\n  packing: true\n  dtype: fp32\n"))
    db = tiny_experiment.parent / "r.duckdb"
    with open(tiny_experiment.parent / "out.txt", "w") as out:
        rid = run_sweep(tiny_experiment, db, progress=Quiet(), out=out)
    with Store(db, read_only=True) as s:
        v = s.run_table(str(rid), "variants")
    assert set(v["status"]) == {"finished"}, v[["name", "error"]]
    assert list(v["device"]) == ["cpu", "cpu"] and list(v["dtype"]) == ["fp32", "fp32"]
    lora = v[v.method == "lora"].iloc[0]
    placement = lora["config"]["placement"]
    assert placement["packing"] is True and placement["dtype"] == "fp32" and placement["real_token_share"] == 1.0
    assert lora["real_token_share"] == 1.0 and lora["tokens_per_second"] > 0
    assert v.iloc[0]["config"]["placement"]["device"] == "cpu"  # base too
