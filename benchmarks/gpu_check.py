"""The GPU check (run through benchmarks/gpu_check.sh): a small sweep end to end on the GPU, checked.

1. A sweep of full, LoRA and QLoRA variants (and base) of the model on the GPU: every variant must finish.
2. The same LoRA variant in fp32 on the GPU and on the CPU (dropout off, so both see the same computation):
   its scores must agree within TOLERANCE.
3. benchmarks/train_bench.py on the GPU: bare loop vs harness (training tokens/s per method).
4. With more than one GPU visible: LoRA and full fine-tuning under `train.distributed` (DDP, then FSDP) on every
   GPU against one GPU: tokens/s per GPU and the scaling ratio (docs/distributed.md); else "skipped: 1 GPU visible".
5. benchmarks/gen_bench.py on the GPU in the scored model's dtype and attention kernel: generated tokens/s at batch 1
   and at the auto batch size, identical outputs counted, and a 3-shot prompt variant against base.
Prints one line per figure: tokens/s, peak memory and wall time per variant and stage.
With --cpu everything runs on the CPU with tiny-random-llama (no QLoRA: 4-bit needs a pretrained folder), in
under a minute, so CI keeps this script working.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "experiments" / "acme-support" / "data"
# How far a LoRA variant's scores may differ between the GPU and the CPU (both fp32, same data order, no dropout).
TOLERANCE = {"loss": ("relative", 0.02), "acc": ("absolute", 0.03), "field_accuracy": ("absolute", 0.15),
             "exact_match": ("absolute", 0.15)}


def log(figure: str, value: object, unit: str = "") -> None:
    print(f"{figure}: {value}{' ' + unit if unit else ''}", flush=True)


def write_spec(folder: Path, *, model: str, methods: list[str], dtype: str, n_train: int, n_test: int,
               new_tokens: int, general: bool, batch_size: int = 8, distributed: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        lines = (DATA / f"{name}.jsonl").read_text().splitlines()[:n]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    suites = [f"  - name: heldout\n    options: {{max_new_tokens: {new_tokens}}}"]
    if general:
        suites.append("  - general")
    if Path(model).is_dir():  # a model folder lives next to the spec (harness.sweep.checks): link its files there
        model = link_folder(Path(model), folder / "model")
    spec = folder / "spec.yaml"
    spec.write_text(f"""name: gpu-check
model: {model}
data: {{train: train.jsonl, validation: 0.2, test: test.jsonl}}
sweep: {{method: [{', '.join(methods)}], rank: [8], epochs: [1], learning_rate: [1.0e-3], seed: [0]}}
train: {{max_seq_length: 160, batch_size: {batch_size}, lora_dropout: 0.0, dtype: {dtype}{distributed}}}
suites:
{chr(10).join(suites)}
""")
    return spec


def link_folder(source: Path, target: Path) -> str:
    """Hard-link (else copy) a model folder's files into target, beside a spec; return the spec's relative path."""
    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and not (target / f.name).exists():
            try:
                os.link(f, target / f.name)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(f, target / f.name)
    return f"./{target.name}"


def sweep(spec: Path, db: Path, *, cpu: bool, in_process: bool = False) -> float:
    """Run one sweep; in a child process that sees no GPU where `cpu` (the GPU run's CPU twin), or in this process
    (the --cpu check: everything is on the CPU already, and each child would pay torch's import again)."""
    t0 = time.perf_counter()
    if in_process:
        from harness.progress import Quiet
        from harness.sweep.runner import run_sweep

        with open(os.devnull, "w") as quiet:
            run_sweep(spec, db, progress=Quiet(), out=quiet)
        return time.perf_counter() - t0
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if cpu else {})}
    proc = subprocess.run([sys.executable, "-m", "harness", "sweep", str(spec), "--db", str(db)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 3):
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"sweep {spec} exited {proc.returncode}")
    return time.perf_counter() - t0


def variants(db: Path) -> list[dict[str, object]]:
    from harness.store.db import Store

    with Store(db, read_only=True) as s:
        rows = s.run_table(s.resolve_run("latest"), "variants")
    return list(rows.to_dict("records"))


def scores(db: Path, method: str) -> dict[str, float]:
    from harness.store.db import Store

    with Store(db, read_only=True) as s:
        df = s.query("SELECT s.suite, s.metric, s.value FROM scores s JOIN variants v USING (variant_id) "
                      "WHERE v.method = ?", [method])
    return {f"{r.suite}.{r.metric}": float(r.value) for r in df.itertuples()}


