#!/usr/bin/env python3
"""GPU checks of the C++ VLM runtime (`mla-bench generate`) against transformers.

(A) --parity: bf16 (or any dtype) parity on the tiny fixtures of tests/data/tiny_vlms. The model inputs
    (pixel values included) are replayed from the committed reference files
    tests/data/tiny_vlms/reference/<family>__<case>.safetensors into both `mla-bench generate --inputs` and
    transformers (sdpa and eager), and prefill logits and 20 greedy tokens are compared with each other and with
    the fp32 transformers 5.24 reference stored in the file.
(B) --bench NAME...: speed and peak memory on random weights with the real configs
    (configs/models/<NAME>.json): a bf16 checkpoint is written by transformers into a scratch dir, `mla-bench
    generate` runs on tests/data/images/large.jpg with 128 new tokens, then transformers (eager and sdpa, each in
    a fresh subprocess) is timed on exactly the same inputs (dumped by mla-bench with --dump-inputs).

Results: <out>/vlm_gpu_check.json and <out>/vlm_gpu_check.md (the Markdown is also printed at the end).
One failing case/model is recorded and the run goes on. Uses only torch, transformers, safetensors, numpy and the
standard library (`tokenizers`, a dependency of transformers, checks the added image token when present).

    python3 tools/cuda/vlm_gpu_check.py --mla-bench build/mla-bench --out $OUT --parity
    python3 tools/cuda/vlm_gpu_check.py --mla-bench build/mla-bench --out $OUT --bench llava-1.5-7b-hf
    # CPU smoke test
    python3 tools/cuda/vlm_gpu_check.py --mla-bench build/mla-bench --out /tmp/o --parity --device cpu \
        --dtype float32 --families llava --cases tiny
    python3 tools/cuda/vlm_gpu_check.py --mla-bench build/mla-bench --out /tmp/o --bench llava-1.5-7b-hf \
        --device cpu --dtype float32 --layers 1 --max-new-tokens 4
"""
import argparse
import copy
import gc
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny_vlms"
FAMILIES = ["llava", "llava_next", "qwen2_5_vl"]
CASES = ["tiny", "large", "portrait_gray", "wide", "batch"]
PARITY_NEW = 20
BENCH_IMAGE = "tests/data/images/large.jpg"
BENCH_PROMPT = "Describe this picture in detail."

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
CLIP_PRE = {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "resample": 3, "rescale_factor": 1 / 255,
            "crop_size": {"height": 336, "width": 336}, "do_center_crop": True,
            "size": {"shortest_edge": 336}}
PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]

BENCH_MODELS = {
    "llava-1.5-7b-hf": {
        "family": "llava",
        "tokenizer": "tests/data/tokenizers/llama2/tokenizer.json",   # relative to the repo
        "add_tokens": [("<image>", 32000), ("<pad>", 32001)],
        "check_token": ("<image>", 32000),
        "preprocessor": dict(CLIP_PRE, image_processor_type="CLIPImageProcessor", processor_class="LlavaProcessor"),
        "processor": {"image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": 14,
                      "processor_class": "LlavaProcessor", "vision_feature_select_strategy": "default"},
        "generation": {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 32001},
        "tokenizer_config": {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                             "unk_token": "<unk>", "pad_token": "<pad>", "legacy": False, "padding_side": "left",
                             "clean_up_tokenization_spaces": False, "tokenizer_class": "LlamaTokenizer",
                             "processor_class": "LlavaProcessor"},
    },
    "llama3-llava-next-8b-hf": {
        "family": "llava_next",
        "tokenizer": "llama3.tokenizer.json.gz",                     # relative to --tokenizers
        "add_tokens": [("<image>", 128256), ("<pad>", 128257)],
        "check_token": ("<image>", 128256),
        "preprocessor": dict(CLIP_PRE, image_processor_type="LlavaNextImageProcessor",
                             processor_class="LlavaNextProcessor", image_grid_pinpoints=PINPOINTS, do_pad=True),
        "processor": {"image_token": "<image>", "num_additional_image_tokens": 1, "patch_size": 14,
                      "processor_class": "LlavaNextProcessor", "vision_feature_select_strategy": "default"},
        "generation": {"bos_token_id": 128000, "eos_token_id": 128009, "pad_token_id": 128257},
        "tokenizer_config": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<pad>",
                             "clean_up_tokenization_spaces": False, "padding_side": "left",
                             "tokenizer_class": "PreTrainedTokenizerFast", "processor_class": "LlavaNextProcessor"},
    },
    "Qwen2.5-VL-7B-Instruct": {
        "family": "qwen2_5_vl",
        "tokenizer": "qwen2.5.tokenizer.json.gz",
        "add_tokens": [],
        "check_token": ("<|image_pad|>", 151655),
        "preprocessor": {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
                         "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "resample": 3, "rescale_factor": 1 / 255,
                         "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
                         "merge_size": 2, "image_processor_type": "Qwen2VLImageProcessor",
                         "processor_class": "Qwen2_5_VLProcessor"},
        "processor": None,
        "generation": {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643},
        "tokenizer_config": {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                             "clean_up_tokenization_spaces": False, "errors": "replace", "split_special_tokens": False,
                             "tokenizer_class": "Qwen2Tokenizer", "processor_class": "Qwen2_5_VLProcessor"},
    },
}


# ----------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------
def log(*a):
    print("[vlm_gpu_check]", *a, flush=True)


def torch_dtype(name):
    import torch
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}[name]


def canonical_dtype(name):
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}.get(name, name)


def sync(device):
    import torch
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def read_st(path):
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, (f.metadata() or {})


def rel(a, b):
    """max|a - b| / max|b| in float64 (b is the reference)."""
    a, b = a.double().cpu(), b.double().cpu()
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    den = b.abs().max().item()
    return (a - b).abs().max().item() / (den if den > 0 else 1.0)


def leading_equal(a, b):
    """Per row, how many leading tokens agree; returns (min over rows, n, all equal)."""
    a, b = a.cpu(), b.cpu()
    n = min(a.shape[1], b.shape[1])
    counts = []
    for ra, rb in zip(a, b):
        k = 0
        while k < n and int(ra[k]) == int(rb[k]):
            k += 1
        counts.append(k)
    return {"min_leading_equal": min(counts), "per_row": counts, "n": n,
            "equal": bool(a.shape == b.shape and (a == b).all().item())}


