#!/usr/bin/env bash
# F5 on the lent CUDA machine: `mla-bench eval` on the GPU. After tools/cuda/device_run.sh (build
# + the suite incl. [gpu] + quickstart on CUDA, whose step 5 converts and evaluates on the GPU):
#   1. the fixture LLaVA on the eight fixture datasets on CPU f32, CUDA f32 and CUDA bf16; the
#      stored predictions of CPU and CUDA f32 are compared sample by sample;
#   2. the [slow] crash/resume and torchrun tests with the ranks on the GPU
#      (MLAB_TEST_EVAL_DEVICE=cuda);
#   3. the walkthrough (convert, eval, report, dashboard, export, regress).
# Usage: OUT=... BUILD_DIR=... tools/cuda/eval_gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"
B=${BUILD_DIR:-build-gpu}
BIN=$B/mla-bench
D=tests/data/datasets
T=ai2d,gqa,pope,seedbench,realworldqa,mmbench_en_dev,chartqa,docvqa_val
DB=$OUT/eval_gpu.sqlite
rm -f "$DB"
for cfg in "cpu float32" "cuda float32" "cuda bfloat16"; do
  set -- $cfg
  "$BIN" eval --model tests/data/tiny_vlms/llava --tasks $T --datasets $D --db "$DB" \
    --run-name "$1-$2" --device "$1" --dtype "$2" --batch-size 4 2>&1 | tee "$OUT/eval-$1-$2.log"
  echo "eval $1 $2 rc=${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
done
python3 - "$DB" <<'PY' 2>&1 | tee -a "$OUT/summary.txt"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
def preds(run):
    return dict(((t, i), p) for t, i, p in db.execute(
        "SELECT task, sample_id, prediction FROM samples JOIN runs ON runs.id = run_id WHERE name = ?", (run,)))
cpu, gpu, bf16 = preds("cpu-float32"), preds("cuda-float32"), preds("cuda-bfloat16")
same = sum(cpu[k] == gpu.get(k) for k in cpu)
print(f"predictions cpu f32 vs cuda f32: {same}/{len(cpu)} identical; cuda bf16 vs f32: "
      f"{sum(gpu[k] == bf16.get(k) for k in gpu)}/{len(gpu)} identical")
for name, in db.execute("SELECT name FROM runs ORDER BY id"):
    rows = dict(db.execute("SELECT metric, avg(value) FROM metrics JOIN runs ON runs.id = run_id "
                           "WHERE name = ? AND metric LIKE 'perf:%' GROUP BY metric", (name,)))
    kv = db.execute("SELECT bytes_per_token_layer_measured, analytic FROM kv_memory JOIN runs ON "
                    "runs.id = run_id WHERE name = ?", (name,)).fetchone()
    print(name, {k: round(v, 1) for k, v in rows.items()}, "kv measured/analytic", kv)
PY
MLAB_TEST_EVAL_DEVICE=cuda "$B/tests/test_harness" "[slow]" 2>&1 | tail -5 | tee "$OUT/eval_slow_cuda.log"
echo "slow eval tests (ranks on cuda) rc=${PIPESTATUS[0]}" | tee -a "$OUT/summary.txt"
MLA_BENCH=$BIN bash tools/examples/results_walkthrough.sh "$OUT/walkthrough" > "$OUT/walkthrough.log" 2>&1
echo "walkthrough rc=$?" | tee -a "$OUT/summary.txt"
