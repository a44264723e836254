#!/usr/bin/env python3
"""Checks that transformers and our runtime load the synth VLMs (tools/models/make_synth_vlms.py;
the trained ones under assets/models/) and answer alike (docs/synth_models.md).

For each model dir: transformers 5 loads it (AutoModelForImageTextToText, float32, eager
attention) with its processor (AutoProcessor; for Qwen2.5-VL without torchvision the processor
is built as tools/fixtures/make_tiny_vlms.py load_processor builds it: the PIL image processor,
no video processor), renders one synth sample's question with the model's chat template, and
generates greedily. Then `mla-bench generate` runs on the same image and question (float32, CPU).
Checked: the prompt's input ids are the same (mla-bench generate --dump-inputs), and the generated
tokens are the same (up to the end-of-sequence token). Exit 0 when every model passes, 1 otherwise.

The sample: the first sample with an image of the first task dir of --synth DIR (an `mla-bench
synth --out` dir; its doc's "question"), else a 112x112 picture drawn here with the question
"What colour is the circle?".

Usage: .venv/bin/python tools/models/check_synth_vlms.py [--synth DIR] [--binary build/mla-bench]
       [--max-new-tokens 12] MODEL_DIR...
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "fixtures"))

import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import transformers as T  # noqa: E402


def pick_sample(synth, scratch):
    """(image path, question) of the first synth sample with an image, or a drawn one."""
    if synth is not None:
        for samples in sorted(Path(synth).glob("*/samples.jsonl")):
            with open(samples) as f:
                for line in f:
                    rec = json.loads(line)
                    q = rec.get("doc", {}).get("question")
                    if rec.get("images") and isinstance(q, str) and q:
                        return samples.parent / rec["images"][0], q
    path = scratch / "circle.png"
    im = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(im).ellipse([28, 28, 84, 84], fill=(220, 30, 30))
    im.save(path)
    return path, "What colour is the circle?"


def load_processor(d, family):
    try:
        return T.AutoProcessor.from_pretrained(str(d))
    except ImportError:
        if family != "qwen2_5_vl":
            raise
        import make_tiny_vlms
        return make_tiny_vlms.load_processor(family, Path(d))


def check(d, image, question, binary, max_new, scratch):
    cfg = json.loads((d / "config.json").read_text())
    family = cfg["model_type"]
    model = T.AutoModelForImageTextToText.from_pretrained(
        str(d), dtype=torch.float32, attn_implementation="eager").eval()
    proc = load_processor(d, family)
    content = [{"type": "image"}, {"type": "text", "text": question}]
    text = proc.apply_chat_template([{"role": "user", "content": content}],
                                    add_generation_prompt=True, tokenize=False)
    inputs = proc(images=[Image.open(image).convert("RGB")], text=[text], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, do_sample=False, max_new_tokens=max_new)
    theirs = out[0, inputs["input_ids"].shape[1]:].tolist()

    dump = scratch / f"{d.name}.inputs.safetensors"
    cmd = [str(binary), "generate", "--model", str(d), "--image", str(image), "--prompt",
           question, "--max-new-tokens", str(max_new), "--dtype", "float32", "--json",
           "--dump-inputs", str(dump)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {d}: mla-bench generate exited {r.returncode}: {r.stderr.strip()[-500:]}")
        return False
    ours = json.loads(r.stdout.strip().splitlines()[-1])["all_tokens"][0]
    from safetensors.torch import load_file
    our_ids = load_file(str(dump))["input_ids"][0].tolist()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])

    def cut(tokens):
        for i, t in enumerate(tokens):
            if t in eos:
                return tokens[:i]
        return tokens
    same_prompt = our_ids == inputs["input_ids"][0].tolist()
    same = cut(ours) == cut(theirs)
    status = "ok" if same and same_prompt else "FAIL"
    print(f"{status} {d} ({family}): prompt {len(our_ids)} tokens "
          f"({'same ids' if same_prompt else 'ids DIFFER'}); transformers {cut(theirs)} "
          f"{proc.tokenizer.decode(cut(theirs))!r}; mla-bench {cut(ours)}")
    return same and same_prompt


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--synth", type=Path, help="an `mla-bench synth --out` dir (the sample)")
    ap.add_argument("--binary", type=Path, default=ROOT / "build" / "mla-bench")
    ap.add_argument("--max-new-tokens", type=int, default=12)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory(prefix="mlab-check-synth-") as tmp:
        scratch = Path(tmp)
        image, question = pick_sample(args.synth, scratch)
        print(f"sample: {image} {question!r}")
        for d in args.models:
            ok = check(d, image, question, args.binary, args.max_new_tokens, scratch) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
