#!/usr/bin/env bash
# What one session runs on the lent CUDA machine (H100/H200): build + the whole suite including
# [gpu] (tools/cuda/build.sh), the kernel benchmark beside its peers, and the quickstart on CUDA.
# Logs go to $OUT (the device tool brings them back). Usage: tools/cuda/device_run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
start=$(date +%s)
tools/cuda/build.sh 2>&1 | tee "$OUT/build_and_test.log"
rc=${PIPESTATUS[0]}
echo "build+tests: rc=$rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
grep -E "tests passed|tests failed|Total Test time" "$OUT/build_and_test.log" | tee -a "$OUT/summary.txt"
B=${BUILD_DIR:-build-gpu}
if [ -x "$B/bench/mlab_bench_kernels" ]; then
  "$B/bench/mlab_bench_kernels" --benchmark_filter='cuda' --benchmark_min_time=0.2 \
    --benchmark_out="$OUT/bench_kernels.json" --benchmark_out_format=json 2>&1 | tee "$OUT/bench.log"
fi
"$B/mla-bench" quickstart --device cuda --work-dir /tmp/qs 2>&1 | tee "$OUT/quickstart_cuda.log"
echo "quickstart rc=${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
exit "$rc"
