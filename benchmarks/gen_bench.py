"""Generation speed, side by side in one process: batched vs one at a time, and a few-shot prompt variant vs base.

Both through the harness's own scoring model (`harness.models.local.LocalModel`) on the held-out prompts of the
default experiment, greedy:

1. one at a time (`LocalModel(batch_size=1).generate([prompt])` per prompt: nothing shared, nothing batched) against
   one batched call (`batch_size=auto`: length-sorted batches, the shared prefix's KV cache computed once); the
   outputs must be identical. Goal: >= 8x per CPU second.
2. a prompt variant with 3 shots (`method: prompt`: the default experiment's system prompt and 3 training examples
   drawn with seed 0) against base, seconds per request, both batched. Goal: <= 1.3x.

CPU seconds are this process's (`time.process_time`); on a shared machine run single-threaded (`--threads 1`, the
default), since OpenMP workers spin while other processes hold the cores and bill that as CPU time. On a GPU the
figures are wall seconds and generated tokens/s (`--threads 0`), at batch 1 and at the auto batch size.

    python benchmarks/gen_bench.py                       # SmolLM2, 32 prompts x 48 new tokens (minutes)
    python benchmarks/gen_bench.py --prompts 8 --new-tokens 16 --model tiny-random-llama   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "experiments" / "acme-support" / "data"
GOAL_BATCHED = 8.0  # batched / one at a time, per CPU second, at least
GOAL_SHOTS = 1.3  # 3-shot prompt variant / base, seconds per request, at most


def log(figure: str, value: object, unit: str = "") -> None:
    """One line per figure: easy to read, easy to grep."""
    print(f"{figure}: {value}{' ' + unit if unit else ''}", flush=True)


def chats(name: str) -> list[list[dict[str, str]]]:
    return [json.loads(line)["messages"] for line in (DATA / name).read_text().splitlines() if line.strip()]


def timed(device: str, work: Callable[[], list[str]]) -> tuple[list[str], float, float]:
    """(outputs, wall seconds, CPU seconds of this process) of one call."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    out = work()
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--prompts", type=int, default=32, help="held-out prompts (the default experiment has 48)")
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--batch", default="auto", help="the batched run's batch size (auto: 32 on the CPU, 64 on CUDA)")
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--dtype", default="auto", help="train.dtype: auto | fp32 | bf16 | fp16")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    p.add_argument("--skip-shots", action="store_true", help="only batched vs one at a time")
    args = p.parse_args(argv)
    from transformers.utils import logging as hf_logging

    from harness.data.chat import Example
    from harness.data.prompting import few_shot_examples, shot_turns
    from harness.models.device import detect_placement
    from harness.models.local import LocalModel
    from harness.models.prompted import PromptedModel
    from harness.models.protocol import Usage
    from harness.models.resolve import load_model, load_tokenizer, resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    placement = detect_placement(args.dtype)
    ref = resolve_model(args.model)
    model, tok = load_model(ref, placement=placement), load_tokenizer(ref)
    attn = getattr(model.config, "_attn_implementation", None)
    log("placement", f"{placement.device} {placement.dtype} attn {attn}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads")
    convs = [m[:-1] for m in chats("test.jsonl")[: args.prompts]]
    new = args.new_tokens
    batched = LocalModel(model, tok, name="batched", batch_size=args.batch)
    batched.generate(convs[:2], 4)  # warm-up: first-call allocations and kernel selection
    batched.usage = Usage()
    alone = LocalModel(model, tok, name="alone", batch_size=1)
    ref_out, wall1, cpu1 = timed(placement.device, lambda: [alone.generate([c], new)[0] for c in convs])
    out, wall, cpu = timed(placement.device, lambda: batched.generate(convs, new))
    n_out = alone.usage.output_tokens
    same = sum(a == b for a, b in zip(ref_out, out, strict=True))
    log("generation", f"{len(convs)} held-out prompts x up to {new} new tokens, greedy, {n_out} tokens generated")
    log("one at a time", f"{cpu1:.2f} CPU s, {wall1:.2f} wall s, {n_out / wall1:.1f} generated tokens/s (batch 1)")
    log(f"batched (batch {batched.batch_size})", f"{cpu:.2f} CPU s, {wall:.2f} wall s, "
        f"{batched.usage.output_tokens / wall:.1f} generated tokens/s (batch {batched.batch_size})")
    log("batched identical outputs", f"{same}/{len(convs)}")
    speedup, speedup_wall = cpu1 / cpu, wall1 / wall
    log("batched speed-up per CPU second", f"{speedup:.2f}x (wall {speedup_wall:.2f}x); goal >= {GOAL_BATCHED:g}x: "
        f"{speedup / GOAL_BATCHED:.2f} of the goal, {'met' if speedup >= GOAL_BATCHED else 'NOT met'}")
    figures = {"speedup_cpu": speedup, "speedup_wall": speedup_wall, "identical": same / len(convs),
               "tokens_per_second_batch1": n_out / wall1, "tokens_per_second_batched": batched.usage.output_tokens / wall}
    if args.skip_shots:
        return figures
    train = [Example(m, "train.jsonl", i + 1) for i, m in enumerate(chats("train.jsonl"))]
    shots = shot_turns(few_shot_examples(train, args.shots, 0))
    system = (DATA.parent / "system_prompt.txt").read_text().strip()
    prompted_inner = LocalModel(model, tok, name="prompted", batch_size=args.batch)
    prompted = PromptedModel(prompted_inner, system=system, turns=shots)
    _, shot_wall, shot_cpu = timed(placement.device, lambda: prompted.generate(convs, new))
    base_req, shot_req = cpu / len(convs), shot_cpu / len(convs)
    base_tok = cpu / max(1, batched.usage.output_tokens)
    shot_tok = shot_cpu / max(1, prompted_inner.usage.output_tokens)
    per = prompted_inner.usage.per_request()
    log(f"{args.shots}-shot prompt variant", f"{per.prompt_tokens_per_request:.0f} prompt tokens and "
        f"{per.output_tokens_per_request:.1f} generated tokens per request (base: "
        f"{batched.usage.per_request().prompt_tokens_per_request:.0f} and "
        f"{batched.usage.per_request().output_tokens_per_request:.1f})")
    log(f"{args.shots}-shot seconds per request", f"{shot_req:.3f} CPU s vs base {base_req:.3f} CPU s")
    ratio = shot_req / base_req
    log(f"{args.shots}-shot / base per request", f"{ratio:.2f}x (wall {shot_wall / wall:.2f}x; per generated token "
        f"{shot_tok / base_tok:.2f}x); goal <= {GOAL_SHOTS:g}x: {'met' if ratio <= GOAL_SHOTS else 'NOT met'}")
    figures.update({"shots_ratio": ratio, "shots_ratio_per_token": shot_tok / base_tok})
    return figures


if __name__ == "__main__":
    main()
