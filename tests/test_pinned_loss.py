"""Training numerics pinned to stored values, in torchtune's manner: a tiny seeded LoRA and a tiny full fine-tuning
run through the harness's own entry point (`train_for_scoring`: load, wrap, tokenize, mask, Trainer, log), whose
train losses (every step) and validation losses (before training and at every pass) must match the numbers below.

A change to anything that moves training numerics (the tiny model's init, the chat template or loss mask, the
collator, LoRA's config, TrainingArguments, the schedule, a library upgrade) shows here. When such a change is
intended, regenerate the numbers and say in the commit message why they moved:

    PYTHONPATH=$PWD python tests/test_pinned_loss.py      # prints PINNED for this file

Tolerance: 1e-4 relative. The runs are fp32 on the CPU with fixed seeds, so on one machine they repeat bit for bit
(also with 1 thread instead of 2); a CPU with other vector instructions changes the order of floating-point
reductions, which moved the losses here by at most 2e-7 relative (measured with ATen's scalar kernels,
ATEN_CPU_CAPABILITY=default, against AVX2). A real change to training moves them far more: a learning rate 1%
higher moves the last losses by 5e-4 (LoRA) to 6e-4 (full) relative, LoRA dropout 0.1 instead of 0.05 by 3e-3, a
constant instead of a linear schedule by 3e-2 to 5e-2. 1e-4 sits between the two: 500 times the reduction-order
noise, a fifth of the smallest real change measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_rows

from harness.models.device import choose_placement
from harness.models.resolve import resolve_model
from harness.spec.plan import Variant
from harness.spec.schema import TrainSpec
from harness.train.local import train_for_scoring

TINY = resolve_model("tiny-random-llama")
CPU = choose_placement(cuda=False, bf16_supported=True, mps=False, override="fp32")  # pinned on the CPU, also on a GPU box
TRAIN = [r["messages"] for r in make_rows(24)]  # 6 steps of 4
VAL = [r["messages"] for r in make_rows(8, offset=100)]
RUNS = {  # method -> (rank, learning rate): each learns steadily in 6 steps (a higher rate spikes, then diverges)
    "lora": (4, 5e-3),
    "full": (None, 2e-3),
}
# validation at steps 0, 3 and 6; LoRA on every linear layer (on q_proj and v_proj alone a random model barely moves)
SPEC = TrainSpec(max_seq_length=64, batch_size=4, eval_every_epochs=0.5,
                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

# computed by the code (the helper at the bottom), not written by hand
PINNED: dict[str, dict[str, list[float]]] = {
    "full": {
        "train": [
            10.808977127075195, 10.477481842041016, 10.299263000488281, 10.13762378692627, 10.039774894714355,
            9.929398536682129,
        ],
        "validation": [
            10.81063461303711, 10.147393226623535, 9.9297513961792,
        ],
    },
    "lora": {
        "train": [
            10.808977127075195, 10.649003028869629, 10.562614440917969, 10.522066116333008, 10.496193885803223,
            10.441804885864258,
        ],
        "validation": [
            10.81063461303711, 10.530115127563477, 10.446147918701172,
        ],
    },
}


def losses(method: str, out_root: Path) -> dict[str, list[float]]:
    """One seeded epoch of `method` on the tiny model: train loss per step, validation loss per pass, in step order."""
    rank, lr = RUNS[method]
    variant = Variant(f"pinned-{method}", f"pinned-{method}", method, rank=rank, epochs=1, learning_rate=lr, seed=0)
    out = train_for_scoring(TINY, variant, SPEC, TRAIN, VAL, out_root, placement=CPU)
    return {split: [float(r.loss) for r in sorted(out.log, key=lambda r: r.step) if r.split == split]
            for split in ("train", "validation")}


@pytest.mark.parametrize("method", sorted(RUNS))
def test_training_losses_match_the_pinned_values(method: str, tmp_path: Path) -> None:
    got = losses(method, tmp_path)
    want = PINNED[method]
    assert [len(got["train"]), len(got["validation"])] == [6, 3]
    assert got["train"] == pytest.approx(want["train"], rel=1e-4), f"{method} train losses moved: {got['train']}"
    assert got["validation"] == pytest.approx(want["validation"], rel=1e-4), \
        f"{method} validation losses moved: {got['validation']}"
    assert got["train"][-1] < got["train"][0] and got["validation"][-1] < got["validation"][0]  # it learns


if __name__ == "__main__":  # regenerate PINNED (then explain the change in the commit message)
    import tempfile
    import textwrap

    with tempfile.TemporaryDirectory() as tmp:
        pinned = {m: losses(m, Path(tmp) / m) for m in sorted(RUNS)}
    print("PINNED: dict[str, dict[str, list[float]]] = {")
    for m, splits in pinned.items():
        print(f'    "{m}": {{')
        for split, values in splits.items():
            print(f'        "{split}": [')
            print(textwrap.fill(", ".join(repr(v) for v in values) + ",", 116, initial_indent=" " * 12,
                                subsequent_indent=" " * 12))
            print("        ],")
        print("    },")
    print("}")