def fmt_rel(x):
    return "-" if x is None else f"{x:.2e}"


def fmt_tok(t):
    if t is None:
        return "-"
    s = f"{t['min_leading_equal']}/{t['n']}"
    if len(t["per_row"]) > 1:
        s += " (" + ",".join(str(c) for c in t["per_row"]) + ")"
    return s


def fmt_num(x, f="{:.3f}"):
    return "-" if x is None else f.format(x)


def short_exc(e):
    return f"{type(e).__name__}: {str(e).strip()[-1500:]}"


def gpu_info():
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv"], capture_output=True,
                           text=True, timeout=60)
        return (p.stdout + p.stderr).strip()
    except Exception as e:      # no nvidia-smi (CPU machine)
        return f"nvidia-smi unavailable ({short_exc(e)})"


def versions():
    v = {"python": platform.python_version(), "platform": platform.platform()}
    for mod in ("torch", "transformers", "safetensors", "numpy", "tokenizers", "PIL", "torchvision"):
        try:
            m = __import__(mod)
            v[mod] = getattr(m, "__version__", "?")
        except Exception:
            v[mod] = None
    try:
        import torch
        v["cuda_available"] = torch.cuda.is_available()
        v["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            v["gpu"] = torch.cuda.get_device_name(0)
    except Exception:
        pass
    try:
        v["git_head"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                       text=True, timeout=30).stdout.strip() or None
    except Exception:
        v["git_head"] = None
    return v


# ----------------------------------------------------------------------------------------------------------
# mla-bench
# ----------------------------------------------------------------------------------------------------------
class Ours:
    def __init__(self, exe, timeout):
        self.exe = str(exe)
        self.timeout = timeout
        try:
            p = subprocess.run([self.exe, "generate", "--help"], capture_output=True, text=True, timeout=120)
            self.help = p.stdout + p.stderr
        except Exception as e:
            self.help = ""
            log("cannot run", self.exe, short_exc(e))
        self.flags = {f: (f in self.help) for f in ("--inputs", "--warmup", "--dump-inputs", "--dump", "--json")}

    def has(self, flag):
        return self.flags.get(flag, False)

    def generate(self, args):
        cmd = [self.exe, "generate"] + [str(a) for a in args]
        log("run:", " ".join(cmd))
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        wall = time.time() - t0
        if p.returncode != 0:
            raise RuntimeError(f"mla-bench exit {p.returncode} after {wall:.1f}s: "
                               f"{(p.stderr or p.stdout).strip()[-2000:]}")
        js = None
        for line in reversed(p.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                js = json.loads(line)
                break
        if js is None:
            raise RuntimeError(f"mla-bench printed no JSON line: {p.stdout[-1000:]}")
        js["_wall_seconds"] = wall
        js["_command"] = cmd
        return js


# ----------------------------------------------------------------------------------------------------------
# transformers
# ----------------------------------------------------------------------------------------------------------
def hf_load(model_dir, dtype, device, attn, notes):
    import torch
    import transformers as T
    kw = {"attn_implementation": attn}
    try:
        m = T.AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype, **kw)
    except TypeError as e:
        if "dtype" not in str(e):
            raise
        notes.append("from_pretrained rejected dtype=, used torch_dtype=")
        m = T.AutoModelForImageTextToText.from_pretrained(str(model_dir), torch_dtype=dtype, **kw)
    m = m.to(device).eval()
    got = getattr(m.config, "_attn_implementation", None)
    if got is not None and got != attn:
        notes.append(f"asked attn_implementation={attn}, model uses {got}")
    return m


def image_token_id(cfg):
    for k in ("image_token_id", "image_token_index"):
        v = getattr(cfg, k, None)
        if v is not None:
            return int(v)
    return None


def pad_id(cfg):
    for c in (cfg, cfg.get_text_config()):
        v = getattr(c, "pad_token_id", None)
        if v is not None:
            return int(v)
    return 0


def hf_inputs(t, family, cfg, device, dtype, notes):
    """Model inputs for transformers from a reference/dump tensor dict."""
    inp = {"input_ids": t["input_ids"].long(), "attention_mask": t["attention_mask"].long()}
    if "pixel_values" in t:
        inp["pixel_values"] = t["pixel_values"].to(dtype)
    if family == "llava_next":
        inp["image_sizes"] = t["image_sizes"].long()
    if family == "qwen2_5_vl":
        inp["image_grid_thw"] = t["image_grid_thw"].long()
        if "mm_token_type_ids" in t:
            inp["mm_token_type_ids"] = t["mm_token_type_ids"].long()
        else:
            inp["mm_token_type_ids"] = (t["input_ids"] == image_token_id(cfg)).long()
    return {k: v.to(device) for k, v in inp.items()}


OPTIONAL_KW = ("mm_token_type_ids", "logits_to_keep", "min_new_tokens")


def call_dropping(fn, kwargs, notes, what):
    """Call fn(**kwargs); when the installed transformers rejects an optional keyword, drop it, note it, retry."""
    kwargs = dict(kwargs)
    while True:
        try:
            return fn(**kwargs), kwargs
        except (TypeError, ValueError) as e:
            msg = str(e)
            bad = [k for k in OPTIONAL_KW if k in kwargs and k in msg]
            if not bad:
                raise
            for k in bad:
                kwargs.pop(k)
                n = f"{what}: transformers rejected {k} ({msg.strip()[:200]}); retried without it"
                if n not in notes:
                    notes.append(n)


def gen_config(model, n, min_new):
    import transformers as T
    cfg = model.config
    gc_ = T.GenerationConfig(max_new_tokens=n, min_new_tokens=min_new, do_sample=False, num_beams=1,
                             eos_token_id=None, pad_token_id=pad_id(cfg), bos_token_id=None)
    model.generation_config.eos_token_id = None   # otherwise generate() fills the None from the model's config
    return gc_


def hf_generate(model, inp, n, notes, what, min_new=0):
    import torch
    gc_ = gen_config(model, n, min_new)
    with torch.no_grad():
        out, _ = call_dropping(lambda **kw: model.generate(**kw, generation_config=gc_), inp, notes, what)
    new = out[:, inp["input_ids"].shape[1]:]
    if new.shape[1] != n:
        notes.append(f"{what}: generate returned {new.shape[1]} new tokens instead of {n}")
    return new


# ----------------------------------------------------------------------------------------------------------
# (A) parity
# ----------------------------------------------------------------------------------------------------------
def case_image(name):
    p = REPO / "tests" / "data" / "images" / "reference" / f"{name}.input.png"
    if p.exists():
        return p
    hits = sorted((REPO / "tests" / "data" / "images").glob(f"{name}.*"))
    return hits[0] if hits else None


def positions_equal(pos, ref):
    """M-RoPE position ids [3, B, L] equal to the reference's at the non-padding positions."""
    import torch
    pos, want = pos.cpu().long(), ref["position_ids"]
    if pos.shape != want.shape:
        return False
    valid = ref["attention_mask"].bool().unsqueeze(0).expand_as(want)
    return bool(torch.equal(pos[valid], want[valid]))


def run_parity(args, ours, results, flush):
    import torch
    dtype = torch_dtype(args.dtype)
    device = args.device
    work = Path(args.work) / "parity"
    work.mkdir(parents=True, exist_ok=True)
    rows = results.setdefault("parity", {"dtype": args.dtype, "device": device, "cases": [],
                                         "mla_bench_flags": ours.flags})
    for family in args.families:
        models, load_notes = {}, []
        for case in args.cases:
            name = f"{family}__{case}"
            log(f"parity {name} ({args.dtype}, {device})")
            row = {"family": family, "case": case, "errors": [], "notes": []}
            rows["cases"].append(row)
            t_case = time.time()
            ref_path = TINY / "reference" / f"{name}.safetensors"
            model_dir = TINY / family
            try:
                ref, meta = read_st(ref_path)
            except Exception as e:
                row["errors"].append(f"reference: {short_exc(e)}")
                flush()
                continue
            batch = "last_logits" in ref
            row["batch"] = int(ref["input_ids"].shape[0])
            row["L"] = int(ref["input_ids"].shape[1])
            valid_rows = ref["attention_mask"][:, -1].bool()
            ref_logits = ref["last_logits"][valid_rows] if batch else ref["logits"]

            def pick(lg):    # prefill logits [B, L, V] -> what is compared with the reference
                lg = lg.float().cpu()
                return lg[:, -1][valid_rows] if batch else lg

            # ---- ours
            ours_logits = ours_tokens = None
            dump = work / f"{name}.{args.dtype}.ours.safetensors"
            try:
                common = ["--model", model_dir, "--device", device, "--dtype", args.dtype, "--attention",
                          args.attention, "--no-eos", "--max-new-tokens", PARITY_NEW, "--dump", dump, "--json"]
                if ours.has("--inputs"):
                    a = ["--inputs", ref_path] + common
                else:
                    imgs = json.loads(meta.get("images", "[]"))
                    qs = json.loads(meta.get("questions", "[]"))
                    if len(imgs) != 1 or len(qs) != 1:
                        raise RuntimeError("this mla-bench has no --inputs; a batch case cannot be replayed")
                    img = case_image(imgs[0])
                    a = ["--image", img, "--prompt", qs[0]] + common
                    row["notes"].append("mla-bench has no --inputs: ours ran from the image file with its own "
                                        "preprocessing (not the reference pixel values)")
                js = ours.generate(a)
                row["ours_json"] = {k: v for k, v in js.items() if k not in ("text", "texts")}
                d, _ = read_st(dump)
                if not torch.equal(d["input_ids"].cpu(), ref["input_ids"]):
                    row["errors"].append("ours: input_ids differ from the reference")
                if "pixel_values" in d and d["pixel_values"].shape == ref["pixel_values"].shape:
                    row["ours_pixel_values_vs_ref"] = rel(d["pixel_values"], ref["pixel_values"])
                ours_logits = pick(d["logits"])
                ours_tokens = d["generated_ids"].cpu()
                if "image_features" in d and "image_features" in ref and not batch:
                    row["image_features_ours_vs_ref"] = rel(d["image_features"], ref["image_features"])
                if family == "qwen2_5_vl" and "position_ids" in d and "position_ids" in ref:
                    row["ours_position_ids_eq_ref"] = positions_equal(d["position_ids"], ref)
            except Exception as e:
                row["errors"].append(f"ours: {short_exc(e)}")
                log("  ours failed:", short_exc(e)[:500])

            # ---- transformers
            hf = {}
            for attn in args.hf_attn:
                what = f"hf-{attn}"
                try:
                    if attn not in models:
                        t0 = time.time()
                        models[attn] = hf_load(model_dir, dtype, device, attn, load_notes)
                        log(f"  loaded transformers {family} {attn} in {time.time() - t0:.1f}s")
                    m = models[attn]
                    inp = hf_inputs(ref, family, m.config, device, dtype, row["notes"])
                    with torch.no_grad():
                        out, used = call_dropping(lambda **kw: m(**kw, use_cache=False), inp, row["notes"],
                                                  f"{what} forward")
                    if family == "qwen2_5_vl" and "mm_token_type_ids" not in used:
                        row["notes"].append(f"{what}: no mm_token_type_ids: transformers may use 1-D positions")
                    toks = hf_generate(m, inp, PARITY_NEW, row["notes"], f"{what} generate")
                    hf[attn] = {"logits": pick(out.logits), "tokens": toks.cpu()}
                    if family == "qwen2_5_vl" and attn == args.hf_attn[0]:
                        try:
                            pos, _ = m.model.get_rope_index(
                                inp["input_ids"], mm_token_type_ids=inp.get("mm_token_type_ids"),
                                image_grid_thw=inp["image_grid_thw"], attention_mask=inp["attention_mask"])
                            row["hf_position_ids_eq_ref"] = positions_equal(pos, ref)
                        except Exception as e:
                            row["notes"].append(f"get_rope_index check skipped: {short_exc(e)[:200]}")
                    del out
                except Exception as e:
                    row["errors"].append(f"{what}: {short_exc(e)}")
                    log(f"  {what} failed:", short_exc(e)[:500])
                    if args.verbose:
                        traceback.print_exc()

            # ---- comparisons
            def R(a, b):
                try:
                    return None if a is None or b is None else rel(a, b)
                except Exception as e:
                    row["errors"].append(f"compare: {short_exc(e)}")
                    return None

            def TK(a, b):
                return None if a is None or b is None else leading_equal(a, b)

            ref_tokens = ref["generated_ids"]
            hs = hf.get("sdpa", {})
            he = hf.get("eager", {})
            row["logits"] = {
                "ours_vs_hf_sdpa": R(ours_logits, hs.get("logits")),
                "ours_vs_hf_eager": R(ours_logits, he.get("logits")),
                "ours_vs_ref": R(ours_logits, ref_logits),
                "hf_sdpa_vs_ref": R(hs.get("logits"), ref_logits),
                "hf_eager_vs_ref": R(he.get("logits"), ref_logits),
            }
            row["tokens"] = {
                "ours_vs_hf_sdpa": TK(ours_tokens, hs.get("tokens")),
                "ours_vs_hf_eager": TK(ours_tokens, he.get("tokens")),
                "ours_vs_ref": TK(ours_tokens, ref_tokens),
                "hf_sdpa_vs_ref": TK(hs.get("tokens"), ref_tokens),
                "hf_eager_vs_ref": TK(he.get("tokens"), ref_tokens),
            }
            row["seconds"] = time.time() - t_case
            lg, tk = row["logits"], row["tokens"]
            log(f"  logits rel: ours~hf_sdpa {fmt_rel(lg['ours_vs_hf_sdpa'])} ours~ref {fmt_rel(lg['ours_vs_ref'])} "
                f"hf_sdpa~ref {fmt_rel(lg['hf_sdpa_vs_ref'])}; tokens ours=hf {fmt_tok(tk['ours_vs_hf_sdpa'])} "
                f"ours=ref {fmt_tok(tk['ours_vs_ref'])} hf=ref {fmt_tok(tk['hf_sdpa_vs_ref'])}"
                + (f"; errors: {len(row['errors'])}" if row["errors"] else ""))
            flush()
        if load_notes:
            rows.setdefault("load_notes", {})[family] = load_notes
        models.clear()
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def parity_markdown(p):
    out = [f"## (A) Parity on the tiny fixtures — {p['dtype']} on {p['device']}", "",
           "rel = max|a-b| / max|b| over the prefill logits (batch case: last position, valid rows); tokens = "
           "leading greedy tokens that agree (min over rows; per row in brackets). ref = the committed "
           "transformers 5.24 fp32 CPU reference.", "",
           "| case | L | ours~HF sdpa | ours~HF eager | ours~ref | HF sdpa~ref | HF eager~ref | img feat ours~ref "
           "| tok ours=HF sdpa | tok ours=ref | tok HF sdpa=ref | tok HF eager=ref | errors |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in p["cases"]:
        lg, tk = r.get("logits", {}), r.get("tokens", {})
        err = "; ".join(e.replace("|", "/").replace("\n", " ")[:300] for e in r["errors"]) or ""
        out.append(f"| {r['family']}/{r['case']} | {r.get('L', '-')} | {fmt_rel(lg.get('ours_vs_hf_sdpa'))} | "
                   f"{fmt_rel(lg.get('ours_vs_hf_eager'))} | {fmt_rel(lg.get('ours_vs_ref'))} | "
                   f"{fmt_rel(lg.get('hf_sdpa_vs_ref'))} | {fmt_rel(lg.get('hf_eager_vs_ref'))} | "
                   f"{fmt_rel(r.get('image_features_ours_vs_ref'))} | {fmt_tok(tk.get('ours_vs_hf_sdpa'))} | "
                   f"{fmt_tok(tk.get('ours_vs_ref'))} | {fmt_tok(tk.get('hf_sdpa_vs_ref'))} | "
                   f"{fmt_tok(tk.get('hf_eager_vs_ref'))} | {err} |")
    notes = sorted({f"{r['family']}/{r['case']}: {n}" for r in p["cases"] for n in r["notes"]})
    qpos = [f"{r['family']}/{r['case']}: ours {r.get('ours_position_ids_eq_ref')}, HF "
            f"{r.get('hf_position_ids_eq_ref')}" for r in p["cases"] if r["family"] == "qwen2_5_vl"]
    if qpos:
        out += ["", "Qwen M-RoPE position_ids equal to the reference (non-padding positions): " + "; ".join(qpos)]
    for fam, ns in p.get("load_notes", {}).items():
        notes += [f"{fam} load: {n}" for n in ns]
    if notes:
        out += ["", "Notes:"] + [f"* {n}" for n in notes]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------
# (B) bench: model dir construction
# ----------------------------------------------------------------------------------------------------------
def override_config(cfg, layers, vision_layers, shrink):
    cfg = copy.deepcopy(cfg)
    changes = {}
    if layers is not None:
        if "text_config" in cfg and cfg.get("model_type") != "qwen2_5_vl":
            cfg["text_config"]["num_hidden_layers"] = layers
        else:
            cfg["num_hidden_layers"] = layers
            if "max_window_layers" in cfg:
                cfg["max_window_layers"] = min(cfg["max_window_layers"], layers)
        changes["num_hidden_layers"] = layers
    if vision_layers is not None:
        v = cfg["vision_config"]
        if "depth" in v:
            v["depth"] = vision_layers
            idx = [i for i in v.get("fullatt_block_indexes", []) if i < vision_layers] or [vision_layers - 1]
            v["fullatt_block_indexes"] = idx
        else:
            v["num_hidden_layers"] = vision_layers
        changes["vision_layers"] = vision_layers
    if shrink:   # smoke tests only: small widths, real vocabularies
        if cfg.get("model_type") == "qwen2_5_vl":
            cfg.update(hidden_size=256, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
            cfg["rope_scaling"]["mrope_section"] = [8, 12, 12]
            cfg["vision_config"].update(hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=256)
        else:
            cfg["text_config"].update(hidden_size=256, intermediate_size=512, num_attention_heads=4,
                                      num_key_value_heads=(2 if cfg.get("model_type") == "llava_next" else 4))
            cfg["vision_config"].update(hidden_size=128, intermediate_size=256, num_attention_heads=4)
        changes["shrink"] = True
    return cfg, changes


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def prepare_tokenizer(spec, tokenizers_dir, dst, info):
    src = Path(spec["tokenizer"])
    src = REPO / src if src.parts[0] == "tests" else Path(tokenizers_dir) / src
    if not src.exists():
        raise FileNotFoundError(f"tokenizer not found: {src}")
    raw = gzip.open(src, "rt", encoding="utf-8").read() if src.suffix == ".gz" else src.read_text(encoding="utf-8")
    tok = json.loads(raw)
    added = tok.setdefault("added_tokens", [])
    have = {a["content"]: a["id"] for a in added}
    vocab = tok.get("model", {}).get("vocab", {})
    for content, tid in spec["add_tokens"]:
        if content in have:
            if have[content] != tid:
                raise ValueError(f"{src}: {content} has id {have[content]}, config wants {tid}")
            continue
        if isinstance(vocab, dict) and (content in vocab and vocab[content] != tid):
            raise ValueError(f"{src}: {content} is in the vocabulary with id {vocab[content]}")
        clash = [a for a in added if a["id"] == tid]
        if clash:
            raise ValueError(f"{src}: id {tid} already taken by {clash[0]['content']}")
        added.append({"id": tid, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
        info.setdefault("tokenizer_added", []).append([content, tid])
    added.sort(key=lambda a: a["id"])
    text = json.dumps(tok, ensure_ascii=False)
    (dst / "tokenizer.json").write_text(text, encoding="utf-8")
    info["tokenizer_source"] = str(src)
    content, tid = spec["check_token"]
    try:
        import tokenizers
        ids = tokenizers.Tokenizer.from_str(text).encode(content, add_special_tokens=False).ids
        info["tokenizer_check"] = f"encode({content!r}) = {ids}"
        if ids != [tid]:
            raise ValueError(f"tokenizer: encode({content!r}) = {ids}, expected [{tid}]")
    except ImportError:
        info["tokenizer_check"] = "tokenizers not installed: not checked"


def default_tokenizers_dir():
    """tools/cuda/tokenizers when someone placed the files there, else .deps/tokenizers, where
    tools/stage_deps.sh writes them from ../shared/tokenizers (device runs carry .deps)."""
    for p in (REPO / "tools" / "cuda" / "tokenizers", REPO / ".deps" / "tokenizers"):
        if (p / "llama3.tokenizer.json.gz").exists():
            return str(p)
    return str(REPO / ".deps" / "tokenizers")


def make_model_dir(args, name, d, info):
    """config.json (hub file, copied), tokenizer, processor configs; the checkpoint is written by _build."""
    spec = BENCH_MODELS[name]
    hub = json.loads((REPO / "configs" / "models" / f"{name}.json").read_text())
    vision_layers = args.vision_layers
    if vision_layers is None and args.layers is not None:
        vision_layers = max(2, args.layers)
    cfg, changes = override_config(hub, args.layers, vision_layers, args.shrink)
    if changes:
        info["config_overrides"] = changes
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    write_json(d / "config.json", cfg)
    prepare_tokenizer(spec, args.tokenizers, d, info)
    write_json(d / "tokenizer_config.json", spec["tokenizer_config"])
    write_json(d / "preprocessor_config.json", spec["preprocessor"])
    if spec["processor"]:
        write_json(d / "processor_config.json", spec["processor"])
    return cfg


def cmd_build(argv):
    """Hidden subcommand: random-weight checkpoint written by transformers into DIR (config.json kept)."""
    ap = argparse.ArgumentParser(prog="vlm_gpu_check.py _build")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--result", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import torch
    import transformers as T
    d = Path(a.dir)
    res = {"notes": []}
    hub_text = (d / "config.json").read_text()
    hub = json.loads(hub_text)
    t0 = time.time()
    cfg = T.AutoConfig.from_pretrained(str(d))
    tc = cfg.get_text_config()
    vc = getattr(cfg, "vision_config", None)
    hub_text_cfg = hub.get("text_config", hub) if hub.get("model_type") != "qwen2_5_vl" else hub
    res["config_class"] = type(cfg).__name__
    res["text_config_class"] = type(tc).__name__
    seen = {"hidden_size": tc.hidden_size, "num_hidden_layers": tc.num_hidden_layers,
            "num_attention_heads": tc.num_attention_heads, "num_key_value_heads": tc.num_key_value_heads,
            "intermediate_size": tc.intermediate_size, "vocab_size": tc.vocab_size,
            "image_token_id": image_token_id(cfg),
            "rope": getattr(tc, "rope_parameters", None) or {"rope_theta": getattr(tc, "rope_theta", None),
                                                             "rope_scaling": getattr(tc, "rope_scaling", None)},
            "vision_layers": getattr(vc, "num_hidden_layers", None) or getattr(vc, "depth", None)}
    res["config_seen"] = json.loads(json.dumps(seen, default=str))
    for k in ("hidden_size", "num_hidden_layers", "num_key_value_heads", "intermediate_size", "vocab_size"):
        if k in hub_text_cfg and hub_text_cfg[k] != seen[k]:
            res["notes"].append(f"config: hub {k}={hub_text_cfg[k]} but transformers has {seen[k]}")
    want_img = hub.get("image_token_index", hub.get("image_token_id"))
    if want_img is not None and want_img != seen["image_token_id"]:
        res["notes"].append(f"config: image token {want_img} but transformers has {seen['image_token_id']}")
    theta = hub_text_cfg.get("rope_theta")
    rope_text = json.dumps(res["config_seen"]["rope"])
    if theta is not None and str(float(theta)) not in rope_text and str(int(theta)) not in rope_text:
        res["notes"].append(f"config: hub rope_theta {theta} not found in transformers' {rope_text}")
    dtype = torch_dtype(a.dtype)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    with dev:
        try:
            model = T.AutoModelForImageTextToText.from_config(cfg, dtype=dtype)
        except TypeError:
            res["notes"].append("from_config rejected dtype=, used torch_dtype=")
            model = T.AutoModelForImageTextToText.from_config(cfg, torch_dtype=dtype)
    sync(a.device)
    res["model_class"] = type(model).__name__
    res["parameters"] = sum(p.numel() for p in model.parameters())
    res["init_seconds"] = time.time() - t0
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        res["notes"].append(f"non-finite parameters after init: {bad[:5]}")
    t1 = time.time()
    model.save_pretrained(str(d), max_shard_size="5GB")
    res["save_seconds"] = time.time() - t1
    res["transformers_config_json"] = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(hub_text)     # the hub file is what both sides load
    res["files"] = {p.name: p.stat().st_size for p in sorted(d.iterdir())}
    res["checkpoint_bytes"] = sum(v for k, v in res["files"].items() if k.endswith(".safetensors"))
    del model
    gc.collect()
    if a.device.startswith("cuda"):
        torch.cuda.empty_cache()
    write_json(a.result, res)


def cmd_hf_bench(argv):
    """Hidden subcommand: time transformers on the inputs mla-bench dumped, in a fresh process."""
    ap = argparse.ArgumentParser(prog="vlm_gpu_check.py _hf_bench")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--attn", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--prefill-repeats", type=int, default=3)
    ap.add_argument("--result", required=True)
    a = ap.parse_args(argv)
    import torch
    res = {"attn": a.attn, "notes": []}
    cuda = a.device.startswith("cuda")
    dtype = torch_dtype(a.dtype)
    family = json.loads((Path(a.dir) / "config.json").read_text())["model_type"]
    t0 = time.time()
    model = hf_load(a.dir, dtype, a.device, a.attn, res["notes"])
    sync(a.device)
    res["load_seconds"] = time.time() - t0
    if cuda:
        res["weights_bytes"] = torch.cuda.memory_allocated()
    t, _ = read_st(a.inputs)
    inp = hf_inputs(t, family, model.config, a.device, dtype, res["notes"])
    B, L = inp["input_ids"].shape
    n = a.max_new_tokens
    res.update(batch=int(B), prompt_length=int(L), prompt_tokens=int(B * L), max_new_tokens=n,
               image_tokens=int((inp["input_ids"] == image_token_id(model.config)).sum()))
    # warm-up: one full generate
    t0 = time.time()
    hf_generate(model, inp, n, res["notes"], "warm-up generate", min_new=n)
    sync(a.device)
    res["warmup_seconds"] = time.time() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    # prefill: one forward with a cache, last position's logits only (timed --prefill-repeats times: median)
    times = []
    for _ in range(max(1, a.prefill_repeats)):
        with torch.no_grad():
            sync(a.device)
            t0 = time.time()
            out, used = call_dropping(lambda **kw: model(**kw), dict(inp, use_cache=True, logits_to_keep=1),
                                      res["notes"], "prefill forward")
            sync(a.device)
            times.append(time.time() - t0)
        del out
    res["prefill_seconds_all"] = times
    res["prefill_seconds"] = sorted(times)[len(times) // 2]
    res["prefill_logits_to_keep"] = "logits_to_keep" in used
    if cuda:
        res["prefill_peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    # generate(max_new_tokens=1): the prefill as generate runs it (its overhead included)
    g1 = []
    for _ in range(max(1, a.prefill_repeats)):
        sync(a.device)
        t0 = time.time()
        hf_generate(model, inp, 1, res["notes"], "generate 1 token", min_new=1)
        sync(a.device)
        g1.append(time.time() - t0)
    res["generate1_seconds_all"] = g1
    res["generate1_seconds"] = sorted(g1)[len(g1) // 2]
    sync(a.device)
    t0 = time.time()
    new = hf_generate(model, inp, n, res["notes"], "timed generate", min_new=n)
    sync(a.device)
    total = time.time() - t0
    res["generate_seconds"] = total
    res["generated_tokens"] = int(new.shape[1])
    res["tokens"] = new[0].tolist()
    steps = new.shape[1] - 1
    res["decode_steps"] = int(steps)
    # as asked: decode = generate total - one timed prefill forward
    res["decode_seconds"] = total - res["prefill_seconds"]
    res["prefill_tokens_per_second"] = B * L / res["prefill_seconds"]
    res["decode_tokens_per_second"] = (B * steps / res["decode_seconds"]) if res["decode_seconds"] > 0 else None
    # cross-check, less sensitive to the prefill's noise: generate(N) - generate(1)
    d2 = total - res["generate1_seconds"]
    res["decode_tokens_per_second_gen_diff"] = (B * steps / d2) if d2 > 0 and steps > 0 else None
    res["generate_tokens_per_second"] = B * new.shape[1] / total
    if cuda:
        res["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
        res["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
    else:
        res["peak_memory_bytes"] = None
    write_json(a.result, res)


def run_sub(argv, timeout, what):
    cmd = [sys.executable, str(Path(__file__).resolve())] + [str(x) for x in argv]
    log(f"{what}: {' '.join(cmd[1:])}")
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{what} exit {p.returncode} after {time.time() - t0:.1f}s: "
                           f"{(p.stderr or p.stdout).strip()[-2500:]}")
    return time.time() - t0


def run_bench(args, ours, results, flush):
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bench = results.setdefault("bench", {"device": args.device, "dtype": args.dtype,
                                         "max_new_tokens": args.max_new_tokens, "models": [],
                                         "mla_bench_flags": ours.flags})
    for name in args.bench:
        log(f"bench {name}")
        entry = {"model": name, "errors": [], "notes": []}
        bench["models"].append(entry)
        t_model = time.time()
        d = work / name
        inputs = work / f"{name}.inputs.safetensors"
        try:
            if name not in BENCH_MODELS:
                raise ValueError(f"unknown model {name} (known: {', '.join(BENCH_MODELS)})")
            make_model_dir(args, name, d, entry)
            build_json = work / f"{name}.build.json"
            run_sub(["_build", "--dir", d, "--device", args.build_device or args.device, "--dtype", "bfloat16",
                     "--result", build_json], args.timeout, "build checkpoint")
            entry["build"] = json.loads(build_json.read_text())
            # save_pretrained wrote transformers' generation_config.json; the hub checkpoint's ids instead
            write_json(d / "generation_config.json", dict(BENCH_MODELS[name]["generation"]))
            entry["notes"] += entry["build"].get("notes", [])
            log(f"  checkpoint: {entry['build']['parameters'] / 1e9:.2f}B parameters, "
                f"{entry['build']['checkpoint_bytes'] / 2**30:.2f} GiB, init {entry['build']['init_seconds']:.1f}s, "
                f"save {entry['build']['save_seconds']:.1f}s")
            flush()
        except Exception as e:
            entry["errors"].append(f"model dir: {short_exc(e)}")
            log("  model dir failed:", short_exc(e)[:800])
            flush()
            if not args.keep and d.exists():
                shutil.rmtree(d, ignore_errors=True)
            continue

        # ---- ours
        base = ["--model", d, "--image", REPO / BENCH_IMAGE, "--prompt", BENCH_PROMPT, "--device", args.device,
                "--dtype", args.dtype, "--max-new-tokens", args.max_new_tokens, "--no-eos", "--json"]
        if ours.has("--warmup"):
            base += ["--warmup", args.warmup]
        else:
            entry["notes"].append("mla-bench has no --warmup: ours timed on its first (cold) generate")
        impls = ["sdpa"] + (["eager"] if args.with_eager else [])
        entry["ours"] = {}
        for impl in impls:
            try:
                a = base + ["--attention", impl]
                if impl == "sdpa":
                    if inputs.exists():
                        inputs.unlink()
                    if ours.has("--dump-inputs"):
                        a += ["--dump-inputs", inputs]
                    else:
                        a += ["--dump", inputs]
                        entry["notes"].append("mla-bench has no --dump-inputs: used --dump (also writes logits)")
                js = ours.generate(a)
                entry["ours"][impl] = {k: v for k, v in js.items() if k not in ("texts", "all_tokens")}
                log(f"  ours {impl}: L={js.get('prompt_length')} prefill {fmt_num(js.get('prefill_seconds'))}s "
                    f"decode {fmt_num(js.get('decode_tokens_per_second'), '{:.1f}')} tok/s peak "
                    f"{fmt_gib(js.get('peak_memory_bytes'))} GiB")
            except Exception as e:
                entry["errors"].append(f"ours {impl}: {short_exc(e)}")
                log(f"  ours {impl} failed:", short_exc(e)[:800])
            flush()

        # ---- transformers, one fresh process per attention implementation
        entry["hf"] = {}
        if not inputs.exists():
            entry["errors"].append("transformers: no inputs file from mla-bench, skipped")
        else:
            for attn in args.hf_attn:
                rj = work / f"{name}.hf_{attn}.json"
                try:
                    if rj.exists():
                        rj.unlink()
                    run_sub(["_hf_bench", "--dir", d, "--inputs", inputs, "--attn", attn, "--device", args.device,
                             "--dtype", args.dtype, "--max-new-tokens", args.max_new_tokens,
                             "--prefill-repeats", args.prefill_repeats, "--result", rj],
                            args.timeout, f"transformers {attn}")
                    r = json.loads(rj.read_text())
                    entry["hf"][attn] = r
                    entry["notes"] += [f"HF {attn}: {n}" for n in r.get("notes", [])]
                    log(f"  HF {attn}: L={r['prompt_length']} prefill {r['prefill_seconds']:.3f}s decode "
                        f"{fmt_num(r['decode_tokens_per_second'], '{:.1f}')} tok/s peak "
                        f"{fmt_gib(r.get('peak_memory_bytes'))} GiB")
                except Exception as e:
                    entry["errors"].append(f"HF {attn}: {short_exc(e)}")
                    log(f"  HF {attn} failed:", short_exc(e)[:800])
                flush()
        o = entry["ours"].get("sdpa")
        if o:
            for attn, r in entry["hf"].items():
                if r.get("prompt_length") != o.get("prompt_length"):
                    entry["notes"].append(f"prompt length differs: ours {o.get('prompt_length')}, HF {attn} "
                                          f"{r.get('prompt_length')}")
                if r.get("tokens") and o.get("tokens"):
                    entry.setdefault("tokens_vs_hf", {})[attn] = leading_equal(
                        _t([o["tokens"]]), _t([r["tokens"]]))
        entry["seconds"] = time.time() - t_model
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
            log(f"  removed {d}")
        flush()


def _t(x):
    import torch
    return torch.tensor(x, dtype=torch.long)


def fmt_gib(b):
    return "-" if b is None else f"{b / 2**30:.2f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def bench_markdown(b):
    out = [f"## (B) Speed and memory on random weights — {b['dtype']} on {b['device']}, "
           f"{b['max_new_tokens']} new tokens, image {BENCH_IMAGE}", "",
           "prefill = vision + prompt forward (synchronised); decode tok/s = batch x decode steps / decode "
           "seconds (HF: generate total minus the timed prefill forward (median of --prefill-repeats), steps = new "
           "tokens - 1; the extra column: generate(N) minus generate(1)); peak = CUDA "
           "caching-allocator peak (HF: torch.cuda.max_memory_allocated after a warm-up generate).", ""]
    for e in b["models"]:
        out += [f"### {e['model']}", ""]
        if "build" in e:
            bd = e["build"]
            out.append(f"checkpoint: {bd['parameters'] / 1e9:.3f}B parameters, "
                       f"{bd['checkpoint_bytes'] / 2**30:.2f} GiB, config {bd['config_class']}"
                       + (f", overrides {e['config_overrides']}" if e.get("config_overrides") else ""))
            out.append("")
        rows = [(f"ours {k}", v) for k, v in e.get("ours", {}).items()]
        rows += [(f"HF {k}", v) for k, v in e.get("hf", {}).items()]
        if rows:
            out += ["| run | prompt len | image tokens | prefill s | prefill tok/s | decode tok/s | decode steps "
                    "| decode tok/s (HF: gen N - gen 1) | peak GiB |", "|---|---|---|---|---|---|---|---|---|"]
            for label, r in rows:
                out.append(f"| {label} | {r.get('prompt_length', '-')} | {r.get('image_tokens', '-')} | "
                           f"{fmt_num(r.get('prefill_seconds'), '{:.4f}')} | "
                           f"{fmt_num(r.get('prefill_tokens_per_second'), '{:.0f}')} | "
                           f"{fmt_num(r.get('decode_tokens_per_second'), '{:.1f}')} | "
                           f"{r.get('decode_steps', '-')} | "
                           f"{fmt_num(r.get('decode_tokens_per_second_gen_diff'), '{:.1f}')} | "
                           f"{fmt_gib(r.get('peak_memory_bytes'))} |")
            o = e.get("ours", {}).get("sdpa")
            if o:
                out.append("")
                for attn in ("sdpa", "eager"):
                    r = e.get("hf", {}).get(attn)
                    if not r:
                        continue
                    pf = ratio(o.get("prefill_tokens_per_second"), r.get("prefill_tokens_per_second"))
                    dc = ratio(o.get("decode_tokens_per_second"), r.get("decode_tokens_per_second"))
                    mem = ratio(r.get("peak_memory_bytes"), o.get("peak_memory_bytes"))
                    out.append(f"* ours sdpa / HF {attn}: prefill speed x{fmt_num(pf, '{:.2f}')}, decode speed "
                               f"x{fmt_num(dc, '{:.2f}')}; memory HF / ours x{fmt_num(mem, '{:.2f}')}")
                for attn, t in e.get("tokens_vs_hf", {}).items():
                    out.append(f"* greedy tokens ours vs HF {attn}: {t['min_leading_equal']}/{t['n']} leading equal "
                               "(random weights: informative only)")
        for n in e.get("notes", []):
            out.append(f"* note: {n}")
        for er in e.get("errors", []):
            out.append(f"* ERROR: {er[:1500]}")
        out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_build":
        return cmd_build(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "_hf_bench":
        return cmd_hf_bench(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mla-bench", default="build/mla-bench", help="the mla-bench binary")
    ap.add_argument("--out", required=True, help="output dir (vlm_gpu_check.json, vlm_gpu_check.md)")
    ap.add_argument("--parity", action="store_true", help="(A) parity on the tiny fixtures")
    ap.add_argument("--bench", nargs="+", default=[], metavar="MODEL", help=f"(B) one of {', '.join(BENCH_MODELS)}")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--attention", default="sdpa", choices=["sdpa", "eager"], help="ours, in (A)")
    ap.add_argument("--hf-attn", nargs="+", default=["sdpa", "eager"], choices=["sdpa", "eager"],
                    help="transformers attention implementations to run")
    ap.add_argument("--work", default="/tmp/mlab_bench", help="scratch dir (model dirs, dumps)")
    ap.add_argument("--tokenizers", default=default_tokenizers_dir(),
                    help="dir with llama3.tokenizer.json.gz and qwen2.5.tokenizer.json.gz (default: "
                         "tools/cuda/tokenizers if present, else .deps/tokenizers from tools/stage_deps.sh)")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="(B)")
    ap.add_argument("--warmup", type=int, default=1, help="(B) untimed generate runs of ours first")
    ap.add_argument("--with-eager", action="store_true", help="(B) also run ours with --attention eager")
    ap.add_argument("--prefill-repeats", type=int, default=3,
                    help="(B) transformers: timed prefill forwards (the median is reported)")
    ap.add_argument("--families", nargs="+", default=FAMILIES, choices=FAMILIES)
    ap.add_argument("--cases", nargs="+", default=CASES)
    ap.add_argument("--layers", type=int, help="(B, smoke) override num_hidden_layers of the text model")
    ap.add_argument("--vision-layers", type=int,
                    help="(B, smoke) override the vision depth (default with --layers: max(2, layers))")
    ap.add_argument("--shrink", action="store_true", help="(B, smoke only) small hidden sizes as well")
    ap.add_argument("--build-device", help="(B) device to build the random checkpoint on (default --device)")
    ap.add_argument("--keep", action="store_true", help="(B) keep the model dirs")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per subprocess")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    args.dtype = canonical_dtype(args.dtype)
    if not args.parity and not args.bench:
        ap.error("nothing to do: pass --parity and/or --bench MODEL...")
    os.chdir(REPO)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    exe = Path(args.mla_bench)
    exe = exe if exe.is_absolute() else (Path.cwd() / exe)

    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, "gpu": gpu_info(),
               "versions": versions(), "mla_bench": str(exe)}
    log("gpu:", results["gpu"].replace("\n", " | "))
    log("versions:", json.dumps({k: results["versions"].get(k) for k in ("torch", "transformers", "PIL",
                                                                          "torchvision", "cuda_available")}))
    ours = Ours(exe, args.timeout)
    results["mla_bench_flags"] = ours.flags
    log("mla-bench generate flags:", ours.flags)

    def markdown():
        v = results["versions"]
        md = ["# vlm_gpu_check", "",
              f"GPU: {results['gpu'].replace(chr(10), ' / ')}", "",
              f"torch {v.get('torch')} (CUDA {v.get('torch_cuda')}), transformers {v.get('transformers')}, "
              f"Pillow {v.get('PIL')}, torchvision {v.get('torchvision')}, git {v.get('git_head')}", "",
              f"mla-bench: {results['mla_bench']} (generate flags: "
              f"{', '.join(k for k, x in ours.flags.items() if x)})", ""]
        if "parity" in results:
            md += [parity_markdown(results["parity"]), ""]
        if "bench" in results:
            md += [bench_markdown(results["bench"]), ""]
        return "\n".join(md)

    def flush():
        results["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        (out / "vlm_gpu_check.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        (out / "vlm_gpu_check.md").write_text(markdown() + "\n")

    flush()
    for step, fn in (("parity", run_parity if args.parity else None), ("bench", run_bench if args.bench else None)):
        if fn is None:
            continue
        try:
            fn(args, ours, results, flush)
        except Exception as e:
            results.setdefault("errors", []).append(f"{step}: {short_exc(e)}\n{traceback.format_exc()}")
            log(f"{step} failed:", short_exc(e))
        flush()
    print(markdown(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