def report_variants(rows: list[dict[str, object]], label: str) -> list[str]:
    """Print each variant's figures; return the names of variants that did not finish."""
    failed = []
    for v in rows:
        name = f"{label} {v['name']}"
        log(f"{name} status", f"{v['status']} on {v['device']} {v['dtype']}" + (f" ({v['error']})" if v["error"] else ""))
        if v["status"] != "finished":
            failed.append(str(v["name"]))
        for key, unit in (("tokens_per_second", "tokens/s"), ("peak_memory_mb", "MB"), ("train_seconds", "s"),
                          ("score_seconds", "s"), ("real_token_share", "")):
            value = v.get(key)
            if value is not None and not math.isnan(float(str(value))):
                log(f"{name} {key.replace('_', ' ')}", f"{float(str(value)):.2f}", unit)
    return failed


def compare(gpu: dict[str, float], cpu: dict[str, float], label: str = "gpu") -> list[str]:
    """Scores present in both runs, checked against TOLERANCE; returns what is out of tolerance."""
    bad = []
    for key in sorted(set(gpu) & set(cpu)):
        metric = key.split(".", 1)[1]
        rule = next((TOLERANCE[m] for m in TOLERANCE if metric == m or metric.endswith("_" + m)), None)
        if rule is None:
            continue
        kind, tol = rule
        diff = abs(gpu[key] - cpu[key]) / (abs(cpu[key]) or 1.0) if kind == "relative" else abs(gpu[key] - cpu[key])
        ok = diff <= tol
        log(f"compare lora {key}", f"{label} {gpu[key]:.4f} cpu {cpu[key]:.4f} diff {diff:.4f} ({kind} tolerance {tol}) "
            f"{'ok' if ok else 'OUT OF TOLERANCE'}")
        if not ok:
            bad.append(key)
    return bad


def multi_gpu(model: str, out: Path, gpus: int) -> list[str]:
    """DDP and FSDP (train.distributed) on every visible GPU against one GPU, LoRA and full fine-tuning, the same
    per-GPU batch (8): tokens/s per GPU and the scaling ratio; returns what did not finish."""
    if gpus < 2:
        log("multi-gpu", f"skipped: {gpus} GPU{'' if gpus == 1 else 's'} visible (needs 2 or more)")
        return []
    failed: list[str] = []
    per_gpu: dict[tuple[str, str], float] = {}
    for label, n, strategy in (("1-gpu", 1, ""), (f"ddp-x{gpus}", gpus, "ddp"), (f"fsdp-x{gpus}", gpus, "fsdp")):
        dist = f", distributed: {{processes: {n}, strategy: {strategy}}}" if strategy else ""
        spec = write_spec(out / label, model=model, methods=["lora", "full"], dtype="auto", n_train=96, n_test=10,
                          new_tokens=8, general=False, batch_size=8 * n, distributed=dist)
        log(f"stage multi-gpu {label} wall time", f"{sweep(spec, out / f'{label}.duckdb', cpu=False):.1f}", "s")
        rows = variants(out / f"{label}.duckdb")
        failed += [f"{label} {name}" for name in report_variants(rows, f"multi-gpu {label}")]
        for v in rows:
            tps, procs = v.get("tokens_per_second"), v.get("processes") or 1
            if v["method"] != "base" and tps is not None and not math.isnan(float(str(tps))):
                per_gpu[(label, str(v["method"]))] = float(str(tps)) / float(str(procs))
                log(f"multi-gpu {label} {v['method']} tokens per second per gpu", f"{per_gpu[(label, str(v['method']))]:.0f}")
                log(f"multi-gpu {label} {v['method']} ran on", f"{v.get('processes')} processes {v.get('strategy')} "
                    f"{v.get('devices')}")
    for (label, method), value in sorted(per_gpu.items()):
        one = per_gpu.get(("1-gpu", method))
        if label != "1-gpu" and one:
            log(f"multi-gpu {label} {method} scaling vs 1 gpu", f"{value * gpus / one:.2f}x (ideal {gpus}x)")
    return failed


