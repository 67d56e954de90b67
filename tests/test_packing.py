"""Length grouping and padding-free packing: more real tokens per processed token, the same loss, the same labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from harness.train.collate import real_token_share, tokenize_chat

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "experiments" / "acme-support" / "data" / "train.jsonl"


@pytest.fixture(scope="module")
def tok() -> Any:
    from harness.models.resolve import TINY, ModelRef, load_tokenizer

    return load_tokenizer(ModelRef(TINY, "tiny", "", ""))


@pytest.fixture(scope="module")
def examples(tok: Any) -> list[dict[str, list[int]]]:
    rows = [json.loads(line)["messages"] for line in TRAIN.read_text().splitlines() if line.strip()]
    return [tokenize_chat(tok, m, 192) for m in rows]


def _batches(sampler: Any, size: int) -> list[list[int]]:
    order = list(sampler)
    return [order[i:i + size] for i in range(0, len(order), size)]


def test_real_token_share_goes_up_on_the_default_experiment(examples: list[dict[str, list[int]]]) -> None:
    from torch.utils.data import RandomSampler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    lengths = [len(e["input_ids"]) for e in examples]
    gen = torch.Generator().manual_seed(0)
    random = real_token_share(lengths, _batches(RandomSampler(examples, generator=gen), 8), packing=False)
    gen = torch.Generator().manual_seed(0)
    grouped = real_token_share(lengths, _batches(LengthGroupedSampler(8, lengths=lengths, generator=gen), 8),
                               packing=False)
    packed = real_token_share(lengths, _batches(RandomSampler(examples, generator=gen), 8), packing=True)
    print(f"real-token share, batch 8, {len(examples)} examples: random {random:.3f}, grouped {grouped:.3f}, "
          f"packed {packed:.3f}")
    assert random < grouped < packed == 1.0
    assert grouped - random > 0.03


@pytest.mark.parametrize("packing", [False, True])
def test_labels_keep_only_the_final_assistant_message(tok: Any, packing: bool) -> None:
    convs = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?" * (i + 1)},
              {"role": "assistant", "content": f"Answer {i}."}, {"role": "user", "content": "And then?"},
              {"role": "assistant", "content": f"Final {i}, done."}] for i in range(3)]
    feats = [tokenize_chat(tok, c, 256) for c in convs]
    batch = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=packing)(feats)  # trl's, as trained
    labels, ids = batch["labels"], batch["input_ids"]
    if packing:
        assert labels.shape[0] == 1 and "attention_mask" not in batch
        starts = [0] + list(torch.cumsum(torch.tensor([len(f["input_ids"]) for f in feats]), 0)[:-1])
        segments = [(int(s), int(s) + len(f["input_ids"])) for s, f in zip(starts, feats, strict=True)]
        rows = [(labels[0, a:b], ids[0, a:b]) for a, b in segments]
        assert batch["position_ids"][0, segments[1][0]] == 0  # positions restart: attention stays in its example
    else:
        rows = [(labels[i], ids[i]) for i in range(len(feats))]
    for (lab, tokens), conv in zip(rows, convs, strict=True):
        kept = lab[lab != -100]
        assert torch.equal(kept, tokens[lab != -100])  # labels are the input tokens where not masked
        text = tok.decode(kept)
        assert text.startswith(conv[-1]["content"]) and "Answer" not in text and "And then" not in text
        assert text.removeprefix(conv[-1]["content"]).strip() == "<|im_end|>"


def test_packed_loss_equals_padded_loss(tok: Any, examples: list[dict[str, list[int]]]) -> None:
    from harness.models.resolve import build_tiny

    model = build_tiny()
    model.config.use_cache = False  # as in training: packed attention needs no cache
    feats = examples[:8]
    with torch.no_grad():
        padded = model(**DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)(feats)).loss
        packed = model(**DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)(feats)).loss
    assert float(packed) == pytest.approx(float(padded), rel=1e-5)


@pytest.mark.parametrize(("keys", "full_share"), [
    ({}, False), ({"group_by_length": True}, False), ({"packing": True}, True),
    ({"gradient_checkpointing": True, "attn_implementation": "eager", "eval_batch_size": 3}, False)])
def test_training_reports_its_real_token_share(tmp_path: Path, keys: dict[str, Any], full_share: bool) -> None:
    from conftest import make_rows

    from harness.models.resolve import resolve_model
    from harness.spec.plan import Variant
    from harness.spec.schema import TrainSpec
    from harness.train.local import train_variant

    rows = [r["messages"] for r in make_rows(24)]
    rows = [r[:1] + [{**r[1], "content": r[1]["content"] + " please" * (i % 7)}] + r[2:] for i, r in enumerate(rows)]
    train = TrainSpec(max_seq_length=96, batch_size=8, **keys)
    variant = Variant("v", "lora-r2-e1", "lora", rank=2, epochs=1, learning_rate=1e-3, seed=0)
    out = train_variant(resolve_model("tiny-random-llama"), variant, train, rows[:16], rows[16:], tmp_path)
    stats = out.record.stats
    share, placement = stats.real_token_share, stats.placement
    assert share is not None and ((share == 1.0) if full_share else (0.5 < share < 1.0))
    assert placement.device == "cpu" and placement.dtype == "fp32" and stats.memory.packing == keys.get("packing", False)
    assert stats.train_tokens == sum(len(tokenize_chat(out.tokenizer, r, 96)["input_ids"]) for r in rows[:16])
    assert {r.split for r in out.record.log} == {"train", "validation"}
    assert placement.attn_implementation == keys.get("attn_implementation", "sdpa")
    assert stats.memory.gradient_checkpointing == keys.get("gradient_checkpointing", False)
    training = stats.timing
    assert training.validation_passes >= 1 and 0 < training.step_seconds <= (stats.train_seconds or 0)
