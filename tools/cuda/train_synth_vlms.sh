#!/usr/bin/env bash
# F9 on the CUDA machine (H200, no network): trains the two shipped synth VLMs from scratch
# (docs/synth_models.md). One command:
#   1. build mla-bench (Release, sm_90; REBUILD=0 reuses a warm build; unpacks .deps/device.tar.xz
#      when .deps/include is missing);
#   2. `mla-bench synth` the suite: eval sets (EVAL_N per task) and TRAIN_N training records per task
#      (SYNTH_DIR=dir: use that suite instead);
#   3. tools/models/make_synth_vlms.py: the two random-init models, tokenizers trained on the suite;
#   4. a 30-step calibration of both runs side by side, then `mla-bench train --stage 0 --device cuda
#      --dtype bfloat16` of both concurrently on the one GPU with as many steps as fit in
#      TRAIN_BUDGET_S (each; at most MAX_STEPS), cosine schedule with warmup; progress every 30 s;
#   5. `mla-bench eval` of each on every synth task (full cache), the score per task beside chance;
#   6. tools/models/check_synth_vlms.py (transformers vs mla-bench, same tokens), when the Python
#      has transformers;
#   7. the final HF dirs (bf16 safetensors + config / tokenizer / processor files only) copied to
#      $OUT/models/<name>, with sizes.
# Across several device calls (one call may run 600 s): DEADLINE_S=n stops the trainers n seconds
# after the script started (each keeps its last --save-every checkpoint) and exits 3; the next call
# with RESUME=1 (same WORK, REBUILD=0) skips steps 1-4's setup and continues both runs with
# --resume to the step count fixed by the first call's calibration ($WORK/steps.txt).
# SMOKE=1: the same on the CPU of this machine with the existing build/ (20 steps, tiny suite,
# float32), to prove the script end to end before spending device time.
# Usage: OUT=dir tools/cuda/train_synth_vlms.sh        env below; logs in $OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/train_synth_vlms_out}; mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SMOKE=${SMOKE:-0}
SEED=${SEED:-1}
T0=$(date +%s)
say() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" | tee -a "$OUT/progress.log"; }
if [ "$SMOKE" = 1 ]; then
  BUILD=${BUILD_DIR:-build}; DEVICE=cpu; DTYPE=float32
  TRAIN_N=${TRAIN_N:-8}; EVAL_N=${EVAL_N:-4}; BATCH=${BATCH:-4}; MAX_STEPS=${MAX_STEPS:-20}
  CALIB_STEPS=0; TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-600}; EVAL_BATCH=${EVAL_BATCH:-4}
  WORK=${WORK:-$OUT/work}
  PY=${MLAB_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3)}
else
  BUILD=${BUILD_DIR:-build-gpu}; DEVICE=cuda; DTYPE=bfloat16
  TRAIN_N=${TRAIN_N:-6000}; EVAL_N=${EVAL_N:-100}; BATCH=${BATCH:-32}; MAX_STEPS=${MAX_STEPS:-6000}
  CALIB_STEPS=${CALIB_STEPS:-30}; TRAIN_BUDGET_S=${TRAIN_BUDGET_S:-420}; EVAL_BATCH=${EVAL_BATCH:-32}
  WORK=${WORK:-$PWD/$BUILD/synth_work}  # under the build dir: a warm device keeps it between calls
  PY=${MLAB_PYTHON:-$(command -v python3)}
