#!/usr/bin/env python3
"""F6 acceptance 6 on the CUDA machine: MHA2MLA-VLM conversion of a random-weight model with the real
llama3-llava-next-8b config (all 32 layers; MKL + MD-SVD on 512 synthetic calibration samples), timed;
then decode with the latent cache (d_kv = 128) vs the dense GQA cache at an 8k-token context: tokens/s
and KV bytes, both from `mla-bench generate --json`. Writes $OUT/mha2mla_gpu.json and .md.

    python3 tools/cuda/mha2mla_gpu_check.py --mla-bench BUILD/mla-bench --out $OUT [--samples 512]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import vlm_gpu_check as vgc  # noqa: E402  (model dir + random checkpoint helpers)

NAME = "llama3-llava-next-8b-hf"


def run(cmd, log, timeout):
    print("[mha2mla_gpu] run:", " ".join(map(str, cmd)), flush=True)
    t = time.time()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    dt = time.time() - t
    log.write(f"$ {' '.join(map(str, cmd))}\n{p.stdout}\n{p.stderr}\nrc={p.returncode} {dt:.1f}s\n")
    log.flush()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[1]} failed rc={p.returncode}: {p.stderr[-2000:]}")
    return p.stdout, dt


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mla-bench", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/mlab_f6", type=Path)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--mkl-samples", type=int, default=32)
    ap.add_argument("--context", type=int, default=8192)
    ap.add_argument("--new-tokens", type=int, default=64)
    # llama3.tokenizer.json.gz: tools/stage_deps.sh writes it into .deps/tokenizers (carried with .deps)
    ap.add_argument("--tokenizers", default=vgc.default_tokenizers_dir())
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    result = {"model": NAME, "samples": a.samples, "mkl_samples": a.mkl_samples}
    log = open(a.out / "mha2mla_gpu.log", "w")
    try:
        # 1. random-weight checkpoint with the real config (transformers writes it)
        d = a.work / NAME
        args = argparse.Namespace(layers=None, vision_layers=None, shrink=False, tokenizers=Path(a.tokenizers))
        vgc.make_model_dir(args, NAME, d, result)
        build_json = a.work / "build.json"
        run([sys.executable, REPO / "tools/cuda/vlm_gpu_check.py", "_build", "--dir", d, "--device", "cuda",
             "--dtype", "bfloat16", "--result", build_json], log, 900)
        vgc.write_json(d / "generation_config.json", dict(vgc.BENCH_MODELS[NAME]["generation"]))
        result["build"] = json.loads(build_json.read_text())
        # 2. calibration data
        calib = a.work / "calib"
        run([sys.executable, REPO / "tools/make_calib_dataset.py", "--out", calib, "--samples", a.samples], log, 600)
        # 3. conversion, timed end to end (load + MKL + calibration + MD-SVD + save)
        out_dir = a.work / f"{NAME}-mla128"
        report = a.work / "convert_report.json"
        stdout, dt = run([a.mla_bench, "convert", "--model", d, "--out", out_dir, "--rope", "mkl", "--rope-dims", 32,
                          "--d-kv", 128, "--svd", "md", "--calib", calib, "--calib-limit", a.samples,
                          "--mkl-samples", a.mkl_samples, "--device", "cuda", "--dtype", "bfloat16",
                          "--report", report], log, 3000)
        rep = json.loads(report.read_text())
        result["convert"] = {"wall_seconds": dt, "score_seconds": rep["score_seconds"],
                             "calibration_seconds": rep["calibration_seconds"], "svd_seconds": rep["svd_seconds"],
                             "image_tokens": rep["image_tokens"], "text_tokens": rep["text_tokens"],
                             "theorem_2_1_holds": rep["theorem_2_1_holds"], "stdout_tail": stdout[-3000:]}
        print(stdout[-3000:], flush=True)
        # 4. decode at an 8k context: dense GQA vs latent (absorbed, and reconstructed K/V)
        words = "The quick brown fox jumps over the lazy dog while the cat watches from the window. "
        prompt = words * max(1, a.context // 18)
        runs = {}
        for label, model, extra in [("dense GQA (original)", d, []),
                                    ("MLA latent, absorbed decode", out_dir, ["--mla-decode", "absorbed"]),
                                    ("MLA latent, K/V reconstruction", out_dir, ["--mla-decode", "reconstruct"])]:
            try:
                out, _ = run([a.mla_bench, "generate", "--model", model, "--prompt", prompt, "--device", "cuda",
                              "--dtype", "bfloat16", "--max-new-tokens", a.new_tokens, "--no-eos", "--warmup", 1,
                              "--json"] + extra, log, 900)
                runs[label] = json.loads(out.strip().splitlines()[-1])
            except Exception as e:  # record and go on
                runs[label] = {"error": str(e)}
        result["decode"] = runs
    except Exception as e:
        result["error"] = str(e)
    (a.out / "mha2mla_gpu.json").write_text(json.dumps(result, indent=1, default=str))
    lines = [f"# F6 on the CUDA machine: {NAME} (random weights, real config)", ""]
    if "convert" in result:
        c = result["convert"]
        lines += [f"conversion (MKL on {a.mkl_samples} + MD-SVD on {a.samples} calibration samples, d_kv 128, r 32): "
                  f"{c['wall_seconds']:.1f} s wall (scores {c['score_seconds']:.1f} s, calibration "
                  f"{c['calibration_seconds']:.1f} s, SVD {c['svd_seconds']:.1f} s; {c['image_tokens']} image + "
                  f"{c['text_tokens']} text tokens); Theorem 2.1 in every layer: {c['theorem_2_1_holds']}", ""]
    if "decode" in result:
        lines += ["| cache | prompt tokens | decode tok/s | prefill s | KV bytes | peak GiB |", "|---|---|---|---|---|---|"]
        for label, r in result["decode"].items():
            if "error" in r:
                lines.append(f"| {label} | error: {r['error'][:200]} | | | | |")
                continue
            peak = r.get("peak_memory_bytes") or 0
            lines.append(f"| {label} | {r['prompt_length']} | {r['decode_tokens_per_second']:.1f} | "
                         f"{r['prefill_seconds']:.3f} | {r['kv_bytes']:,} | {peak / 2**30:.2f} |")
    if "error" in result:
        lines += ["", f"ERROR: {result['error']}"]
    (a.out / "mha2mla_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
