#!/usr/bin/env bash
# F8 acceptance 3 on the CUDA machine: `mla-bench train --device cuda` under torchrun with one rank
# per GPU (c10d's ProcessGroupNCCL; training/distributed.hpp) against one process without a
# process group taking the same global batch, on the tiny stage-1 LLaVA
# (tests/data/authors/llava/stage1_mkl) and six records over tests/data/images, 10 steps.
# G = the GPUs torch sees; each rank takes one B-row micro-batch per step (B = 2 by default), the
# single process G of them as G accumulation steps (the same rows, the same padding). Also one more single-process run, to show the run-to-run noise of the GPU kernels.
# Prints, for each comparison, the max relative difference of the logged losses and grad norms,
# the max abs difference of the final weights (beside max |w|), and how many of the checkpoint's
# tensors are bitwise equal; then PASS / FAIL against the tolerance (loss 1e-5 relative, weights
# 1e-5 x max |w|). Exit 0 on PASS.
# Usage (after tools/cuda/build.sh, or it builds the mla-bench target itself):
#   tools/cuda/train_ddp_check.sh            env: BUILD_DIR (build-gpu), MLAB_PYTHON (python3),
#                                                 MLAB_DDP_BATCH (2), MLAB_DDP_DTYPE (auto: f32)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${MLAB_PYTHON:-$(command -v python3)}
BUILD=${BUILD_DIR:-build-gpu}
B=${MLAB_DDP_BATCH:-2}
DTYPE=${MLAB_DDP_DTYPE:-auto}
export NCCL_NVLS_ENABLE=0 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
if [ ! -x "$BUILD/mla-bench" ]; then
  NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
  cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DMLAB_CUDA=ON \
    -DMLAB_PYTHON="$PY" -DCMAKE_CUDA_COMPILER="$NVCC" -DMLAB_CUDA_ARCHITECTURES=90 >/dev/null
  cmake --build "$BUILD" --target mla-bench -j"$(nproc)"
fi
G=$("$PY" -c 'import torch; print(torch.cuda.device_count())')
[ "$G" -ge 1 ] || { echo "train_ddp_check: no CUDA device" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/train_ddp.XXXXXX")
mkdir -p "$W/data/img"
cp tests/data/images/{tiny,gray,rgba,tall}.png "$W/data/img/"
"$PY" - "$W/data/data.json" <<'EOF'
import json, sys
imgs = ["tiny.png", "gray.png", "rgba.png", "tall.png"]
qa = [("What is in the picture?", "A small square."), ("Describe the colours.", "Grey, mostly."),
      ("Is it transparent?", "Partly, yes."), ("How tall is it?", "Taller than it is wide."),
      ("Name a shape you see.", "A rectangle."), ("What would you call it?", "A test image, I think.")]
json.dump([{"id": f"s{i}", "image": "img/" + imgs[i % 4],
            "conversations": [{"from": "human", "value": "<image>\n" + q},
                              {"from": "gpt", "value": a}]} for i, (q, a) in enumerate(qa)],
          open(sys.argv[1], "w"), indent=1)
EOF
ARGS=(train --stage 1 --model tests/data/authors/llava/stage1_mkl --data "$W/data/data.json"
      --steps 10 --lr 1e-3 --seed 7 --batch-size "$B" --device cuda --dtype "$DTYPE")
echo "train_ddp_check: $G GPU(s); $G rank(s) x batch $B (NCCL) vs 1 process x batch $B x accum $G; dtype $DTYPE; in $W"
"$BUILD/mla-bench" "${ARGS[@]}" --grad-accum "$G" --out "$W/single" >"$W/single.log" 2>&1 ||
  { cat "$W/single.log"; exit 1; }
"$BUILD/mla-bench" "${ARGS[@]}" --grad-accum "$G" --out "$W/single2" >"$W/single2.log" 2>&1 ||
  { cat "$W/single2.log"; exit 1; }
"$PY" -m torch.distributed.run --no-python --nproc-per-node "$G" --master-port 29533 \
  "$BUILD/mla-bench" "${ARGS[@]}" --grad-accum 1 --out "$W/ddp" >"$W/ddp.log" 2>&1 ||
  { cat "$W/ddp.log"; exit 1; }
grep -m1 "ranks (nccl)" "$W/ddp.log" || { echo "train_ddp_check: no NCCL group in the log" >&2; cat "$W/ddp.log"; exit 1; }
"$PY" - "$W" <<'EOF'
import json, struct, sys
import torch
w = sys.argv[1]
DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64,
      "I64": torch.int64}

def tensors(path):  # safetensors without the safetensors package
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        buf = bytearray(raw[8 + n + a:8 + n + b])
        out[k] = torch.frombuffer(buf, dtype=DT[v["dtype"]]).reshape(v["shape"]).double() if b > a \
            else torch.zeros(v["shape"], dtype=torch.float64)
    return out

def log(run):
    return [json.loads(l) for l in open(f"{w}/{run}/train_log.jsonl")]

def compare(a, b, label):
    la, lb = log(a), log(b)
    assert len(la) == len(lb) == 10, (len(la), len(lb))
    rel = lambda x, y: abs(x - y) / max(abs(y), 1e-30)
    loss = max(rel(x["loss"], y["loss"]) for x, y in zip(la, lb))
    gn = max(rel(x["grad_norm"], y["grad_norm"]) for x, y in zip(la, lb))
    same_tokens = all(x["tokens"] == y["tokens"] and x["supervised"] == y["supervised"]
                      for x, y in zip(la, lb))
    ta, tb = tensors(f"{w}/{a}/checkpoint-10/model.safetensors"), \
        tensors(f"{w}/{b}/checkpoint-10/model.safetensors")
    assert ta.keys() == tb.keys()
    wabs = max((ta[k] - tb[k]).abs().max().item() if ta[k].numel() else 0.0 for k in ta)
    wmax = max(tb[k].abs().max().item() if tb[k].numel() else 0.0 for k in tb)
    bitwise = sum(torch.equal(ta[k], tb[k]) for k in ta)
    ok = same_tokens and loss <= 1e-5 and wabs <= 1e-5 * wmax
    print(f"{label}: loss max rel {loss:.3e}, grad_norm max rel {gn:.3e}, final weights max abs "
          f"{wabs:.3e} (max |w| {wmax:.3g}), {bitwise}/{len(ta)} tensors bitwise, tokens "
          f"{'equal' if same_tokens else 'DIFFER'}: {'PASS' if ok else 'FAIL'}")
    return ok

print("per-step losses, 1 process:", " ".join(f"{x['loss']:.6f}" for x in log("single")))
print("per-step losses, ranks    :", " ".join(f"{x['loss']:.6f}" for x in log("ddp")))
noise = compare("single2", "single", "1 process vs 1 process again (run-to-run)")
ok = compare("ddp", "single", "torchrun NCCL ranks vs 1 process")
sys.exit(0 if ok else 1)
EOF
