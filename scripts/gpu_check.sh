#!/usr/bin/env bash
# Test and measure topoloc on a CUDA GPU in one go, each step time-boxed, every output kept.
#
#   bash scripts/gpu_check.sh [OUT_DIR]                 on a GPU machine (default OUT_DIR: $OUT or gpu_check)
#   DEVICE=cpu bash scripts/gpu_check.sh /tmp/dry      a dry run of the same steps on the CPU, tiny sizes
#
# Steps (each with its own time limit; a step that fails or runs out of time does not stop the others):
#   1. install what the machine lacks: from wheels in .whl/ when present (a machine that cannot reach a
#      package index; prepare them elsewhere with scripts/gpu_wheels.sh), else `pip install -e .`;
#   2. pytest -m gpu: every GPU test, and none may be skipped;
#   3. benchmarks/bench_augment.py eager and torch.compile'd (batch 256, 256 px) against albumentations
#      on one CPU core;
#   4. benchmarks/bench_render.py;
#   5. benchmarks/bench_train.py: the three data paths side by side, batch-1 latency and throughput;
#      benchmarks/bench_inference.py: batch-1 latency, torch eager vs onnxruntime (CPU) and CUDA;
#   6. the demo end to end (`topoloc demo`, the GPU preset), report and figures kept.
# Summary: OUT_DIR/steps.txt (step, exit code, seconds); logs: OUT_DIR/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check}}
device=${DEVICE:-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if ! "$py" -c "import kornia, pyproj, timm, torch" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/topoloc-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/topoloc-site${PYTHONPATH:+:$PYTHONPATH}
  else
    "$py" -m pip install -q -e ".[dev,albumentations]" || exit 1
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$py" -c "import torch, topoloc; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$out/env.txt" 2>/dev/null || true

step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name (limit ${limit} s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  printf '%-24s rc=%-4s %5d s\n' "$name" "$rc" "$(( $(date +%s) - start ))" | tee -a "$out/steps.txt"
  tail -n 15 "$out/$name.log"
}

if [ "$device" = cuda ]; then
  aug=(--batch 256 --size 256 --iters 10); train=(--steps 30); demo=()
  step pytest_gpu 120 "$py" -m pytest -m gpu -q -rs -p no:cacheprovider tests
  if grep -q "skipped" "$out/pytest_gpu.log"; then echo "pytest_gpu: some GPU tests were skipped" | tee -a "$out/steps.txt"; fi
else  # dry run: the same commands at toy sizes
  aug=(--batch 8 --size 64 --iters 2 --albu-seconds 0.2); train=(--steps 2 --size 64 --batch 8 --infer-iters 2 --skip-original); demo=(--smoke)
  step pytest_gpu 120 "$py" -m pytest -m gpu -q -rs -p no:cacheprovider tests
fi
step bench_augment 100 "$py" benchmarks/bench_augment.py --device "$device" "${aug[@]}" --markdown "$out/augment.md"
step bench_augment_compiled 100 "$py" benchmarks/bench_augment.py --device "$device" "${aug[@]}" --compile --skip-albumentations --markdown "$out/augment_compiled.md"
step bench_render 45 "$py" benchmarks/bench_render.py --device "$device" $([ "$device" = cuda ] || echo "--images 8 --size 96x64")
step bench_train 100 "$py" benchmarks/bench_train.py --device "$device" "${train[@]}" --json "$out/train.json"
step bench_inference 60 "$py" benchmarks/bench_inference.py $([ "$device" = cuda ] && echo "--iters 100 --threads 1" || echo "--iters 3 --warmup 1 --cases 0")
step demo 300 "$py" -m topoloc.cli demo --out "$out/demo" --device "$device" "${demo[@]}"
echo "== summary"; cat "$out/steps.txt"