fi
RESUME=${RESUME:-0}; DEADLINE_S=${DEADLINE_S:-0}
LR=${LR:-1e-3}; WD=${WD:-0.1}; WARMUP=${WARMUP:-0.05}; MIN_LR=${MIN_LR:-0.1}
read -r -a NAMES <<<"${MODELS:-mlab-llava-synth mlab-qwen-synth}"  # MODELS: a subset
mkdir -p "$WORK"
# PACK_OUT=1 (device calls: at most 8 files come back, 16 MiB each): at exit, $OUT keeps
# progress.log and scores.txt; every other log goes into logs.tar.gz and each model dir into
# model_<name>.tar (tar -xf it in assets/models).
pack_out() {
  local code=$?
  cd "$OUT" || return
  for d in models/*/; do [ -d "$d" ] && tar -cf "model_$(basename "$d").tar" -C models "$(basename "$d")"; done
  rm -rf models
  local logs; logs=$(ls | grep -v -E '^(progress\.log|scores\.txt|model_.*\.tar|logs\.tar\.gz)$' || true)
  [ -n "$logs" ] && tar -czf logs.tar.gz $logs && rm -rf $logs
  exit "$code"
}
[ "${PACK_OUT:-0}" = 1 ] && trap pack_out EXIT
say "train_synth_vlms: SMOKE=$SMOKE device $DEVICE $DTYPE; work $WORK; out $OUT"

# 1. build
MB=$BUILD/mla-bench
if [ "$SMOKE" = 1 ]; then
  [ -x "$MB" ] || { echo "SMOKE=1 needs $MB (cmake --build build --target mla-bench)" >&2; exit 2; }
elif [ ! -x "$MB" ] || [ "${REBUILD:-1}" = 1 ]; then
  if [ ! -d .deps/include ] && [ -f .deps/device.tar.xz ]; then tar -xJf .deps/device.tar.xz; fi
  export TORCH_CUDA_ARCH_LIST=9.0 NCCL_NVLS_ENABLE=0
  NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  say "building $MB"
  cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DMLAB_CUDA=ON -DMLAB_PYTHON="$PY" \
    -DCMAKE_CUDA_COMPILER="$NVCC" -DMLAB_CUDA_ARCHITECTURES=90 >"$OUT/cmake.log" 2>&1 || { tail -40 "$OUT/cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" --target mla-bench >"$OUT/build.log" 2>&1 || { grep -B2 -A8 "error" "$OUT/build.log" | head -80; exit 1; }
fi
say "mla-bench: $MB"

# 2. the suite
SYNTH=${SYNTH_DIR:-$WORK/synth}
if [ "$RESUME" = 1 ]; then
  [ -f "$WORK/steps.txt" ] || { echo "RESUME=1: no $WORK/steps.txt (a first call did not get that far)" >&2; exit 2; }
  SYNTH=$(cat "$WORK/synth_dir.txt")
elif [ -z "${SYNTH_DIR:-}" ]; then
  say "synth: --n $EVAL_N --train-n $TRAIN_N --seed $SEED"
  "$MB" synth --out "$SYNTH" --seed "$SEED" --n "$EVAL_N" --train-n "$TRAIN_N" 2>&1 | tee "$OUT/synth.log" | tail -12
fi
DATA=$SYNTH/train/train.jsonl
[ -f "$DATA" ] || { echo "no $DATA" >&2; exit 1; }
TASKS=$(cd "$SYNTH" && for d in */samples.jsonl; do dirname "$d"; done | paste -sd, -)
say "suite $SYNTH: $(wc -l <"$DATA") training records; tasks $TASKS"

# 3. the random-init models
[ "$RESUME" = 1 ] || "$PY" tools/models/make_synth_vlms.py --corpus "$SYNTH" --out "$WORK/init" 2>&1 | grep -v "Writing model" | tee "$OUT/make_models.log"

# 4. training, both at once on the one device
train() {  # name out steps [extra args]: one `mla-bench train --stage 0`
  local name=$1 out=$2 steps=$3; shift 3
  if [ "${RESUME:-0}" = 1 ] && [ -d "$out" ]; then set -- "$@" --resume; else rm -rf "$out"; fi
  "$MB" train --stage 0 --model "$WORK/init/$name" --data "$DATA" --out "$out" --steps "$steps" \
    --batch-size "$BATCH" --lr "$LR" --lr-schedule cosine --warmup-ratio "$WARMUP" \
    --min-lr-ratio "$MIN_LR" --weight-decay "$WD" --seed "$SEED" --device "$DEVICE" \
    --prompt-format chat \
    --dtype "$DTYPE" "$@"
}
last_step() { tail -n 1 "$1/train_log.jsonl" 2>/dev/null || true; }
STEPS=$MAX_STEPS
if [ "$RESUME" = 1 ]; then
  STEPS=$(cat "$WORK/steps.txt")
