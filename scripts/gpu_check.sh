#!/usr/bin/env bash
# The GPU checks, in under 8 minutes on one H100/H200-class GPU:
#   1. the CUDA-only tests (`pytest -m gpu`: sync-free ordinary training steps, eager and
#      compiled; sdpa == manual attention on CUDA; the compiled bf16 GPT-2 benchmark runs);
#   2. `bench train` at the GPT-2 124M shape (context 1024), bf16, torch.compile: tokens/s,
#      MFU against the GPU's dense bf16 peak, peak memory.
# Usage: scripts/gpu_check.sh [OUT_DIR]    (default runs/gpu_check; the figures go to
# OUT_DIR/bench_train_gpt2.json and OUT_DIR/gpu_check.log). Exit 0 when both parts pass.
# Needs the project's environment on the GPU machine (`uv sync --locked` with a CUDA torch).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/gpu_check}"
if ! uv run python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: scripts/gpu_check.sh needs a CUDA device (torch.cuda.is_available() is False)" >&2
    exit 2
fi
mkdir -p "$out"
log="$out/gpu_check.log"
: >"$log"
uv run python -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name())" \
    | tee -a "$log"
start=$SECONDS

echo "== GPU tests: pytest -m gpu ==" | tee -a "$log"
timeout 240 env OMP_NUM_THREADS=1 uv run pytest -m gpu -q -rs -p no:cacheprovider 2>&1 | tee -a "$log"
tests=${PIPESTATUS[0]}

echo "== bench train --device cuda --shape gpt2 --precision bf16 --compile ==" | tee -a "$log"
timeout 200 uv run bench train --device cuda --shape gpt2 --precision bf16 --compile \
    --rounds 2 --steps 20 --json "$out/bench_train_gpt2.json" 2>&1 | tee -a "$log"
bench=${PIPESTATUS[0]}

echo "== summary ($((SECONDS - start)) s) ==" | tee -a "$log"
echo "tests: exit $tests; bench: exit $bench (124: over its time limit)" | tee -a "$log"
if [ "$bench" -eq 0 ]; then
    uv run python - "$out/bench_train_gpt2.json" <<'PY' | tee -a "$log"
import json, sys
r = json.load(open(sys.argv[1]))
ours = r["ours"]
mfu = f"{ours['mfu'] * 100:.1f}%" if ours["mfu"] is not None else "unknown (pass --peak-tflops)"
print(f"GPT-2 124M bf16 compiled: {ours['tokens_per_sec']:,.0f} tokens/s, MFU {mfu} of "
      f"{r['peak_tflops']:.0f} TFLOP/s ({r['peak_source']}), peak memory "
      f"{r['peak_memory_mb'] / 1024:.1f} GiB")
PY
fi
echo "wrote $log and $out/bench_train_gpt2.json"
[ "$tests" -eq 0 ] && [ "$bench" -eq 0 ]
