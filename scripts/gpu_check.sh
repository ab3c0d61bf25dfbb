#!/usr/bin/env bash
# Test and measure topoloc on a CUDA GPU in one go, each step time-boxed, every output kept.
#
#   bash scripts/gpu_check.sh [OUT_DIR]                 on a GPU machine (default OUT_DIR: $OUT or gpu_check)
#   DEVICE=cpu bash scripts/gpu_check.sh /tmp/dry      a dry run of the same steps on the CPU, tiny sizes
#                                                      (the demo then runs at toy size twice), in .venv
#                                                      when there is one (PYTHON=... picks another)
#
# Steps (each with its own time limit; a step that fails or runs out of time does not stop the others):
#   1. install what the machine lacks: from wheels in .whl/ when present (a machine that cannot reach a
#      package index; prepare them elsewhere with scripts/gpu_wheels.sh for the machine's Python, which
#      env.txt records; .whl/ is ignored by git, so a tool that copies the tree must be told to take it),
#      else `pip install -e .`;
#   2. pytest -m "gpu and not slow": every quick GPU test, and none may be skipped;
#   3. the demo at toy size (`topoloc demo --smoke`); if it fails, the check ends here;
#   4. the demo end to end (`topoloc demo`, the GPU preset), report and figures kept;
#   5. benchmarks/bench_augment.py (batch 256, 256 px) against albumentations on one CPU core;
#      benchmarks/bench_train.py: the three data paths side by side, batch-1 latency and throughput;
#      benchmarks/bench_render.py; benchmarks/bench_inference.py: batch-1 latency, torch eager vs
#      onnxruntime (CPU) and CUDA; recipes/verify_demo.py on the demo's folder (render-and-compare
#      verification, planned flight); 6. the slow GPU tests (each augment op torch.compile'd against eager);
#      bench_augment.py again, torch.compile'd.
# SKIP_TESTS=1 leaves out step 2 (a re-run after the tests have passed); SKIP_SMOKE=1 leaves out step 3
# (when the device time allows one try only, the long demo gets its 45 s).
# The whole check, the install included, ends within TOTAL_SECONDS (default 540): each step gets at most its
# own limit and what is left before that deadline, and steps with under 20 s left are skipped.
# Summary: OUT_DIR/steps.txt (step, exit code, seconds); logs: OUT_DIR/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check}}
device=${DEVICE:-cuda}
# the interpreter: PYTHON, else the .venv that scripts/test.sh made (a dry run here), else python3 (a GPU machine)
if [ -n "${PYTHON:-}" ]; then py=$PYTHON; elif [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
mkdir -p "$out" 2>/dev/null || { echo "gpu_check.sh: OUT_DIR '$out' cannot be made as a folder (a file there?)" >&2; exit 2; }
export PYTHONUNBUFFERED=1
# the whole check, the install included, ends by then (a device call that ran past its limit returned nothing)
deadline=$(( $(date +%s) + ${TOTAL_SECONDS:-540} ))

if ! "$py" -c "import kornia, lazy_loader, pyproj, timm, torch" 2>/dev/null; then
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/topoloc-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/topoloc-site${PYTHONPATH:+:$PYTHONPATH}
  else
    "$py" -m pip install -q -e ".[dev,albumentations,export]" || exit 1  # export: onnxruntime
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$py" -c "import sys, torch, topoloc; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> "$out/env.txt" 2>/dev/null || true


step() {  # step NAME SECONDS COMMAND...: runs for at most SECONDS, or what is left before the deadline
  local name=$1 limit=$2 start rc left
  shift 2
  left=$(( deadline - $(date +%s) - 5 ))
  if (( left < 20 )); then
    printf '%-24s skipped (%d s left before the deadline)\n' "$name" "$left" | tee -a "$out/steps.txt"
    return 124
  fi
  (( limit > left )) && limit=$left
  start=$(date +%s)
  echo "== $name (limit ${limit} s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  printf '%-24s rc=%-4s %5d s\n' "$name" "$rc" "$(( $(date +%s) - start ))" | tee -a "$out/steps.txt"
  tail -n 15 "$out/$name.log"
  return $rc
}

if [ "$device" = cuda ]; then
  aug=(--batch 256 --size 256 --iters 10); train=(--steps 15 --original-steps 80); demo=(); render=(--images 1024 --batch-size 64)
  infer=(--iters 100 --threads 1); verify=()
else  # dry run: the same commands at toy sizes
  aug=(--batch 8 --size 64 --iters 2 --albu-seconds 0.2); train=(--steps 2 --size 64 --batch 8 --infer-iters 2 --skip-original)
  demo=(--smoke); render=(--images 8 --size 96x64); infer=(--iters 3 --warmup 1 --cases 0); verify=(--smoke)
fi
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  step pytest_gpu 120 "$py" -m pytest -m "gpu and not slow" -q -rs -p no:cacheprovider tests
  if grep -qs "skipped" "$out/pytest_gpu.log"; then echo "pytest_gpu: some GPU tests were skipped" | tee -a "$out/steps.txt"; fi
fi
# the whole demo at toy size first: a failure there ends the check before the long run
if [ "${SKIP_SMOKE:-0}" = 1 ] || step demo_smoke 120 "$py" -m topoloc.cli demo --smoke --out "$out/demo_smoke" --device "$device"; then
  step demo 470 "$py" -m topoloc.cli demo --out "$out/demo" --device "$device" "${demo[@]}"
  step bench_augment 60 "$py" benchmarks/bench_augment.py --device "$device" "${aug[@]}" --markdown "$out/augment.md"
  step bench_train 90 "$py" benchmarks/bench_train.py --device "$device" "${train[@]}" --json "$out/train.json"
  step bench_render 30 "$py" benchmarks/bench_render.py --device "$device" "${render[@]}"
  step bench_inference 40 "$py" benchmarks/bench_inference.py "${infer[@]}"
  step verify_demo 90 "$py" recipes/verify_demo.py --demo "$out/demo" --device "$device" --json "$out/verify.json" "${verify[@]}"
  step pytest_gpu_slow 150 "$py" -m pytest -m "gpu and slow" --runslow -q -rs -p no:cacheprovider tests
  # last, so it only takes what is left: at dry-run sizes it took 117 s on the 2-core CPU, compiles included
  step bench_augment_compiled 180 "$py" benchmarks/bench_augment.py --device "$device" "${aug[@]}" --compile --skip-albumentations --markdown "$out/augment_compiled.md"
fi
echo "== summary"; cat "$out/steps.txt"