elif [ "$CALIB_STEPS" -gt 0 ]; then
  say "calibration: $CALIB_STEPS steps of each, side by side"
  for n in "${NAMES[@]}"; do train "$n" "$WORK/calib/$n" "$CALIB_STEPS" >"$OUT/calib_$n.log" 2>&1 & done
  wait
  STEPS=$("$PY" - "$WORK/calib" "$CALIB_STEPS" "$TRAIN_BUDGET_S" "$MAX_STEPS" "${NAMES[@]}" <<'EOF'
import json, sys
calib, n, budget, cap, names = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
worst = 0.0
for name in names:
    log = [json.loads(l) for l in open(f"{calib}/{name}/train_log.jsonl")]
    # seconds per step after the first 5 (start-up), the slower of the two runs
    per = (log[-1]["elapsed_s"] - log[4]["elapsed_s"]) / (len(log) - 5)
    worst = max(worst, per)
print(max(50, min(cap, int(0.9 * budget / worst))))
EOF
)
  say "calibration: $(grep -h 'tokens/s' "$OUT"/calib_*.log | tail -n 2 | tr '\n' ' ')"
fi
# STEPS_FOR="name=steps ...": a model's own step count instead (the LLaVA one runs ~1.6x the
# steps per second of the Qwen one on the H200: measured, docs/synth_models.md)
steps_of() { local kv; for kv in ${STEPS_FOR:-}; do [ "${kv%%=*}" = "$1" ] && { echo "${kv#*=}"; return; }; done; echo "$STEPS"; }
echo "$STEPS" >"$WORK/steps.txt"; echo "$SYNTH" >"$WORK/synth_dir.txt"
[ "$RESUME" = 1 ] && [ -f "$WORK/steps_for.txt" ] && STEPS_FOR=$(cat "$WORK/steps_for.txt")
echo "${STEPS_FOR:-}" >"$WORK/steps_for.txt"
say "training for $(for n in "${NAMES[@]}"; do printf '%s %s steps, ' "$n" "$(steps_of "$n")"; done)$BATCH records each (budget ${TRAIN_BUDGET_S}s)"
pkill -TERM -f -- "--out $WORK/train/" 2>/dev/null || true   # none should be left from a call before
SAVE_EVERY=${SAVE_EVERY:-$(( STEPS / 20 > 50 ? STEPS / 20 : 50 ))}
last_ck() { (cd "$1" 2>/dev/null && ls -d checkpoint-* 2>/dev/null | sed 's/^checkpoint-//' | sort -n | tail -n 1); }
pids=(); pnames=()
alive() { local p; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
for n in "${NAMES[@]}"; do
  nsteps=$(steps_of "$n")
  if [ "$(last_ck "$WORK/train/$n")" = "$nsteps" ]; then say "$n: trained ($nsteps steps)"; continue; fi
  timeout "$(( TRAIN_BUDGET_S * 2 ))" bash -c "$(declare -f train); RESUME='$RESUME' MB='$MB' WORK='$WORK' DATA='$DATA' BATCH='$BATCH' LR='$LR' WARMUP='$WARMUP' MIN_LR='$MIN_LR' WD='$WD' SEED='$SEED' DEVICE='$DEVICE' DTYPE='$DTYPE' train '$n' '$WORK/train/$n' '$nsteps' --save-every $SAVE_EVERY" \
    >>"$OUT/train_$n.log" 2>&1 &
  pids+=($!); pnames+=("$n")
done
stopped=0
while [ "${#pids[@]}" -gt 0 ] && alive; do
  sleep "${PROGRESS_S:-30}"
  if [ "$DEADLINE_S" -gt 0 ] && [ $(( $(date +%s) - T0 )) -ge "$DEADLINE_S" ]; then
    say "deadline ${DEADLINE_S}s: stopping the trainers (RESUME=1 REBUILD=0 continues from their checkpoints)"
    # the trainer's children (bash -c -> mla-bench) go too; a checkpoint is written atomically
    pkill -TERM -f -- "--out $WORK/train/" 2>/dev/null || true
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    stopped=1; break
  fi
  for n in "${NAMES[@]}"; do
    line=$(grep -h "^step " "$OUT/train_$n.log" | tail -n 1 || true)
    [ -n "$line" ] && say "$n: $line"
  done
done
rc=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { rc=$?; say "${pnames[$i]}: train exited $rc (see $OUT/train_${pnames[$i]}.log)"; }; done
for n in "${NAMES[@]}"; do
  say "$n: $(grep -h "^step " "$OUT/train_$n.log" | tail -n 1)"
  cp "$WORK/train/$n/train_log.jsonl" "$OUT/train_log_$n.jsonl" 2>/dev/null || true
done
if [ "$stopped" = 1 ]; then
  for n in "${NAMES[@]}"; do
    say "$n: checkpoints $(last_ck "$WORK/train/$n") of $(steps_of "$n")"
  done
  # EVAL_ON_STOP=1 (a last call): evaluate and ship the latest checkpoints as they are
  [ "${EVAL_ON_STOP:-0}" = 1 ] || exit 3
  say "EVAL_ON_STOP=1: evaluating the latest checkpoints"; rc=0
fi

# 5. evaluation (full cache) vs chance
for n in "${NAMES[@]}"; do
  last=$(cd "$WORK/train/$n" 2>/dev/null && ls -d checkpoint-* 2>/dev/null | sed 's/^checkpoint-//' | sort -n | tail -n 1)
  [ -n "$last" ] || { say "$n: no checkpoint"; rc=1; continue; }
  ck=$WORK/train/$n/checkpoint-$last
  ln -sfn "$ck" "$WORK/final_$n"
  say "eval $n ($ck) on $TASKS"
  rm -f "$WORK/eval_$n.sqlite"
  "$MB" eval --model "$ck" --tasks "$TASKS" --datasets "$SYNTH" --db "$WORK/eval_$n.sqlite" \
    --device "$DEVICE" --dtype "$DTYPE" --batch-size "$EVAL_BATCH" --run-name "$n" >"$OUT/eval_$n.log" 2>&1 || { say "$n: eval failed"; rc=1; }
  "$PY" - "$OUT/eval_$n.log" "$SYNTH/synth.json" "$n" <<'EOF' | tee -a "$OUT/scores.txt"
import json, re, sys
log, manifest, name = sys.argv[1:4]
try:
    tasks = json.load(open(manifest)).get("tasks", {})
except OSError:
    tasks = {}
print(f"{name}:  {'task':<22} {'score':>7} {'chance':>7}  {'x chance':>8}")
for line in open(log):
    m = re.match(r"^(\S+): \d+ new, .*?(\{.*\})\s*$", line)
    if not m:
        continue
    metrics = json.loads(m.group(2))
    key, score = next(iter(metrics.items()))
    chance = tasks.get(m.group(1), {}).get("chance")
    ratio = f"{score / chance:8.2f}" if chance else "       -"
    print(f"{name}:  {m.group(1):<22} {score:7.3f} {chance if chance is not None else float('nan'):7.3f}  {ratio}  ({key})")
EOF
done

# 6. transformers vs mla-bench on the trained models
if "$PY" -c "import transformers" 2>/dev/null; then
  finals=(); for n in "${NAMES[@]}"; do [ -e "$WORK/final_$n" ] && finals+=("$WORK/final_$n/"); done
  "$PY" tools/models/check_synth_vlms.py --binary "$MB" --synth "$SYNTH" "${finals[@]}" 2>&1 | grep -E "^(ok|FAIL|sample)" | tee "$OUT/check.log" || { say "check_synth_vlms failed"; rc=1; }
fi

# 7. the model dirs to ship
for n in "${NAMES[@]}"; do
  [ -e "$WORK/final_$n" ] || continue
  dst=$OUT/models/$n; rm -rf "$dst"; mkdir -p "$dst"
  for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json \
           chat_template.jinja preprocessor_config.json processor_config.json; do
    [ -f "$WORK/final_$n/$f" ] && cp "$WORK/final_$n/$f" "$dst/"
  done
  cp "$WORK/train/$n/train_log.jsonl" "$OUT/train_log_$n.jsonl"
done
[ -d "$OUT/models" ] && say "models: $(du -sb "$OUT"/models/* | awk '{printf "%s %d bytes; ", $2, $1}')total $(du -sb "$OUT/models" | cut -f1) bytes"
say "done (rc $rc) in $(( $(date +%s) - T0 )) s"
exit "$rc"