def gen_bench(model: str, *, cpu: bool) -> int:
    """benchmarks/gen_bench.py (all threads): tokens/s at batch 1 and at the auto batch size; its exit status."""
    args = ["--model", model, "--threads", "0"] + (["--prompts", "4", "--new-tokens", "8", "--shots", "1"] if cpu else [])
    if not cpu:
        return subprocess.run([sys.executable, str(REPO / "benchmarks" / "gen_bench.py"), *args], check=False).returncode
    sys.path.insert(0, str(REPO / "benchmarks"))  # in this process: torch is imported already
    import gen_bench as bench

    try:
        bench.main(args)
        return 0
    except Exception as exc:  # noqa: BLE001 - reported as the check's failure
        print(f"gen_bench failed: {exc.__class__.__name__}: {exc}", flush=True)
        return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="CPU and tiny-random-llama, under a minute (for CI)")
    p.add_argument("--model", default=None, help="an embedded name or a local folder (default: SmolLM2)")
    p.add_argument("--out", default=None, help="working folder (default: a temporary one)")
    args = p.parse_args(argv)
    import torch

    if not args.cpu and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU is visible to torch; run with --cpu for the CPU smoke check")
    model = args.model or ("tiny-random-llama" if args.cpu else "smollm2-135m-instruct")
    methods = ["lora", "full"] if model == "tiny-random-llama" else ["lora", "full", "qlora"]
    size = {"n_train": 16, "n_test": 10, "new_tokens": 8, "general": False} if args.cpu else \
        {"n_train": 48, "n_test": 16, "new_tokens": 48, "general": True}
    where = "cpu" if args.cpu else f"gpu ({torch.cuda.get_device_name(0)})"
    log("check", f"{model} on {where}, torch {torch.__version__}")
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    t0 = time.perf_counter()
    spec = write_spec(out / "sweep", model=model, methods=methods, dtype="auto", **size)  # type: ignore[arg-type]
    log("stage sweep wall time", f"{sweep(spec, out / 'sweep.duckdb', cpu=args.cpu, in_process=args.cpu):.1f}", "s")
    failed = report_variants(variants(out / "sweep.duckdb"), "sweep")
    same = write_spec(out / "compare", model=model, methods=["lora"], dtype="fp32", **size)  # type: ignore[arg-type]
    if args.cpu:  # the sweep already ran in fp32 on the CPU: compare its LoRA variant with a second CPU run
        gpu_db = out / "sweep.duckdb"
    else:
        gpu_db = out / "gpu.duckdb"
        log("stage lora fp32 on the gpu wall time", f"{sweep(same, gpu_db, cpu=False):.1f}", "s")
        failed += report_variants(variants(gpu_db), "gpu-fp32")
    log("stage lora fp32 on the cpu wall time", f"{sweep(same, out / 'cpu.duckdb', cpu=True, in_process=args.cpu):.1f}", "s")
    failed += report_variants(variants(out / "cpu.duckdb"), "cpu-fp32")
    bad = compare(scores(gpu_db, "lora"), scores(out / "cpu.duckdb", "lora"), "sweep (cpu)" if args.cpu else "gpu")
    bench = [sys.executable, str(REPO / "benchmarks" / "train_bench.py"), "--model", model]
    bench += ["--methods", "lora", "--steps", "2", "--repeats", "1", "--runs", "bare,harness",
              "--examples", "16", "--validation", "4", "--seq-len", "64"] if args.cpu else \
        ["--methods", ",".join(methods), "--repeats", "1"]
    t1 = time.perf_counter()
    if args.cpu:  # in this process: torch is imported already
        sys.path.insert(0, str(REPO / "benchmarks"))
        import train_bench

        try:
            train_bench.main(bench[2:])
            rc = 0
        except Exception as exc:  # noqa: BLE001 - reported as the check's failure
            print(f"train_bench failed: {exc.__class__.__name__}: {exc}", flush=True)
            rc = 1
    else:
        rc = subprocess.run(bench, check=False).returncode
    log("stage train_bench wall time", f"{time.perf_counter() - t1:.1f}", "s")
    failed += multi_gpu(model, out / "multi-gpu", 0 if args.cpu else torch.cuda.device_count())
    t2 = time.perf_counter()
    rc = max(rc, gen_bench(model, cpu=args.cpu))
    log("stage gen_bench wall time", f"{time.perf_counter() - t2:.1f}", "s")
    log("total wall time", f"{time.perf_counter() - t0:.1f}", "s")
    ok = not failed and not bad and rc == 0
    log("result", "PASS" if ok else f"FAIL (unfinished: {failed or '-'}; out of tolerance: {bad or '-'}; bench rc {rc})")
    (out / "result.json").write_text(json.dumps({"ok": ok, "failed": failed, "out_of_tolerance": bad}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
