#!/usr/bin/env bash
# Call 2 of the one-shot GPU run, on the lent machine (call 1 staged .gpu_carry/photos_a):
# installs the carried wheels, stages the other half of the photographs, runs the budget.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .gpu_carry/wheels/*.whl
export PYTHONPATH="/tmp/site:/tmp/lstm_endec_photos:$PWD" PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX and PyTorch share the GPU
python3 -m benchmarks.gpu.run --stage=.gpu_carry/photos_b
python3 -m benchmarks.gpu.run --output="$OUT" --budget_s="${BUDGET_S:-480}" 2>&1 | tee "$OUT/run.log"
