"""Local training runs on trl's SFTTrainer, whose completion-only loss masks the prompt under a real chat template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_rows
from transformers import Trainer
from trl import SFTTrainer
from trl.chat_template_utils import has_generation_markers

from harness.models.resolve import resolve_model
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.train.collate import tokenize_chat
from harness.train.local import train_variant


@pytest.mark.parametrize("packing", [False, True])
def test_training_runs_on_trl_sft_trainer_with_labels_masked_on_the_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, packing: bool) -> None:
    seen: list[tuple[type, dict[str, torch.Tensor]]] = []
    # on the CPU the harness's SFTTrainer takes transformers' own loss (harness/train/local.py: _SFTTrainer), so the
    # batch trl prepared is seen where Trainer computes the loss
    compute_loss = Trainer.compute_loss

    def spy(self: Trainer, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if model.training:
            seen.append((type(self), {k: v.clone() for k, v in inputs.items() if isinstance(v, torch.Tensor)}))
        return compute_loss(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(Trainer, "compute_loss", spy)
    rows = [r["messages"] for r in make_rows(4)]
    variant = Variant("v", "lora-r2-e1", "lora", rank=2, epochs=1, learning_rate=1e-3, seed=0)
    out = train_variant(resolve_model("tiny-random-llama"), variant, TrainSpec(max_seq_length=96, batch_size=4,
                        packing=packing), rows, [], tmp_path)
    tok = out.tokenizer
    # a real chat template (SmolLM2's ChatML) without {% generation %} markers: the masking comes from trl's
    # prompt-completion handling, not from assistant masks
    assert "<|im_start|>" in tok.chat_template and not has_generation_markers(tok.chat_template)
    assert len(seen) == 1 and issubclass(seen[0][0], SFTTrainer)
    batch = seen[0][1]
    ids, labels = batch["input_ids"], batch["labels"]
    if packing:  # one row, examples kept apart by position ids that restart at 0
        assert ids.shape[0] == 1 and "attention_mask" not in batch
        starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
        segments = [(ids[0, a:b], labels[0, a:b]) for a, b in zip(starts, starts[1:], strict=False)]
    else:
        keep = batch["attention_mask"].bool()
        segments = [(ids[i][keep[i]], labels[i][keep[i]]) for i in range(ids.shape[0])]
    assert len(segments) == len(rows)
    answers = {r[-1]["content"]: r for r in rows}
    found = []
    for seq, lab in segments:
        kept = tok.decode(seq[lab != -100])
        answer = kept.removesuffix("<|im_end|>\n")
        assert answer in answers, kept  # the loss is on the final assistant message and its end of turn alone
        conv = answers[answer]
        found.append(answer)
        want = tokenize_chat(tok, conv, 96)  # trl's tokens and labels, as the harness mirrors them
        assert seq.tolist() == want["input_ids"]
        prompt = tok.apply_chat_template(conv[:-1], tokenize=True, add_generation_prompt=True, return_dict=True)
        n_prompt = len(prompt["input_ids"])
        assert (lab[:n_prompt] == -100).all()  # every prompt token: system, user, and the assistant header
        assert conv[-2]["content"] in tok.decode(seq[:n_prompt]) and (lab[n_prompt:] != -100).all()
    assert sorted(found) == sorted(answers)
    if packing:
        assert out.record.stats.real_token_share == 1.0
