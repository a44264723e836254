#!/usr/bin/env python3
"""F8 acceptance 6 on the CUDA machine: training tokens/s and peak memory of MHA2MLA-VLM stage-2 steps
on a random-weight model with the real llama3-llava-next-8b config, `mla-bench train` beside the same
steps in PyTorch eager Python (transformers' LlavaNextForConditionalGeneration with the stage-2 MLA
attention of the authors' llavanext/patching_llama_stage2.py) in the same run.

What runs:
  model   transformers writes a random bf16 checkpoint of configs/models/llama3-llava-next-8b-hf.json
          (tools/cuda/vlm_gpu_check.py _build; --layers N keeps the first N decoder layers); `mla-bench
          convert --stage 2 --rope high --rope-dims 32 --d-kv 128 --svd weight` makes the stage-2 dir
          (weight SVD: the initialisation does not change the cost of a step).
  data    --records LLaVA records, each one --image-size² PNG (anyres: 672² gives 5 tiles) and a
          question/answer of --words words each; every step is one record (batch 1, accumulation 1,
          no padding), so both sides see the same sequence lengths.
  ours    `mla-bench train --stage 2 ... --device cuda --dtype bfloat16`: forward and backward in bf16,
          f32 master weights, f32 AdamW, clipping at 1.0; the stage-2 trainable set (peft v2 + projector +
          image_newline). Step times from train_log.jsonl's elapsed_s, peak from its cuda_peak_bytes.
  peer    a fresh Python process: the same base checkpoint loaded by transformers in bf16 with sdpa, every
          LlamaAttention replaced by the authors' stage-2 forward (rewritten here, not imported: their
          module patches transformers 4.51's LlamaModel, which this machine's transformers 5 lacks):
          boolean-mask split of image/text rows, kv_proj_img / kv_proj_text (down_kv, then up_k / up_v),
          scatter into zero buffers, q split into RoPE / NoPE parts, concatenated keys, SDPA with
          repeat_kv, o_proj; weights from the stage-2 dir. Trainable: the same names; frozen: the rest.
          torch.optim.AdamW (foreach) on the bf16 parameters, clip_grad_norm_(1.0): what the authors'
          HF Trainer does with a bf16-loaded model (no f32 masters: ours does more work per update).
  timing  the median of the steps after --warmup steps, torch.cuda.synchronize() around each peer step;
          tokens/s = sequence tokens / step time. Peak: torch.cuda.max_memory_allocated (peer) and the
          caching allocator's peak (ours), each process measuring itself.

Writes $OUT/train_bench.json and .md (also printed).

    python3 tools/cuda/train_bench.py --mla-bench build-gpu/mla-bench --out $OUT [--layers 32]
    # CPU smoke test (tiny widths, 1 layer)
    python3 tools/cuda/train_bench.py --mla-bench build/mla-bench --out /tmp/tb --device cpu \
        --dtype float32 --layers 1 --shrink --steps 3 --warmup 1 --image-size 336 --words 20 --d-kv 16 --rope-dims 8
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import vlm_gpu_check as vgc  # noqa: E402

NAME = "llama3-llava-next-8b-hf"
WORDS = ("red green blue circle square chart value label axis title river mountain house window door "
         "table chair paper number letter north south east west small large bright dark").split()


def run(cmd, log, timeout):
    print("[train_bench] run:", " ".join(map(str, cmd)), flush=True)
    t = time.time()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    dt = time.time() - t
    log.write(f"$ {' '.join(map(str, cmd))}\n{p.stdout[-20000:]}\n{p.stderr[-20000:]}\nrc={p.returncode} {dt:.1f}s\n")
    log.flush()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed rc={p.returncode}: {p.stderr[-3000:]}")
    return p.stdout, dt


def make_data(d, records, image_size, words, seed):
    import random
    from PIL import Image
    rng = random.Random(seed)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(records):
        img = Image.new("RGB", (image_size, image_size))
        px = img.load()
        for y in range(0, image_size, 8):
            for x in range(0, image_size, 8):
                c = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
                for yy in range(y, min(y + 8, image_size)):
                    for xx in range(x, min(x + 8, image_size)):
                        px[xx, yy] = c
        img.save(d / f"img{i}.png")
        q = " ".join(rng.choice(WORDS) for _ in range(words))
        a = " ".join(rng.choice(WORDS) for _ in range(words))
        out.append({"id": f"r{i}", "image": f"img{i}.png",
                    "conversations": [{"from": "human", "value": "<image>\n" + q + "?"},
                                      {"from": "gpt", "value": a + "."}]})
    vgc.write_json(d / "train.json", out)
    return d / "train.json"


# ---------------------------------------------------------------------------------------------------
# The peer (a subprocess): transformers + the authors' stage-2 attention semantics.

def peer_main(argv):
    ap = argparse.ArgumentParser(prog="train_bench.py _peer")
    ap.add_argument("--base", required=True)
    ap.add_argument("--stage2", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--warmup", type=int, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--result", required=True)
    ap.add_argument("--phase-steps", type=int, default=0)
    a = ap.parse_args(argv)
    import torch
    import torch.nn.functional as F
    import transformers as T
    from PIL import Image
    from safetensors import safe_open

    dev = torch.device(a.device)
    dtype = vgc.torch_dtype(a.dtype)
    res = {"transformers": T.__version__, "torch": torch.__version__}
    model = T.LlavaNextForConditionalGeneration.from_pretrained(a.base, dtype=dtype, attn_implementation="sdpa")
    model.to(dev)
    cfg = model.config.text_config
    H, KV = cfg.num_attention_heads, cfg.num_key_value_heads
    D = getattr(cfg, "head_dim", None) or cfg.hidden_size // H
    st = json.loads((Path(a.stage2) / "config.json").read_text())["mha2mla"]
    r = st["rope_dim_for_mla"]
    stage2 = {}
    for f in sorted(Path(a.stage2).glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            for k in h.keys():
                if ".self_attn." in k:
                    stage2[k] = h.get_tensor(k)

    class KvProj(torch.nn.Module):
        def __init__(self, prefix):
            super().__init__()
            def lin(name):
                w = stage2[f"{prefix}.{name}.weight"]
                m = torch.nn.Linear(w.shape[1], w.shape[0], bias=f"{prefix}.{name}.bias" in stage2,
                                    device=dev, dtype=dtype)
                with torch.no_grad():
                    m.weight.copy_(w)
                    if m.bias is not None:
                        m.bias.copy_(stage2[f"{prefix}.{name}.bias"])
                return m
            self.down_kv, self.up_k, self.up_v = lin("down_kv"), lin("up_k"), lin("up_v")

        def forward(self, x):
            c = self.down_kv(x)
            return self.up_k(c), self.up_v(c)

    class Stage2Attention(torch.nn.Module):
        """The authors' forward_LlamaAttention_stage2_mutlimodal, on transformers 5's call signature."""
        image_mask = None

        def __init__(self, old, i):
            super().__init__()
            p = f"language_model.model.layers.{i}.self_attn"
            if not any(k.startswith(p) for k in stage2):
                p = f"model.language_model.layers.{i}.self_attn"
            def lin(name, like):
                w = stage2[f"{p}.{name}.weight"]
                m = torch.nn.Linear(w.shape[1], w.shape[0], bias=like.bias is not None if like is not None else False,
                                    device=dev, dtype=dtype)
                with torch.no_grad():
                    m.weight.copy_(w)
                return m
            self.layer_idx = i
            self.q_proj, self.o_proj = lin("q_proj", old.q_proj), lin("o_proj", old.o_proj)
            self.k_r_proj = lin("k_r_proj", None)
            self.kv_proj_img, self.kv_proj_text = KvProj(f"{p}.kv_proj_img"), KvProj(f"{p}.kv_proj_text")
            self.scaling = D ** -0.5

        def forward(self, hidden_states, position_embeddings=None, attention_mask=None, **kw):
            B, L, E = hidden_states.shape
            image = Stage2Attention.image_mask.view(-1)
            text = ~image
            flat = hidden_states.view(-1, E)
            q = self.q_proj(hidden_states)
            k_r = self.k_r_proj(hidden_states).view(B, L, KV, -1).transpose(1, 2)
            kc_img, v_img = self.kv_proj_img(flat[image])
            kc_txt, v_txt = self.kv_proj_text(flat[text])
            k_c = torch.zeros(flat.size(0), kc_img.size(-1), device=flat.device, dtype=flat.dtype)
            v = torch.zeros(flat.size(0), v_img.size(-1), device=flat.device, dtype=flat.dtype)
            k_c[image] = kc_img
            k_c[text] = kc_txt
            v[image] = v_img
            v[text] = v_txt
            v = v.view(B, L, KV, -1).transpose(1, 2)
            k_c = k_c.view(B, L, KV, -1).transpose(1, 2)
            q_r = q[..., : H * r].view(B, L, H, -1).transpose(1, 2)
            q_c = q[..., H * r:].view(B, L, H, -1).transpose(1, 2)
            cos, sin = position_embeddings  # [B, L, D]: the kept frequencies, as their index_select
            cos, sin = cos[..., : r // 2].repeat(1, 1, 2).unsqueeze(1), sin[..., : r // 2].repeat(1, 1, 2).unsqueeze(1)
            def rot(x):
                x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
                return torch.cat((-x2, x1), dim=-1)
            q_r = q_r * cos + rot(q_r) * sin
            k_r = k_r * cos + rot(k_r) * sin
            qs = torch.cat([q_r, q_c], dim=-1)
            ks = torch.cat([k_r, k_c], dim=-1)
            ks = ks.repeat_interleave(H // KV, dim=1)  # transformers' repeat_kv
            vs = v.repeat_interleave(H // KV, dim=1)
            o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=self.scaling)
            o = o.transpose(1, 2).reshape(B, L, -1)
            return self.o_proj(o), None

    layers = model.model.language_model.layers
    for i, layer in enumerate(layers):
        layer.self_attn = Stage2Attention(layer.self_attn, i)
    del stage2
    torch.cuda.empty_cache() if dev.type == "cuda" else None
    # The stage-2 trainable set (their peft v2 clause, lm_head frozen, vision tower frozen, projector and
    # image_newline trained): names as in their freeze_non_attn_weights.
    trainable = []
    for n, p in model.named_parameters():
        lm = ".language_model." in f".{n}"
        train = ("multi_modal_projector" in n or "image_newline" in n or
                 (lm and any(s in n for s in ("q_proj", "o_proj", "k_r_proj", "kv_proj", "norm"))))
        if "vision_tower" in n or "lm_head" in n:
            train = False
        p.requires_grad_(train)
        if train:
            trainable.append(p)
    res["trainable_parameters"] = sum(p.numel() for p in trainable)
    res["all_parameters"] = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(trainable, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    proc = T.AutoProcessor.from_pretrained(a.base)
    recs = json.loads(Path(a.data).read_text())
    root = Path(a.data).parent
    batches = []
    for rec in recs:
        # llama3-llava-next's chat format (the model dir carries no chat template)
        text = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\n" +
                rec["conversations"][0]["value"].replace("<image>\n", "") +
                "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" +
                rec["conversations"][1]["value"] + "<|eot_id|>")
        inp = proc(images=[Image.open(root / rec["image"]).convert("RGB")], text=[text], return_tensors="pt")
        inp = {k: v.to(dev) for k, v in inp.items()}
        inp["pixel_values"] = inp["pixel_values"].to(dtype)
        labels = inp["input_ids"].clone()
        labels[labels == model.config.image_token_id] = -100
        inp["labels"] = labels
        batches.append(inp)
    model.train()
    times, tokens, losses = [], [], []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for s in range(a.steps):
        b = batches[s % len(batches)]
        Stage2Attention.image_mask = b["input_ids"] == model.config.image_token_id
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(**b)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        tokens.append(int(b["input_ids"].numel()))
        losses.append(float(out.loss))
        print(f"[peer] step {s}: {times[-1]:.3f} s, {tokens[-1]} tokens, loss {losses[-1]:.4f}", flush=True)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else -1
    # Phases (after the timed steps): the device synchronised between them.
    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    phases = {}
    for s in range(a.phase_steps):
        b = batches[s % len(batches)]
        Stage2Attention.image_mask = b["input_ids"] == model.config.image_token_id
        sync(); t0 = time.perf_counter()
        out = model(**b); sync(); t1 = time.perf_counter()
        out.loss.backward(); sync(); t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0); opt.step(); opt.zero_grad(set_to_none=True); sync()
        t3 = time.perf_counter()
        for k, v in (("forward+loss", t1 - t0), ("backward", t2 - t1), ("clip+adamw", t3 - t2)):
            phases.setdefault(k, []).append(v)
    res.update(step_seconds=times, tokens=tokens, losses=losses, peak_bytes=peak,
               phases={k: statistics.median(v) for k, v in phases.items()})
    vgc.write_json(Path(a.result), res)


def summarise(times, tokens, warmup):
    t = times[warmup:] or times
    k = tokens[warmup:] or tokens
    med = statistics.median(t)
    return {"median_step_seconds": med, "tokens_per_step": statistics.median(k),
            "tokens_per_second": statistics.median(k) / med, "steps_timed": len(t)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_peer":
        return peer_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mla-bench", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/mlab_f8_bench", type=Path)
    ap.add_argument("--layers", type=int, default=None, help="decoder layers kept (default: all 32)")
    ap.add_argument("--shrink", action="store_true", help="smoke tests only: small widths")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--records", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=672)
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--d-kv", type=int, default=128)
    ap.add_argument("--rope-dims", type=int, default=32)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--phase-steps", type=int, default=0,
                    help="also time the phases of N steps (device synchronised between phases; a second run)")
    ap.add_argument("--checkpointing", action="store_true",
                    help="also run ours with --activation-checkpointing (row 'ours_activation_checkpointing')")
    ap.add_argument("--free-base", action="store_true",
                    help="delete the base checkpoint after the peer ran (disk: base + stage 2 + a checkpoint)")
    ap.add_argument("--skip", default="", help="comma list: ours,peer")
    ap.add_argument("--tokenizers", default=vgc.default_tokenizers_dir())
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    log = open(a.out / "train_bench.log", "w")
    result = {"model": NAME, "layers": a.layers or "all", "steps": a.steps, "warmup": a.warmup,
              "gpu": vgc.gpu_info() if a.device == "cuda" else "cpu"}
    try:
        base = a.work / NAME
        args = argparse.Namespace(layers=a.layers, vision_layers=None, shrink=a.shrink, tokenizers=Path(a.tokenizers))
        vgc.make_model_dir(args, NAME, base, result)
        run([sys.executable, Path(__file__).resolve().parent / "vlm_gpu_check.py", "_build", "--dir", base,
             "--device", a.device, "--dtype", a.dtype, "--result", a.work / "build.json"], log, 1200)
        data = make_data(a.work / "data", a.records, a.image_size, a.words, 0)
        s2 = a.work / "stage2"
        _, dt = run([a.mla_bench, "convert", "--model", base, "--out", s2, "--stage", 2, "--rope", "high",
                     "--rope-dims", a.rope_dims, "--d-kv", a.d_kv, "--svd", "weight", "--device", a.device, "--dtype", a.dtype],
                    log, 1200)
        result["convert_seconds"] = dt
        skip = set(a.skip.split(","))
        if "peer" not in skip:
            pj = a.work / "peer.json"
            stdout, dt = run([sys.executable, __file__, "_peer", "--base", base, "--stage2", s2, "--data", data,
                              "--steps", a.steps, "--warmup", a.warmup, "--device", a.device, "--dtype", a.dtype,
                              "--result", pj, "--phase-steps", a.phase_steps], log, 1800)
            p = json.loads(pj.read_text())
            peer = summarise(p["step_seconds"], p["tokens"], a.warmup)
            peer.update({k: p[k] for k in ("step_seconds", "losses", "peak_bytes", "trainable_parameters", "phases",
                                           "all_parameters", "transformers", "torch")})
            peer["wall_seconds"] = dt
            result["peer"] = peer
        if a.free_base:  # ours needs only the stage-2 dir: room on the disk for its checkpoint
            subprocess.run(["rm", "-rf", str(base)])
        if "ours" not in skip:
            out_dir = a.work / "ours"
            subprocess.run(["rm", "-rf", str(out_dir)])
            try:
                stdout, dt = run([a.mla_bench, "train", "--stage", 2, "--model", s2, "--data", data, "--out",
                                  out_dir, "--steps", a.steps, "--lr", "1e-5", "--device", a.device, "--dtype",
                                  a.dtype], log, 1800)
            except RuntimeError as e:  # the steps ran, the final checkpoint did not fit: keep the timings
                if not (out_dir / "train_log.jsonl").exists() or \
                        len((out_dir / "train_log.jsonl").read_text().splitlines()) < a.steps:
                    raise
                result["ours_checkpoint_error"] = str(e)[-500:]
                stdout, dt = "", float("nan")
            rows = [json.loads(x) for x in (out_dir / "train_log.jsonl").read_text().splitlines() if x.strip()]
            el = [r["elapsed_s"] for r in rows]
            times = [el[0]] + [el[i] - el[i - 1] for i in range(1, len(el))]
            ours = summarise(times, [r["tokens"] for r in rows], a.warmup)
            ours.update(step_seconds=times, losses=[r["loss"] for r in rows],
                        peak_bytes=max((r.get("cuda_peak_bytes", -1) for r in rows), default=-1),
                        wall_seconds=dt, stdout_tail=stdout[-1500:])
            if a.phase_steps > 0:  # a second run, the device synchronised between phases
                pdir = a.work / "ours_phases"
                subprocess.run(["rm", "-rf", str(pdir)])
                p = subprocess.run([str(c) for c in [a.mla_bench, "train", "--stage", 2, "--model", s2, "--data", data,
                                    "--out", pdir, "--steps", a.phase_steps + 1, "--lr", "1e-5", "--device",
                                    a.device, "--dtype", a.dtype]], capture_output=True, text=True,
                                   env=dict(os.environ, MLAB_TRAIN_PHASES="1"), timeout=1800)
                rows = {}
                for line in p.stderr.splitlines():
                    if line.startswith("[phases]") and not line.startswith("[phases] step 0 "):
                        parts = line.split()[3:]
                        for k, v in zip(parts[0::2], parts[1::2]):
                            rows.setdefault(k, []).append(float(v[:-2]) / 1e3)
                ours["phases"] = {k: statistics.median(v) for k, v in rows.items()}
            result["ours"] = ours
            if a.checkpointing:  # the same steps with --activation-checkpointing
                cdir = a.work / "ours_ckpt"
                subprocess.run(["rm", "-rf", str(cdir)])
                try:
                    run([a.mla_bench, "train", "--stage", 2, "--model", s2, "--data", data, "--out", cdir,
                         "--steps", a.steps, "--lr", "1e-5", "--device", a.device, "--dtype", a.dtype,
                         "--activation-checkpointing"], log, 1800)
                except RuntimeError as e:
                    result["ours_checkpointing_checkpoint_error"] = str(e)[-500:]
                rows = [json.loads(x) for x in (cdir / "train_log.jsonl").read_text().splitlines() if x.strip()]
                el = [r["elapsed_s"] for r in rows]
                times = [el[0]] + [el[i] - el[i - 1] for i in range(1, len(el))]
                ck = summarise(times, [r["tokens"] for r in rows], a.warmup)
                ck.update(step_seconds=times, losses=[r["loss"] for r in rows],
                          peak_bytes=max((r.get("cuda_peak_bytes", -1) for r in rows), default=-1))
                result["ours_activation_checkpointing"] = ck
        if "ours" in result and "peer" in result:
            result["speedup"] = result["ours"]["tokens_per_second"] / result["peer"]["tokens_per_second"]
    except Exception as e:  # recorded, the partial result is still written
        result["error"] = str(e)
    vgc.write_json(a.out / "train_bench.json", result)
    lines = [f"# F8 stage-2 training step: {NAME} (random weights, real config, layers: {result['layers']})", "",
             "| side | tokens/step | median step s | tokens/s | peak GiB |", "|---|---|---|---|---|"]
    for side in ("ours", "ours_activation_checkpointing", "peer"):
        if side in result:
            r = result[side]
            lines.append(f"| {side} | {r['tokens_per_step']:.0f} | {r['median_step_seconds']:.3f} | "
                         f"{r['tokens_per_second']:.0f} | {r['peak_bytes'] / 2**30:.2f} |")
    if "speedup" in result:
        lines += ["", f"ours / peer tokens/s: {result['speedup']:.2f}x"]
    for side in ("ours", "peer"):
        if "phases" in result.get(side, {}):
            lines += ["", f"{side} phases (median s, synchronised): " +
                      ", ".join(f"{k} {v:.4f}" for k, v in result[side]["phases"].items())]
    if "error" in result:
        lines += ["", f"ERROR: {result['error']}"]
    (a.out / "train_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
