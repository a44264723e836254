#!/usr/bin/env python3
"""F7 acceptance 7 on the CUDA machine: decode tokens/s and peak memory of every KV-cache method of
`mla-bench generate --methods` beside transformers' caches (DynamicCache, QuantizedCache with the quanto
and HQQ backends) and kvpress's presses, on the same GPU in the same run: a random-weight model with the
real llama3-llava-next-8b-hf config (all 32 decoder layers unless --layers), bf16, batch 1, a text
context of exactly 4,096 and 16,384 tokens, 64 new tokens after a warm-up.

Steps (each one's result is kept in <work>/state.json; a second call with the same --work, or with
--resume FILE, skips what is done):
  1. wheels: --wheels DIR (tools/stage_deps.sh's .deps/wheels) installed with pip --no-deps --no-index
     into <work>/site, then this script re-executes itself with that on PYTHONPATH (children inherit it);
  2. --build DIR: mla-bench configured as tools/cuda/build.sh does, only the mla-bench target built, in
     the background (pinned off CPUs 0-1) while the GPU work of steps 3-5 runs;
  3. the model dir + random checkpoint (vlm_gpu_check.py's helpers; written by transformers);
  4. the prompts: input ids of exactly N tokens (BOS + a repeated English sentence) per context in
     <work>/ctx<N>.inputs.safetensors, replayed by both sides (`mla-bench generate --inputs`);
  5. the peers, in one Python process pinned to CPUs 0-1 (the model loaded once, sdpa; cuDNN SDPA off as
     in mla-bench): per config and context a warm-up generate(N+1), then a timed generate(N+1) whose logits
     processor stamps the (synchronised) time of every forward's logits: prefill = start to the first stamp,
     decode tok/s = N / (last stamp - first stamp); peak = torch.cuda.max_memory_allocated over that generate;
  6. the converted MLA model: `mla-bench convert --rope high --rope-dims 32 --d-kv 128 --svd weight`
     (no calibration: decode speed does not depend on the latent's initialisation; the shapes are F6's);
  7. ours: `mla-bench generate --inputs F --methods SPEC --warmup 1 --json`, one process per method and
     context (decode tok/s and prefill from the runtime's timers, peak = the caching allocator's peak
     over the measured generate, KV bytes from the caches);
  8. a control: the DynamicCache peer again, with the build finished (no CPU contention).
Results: <out>/methods_gpu.json and <out>/methods_gpu.md (also printed). A failing run is recorded as an
error row and the run goes on. --deadline stops starting new runs after that many seconds.

    python3 tools/cuda/methods_gpu_check.py --build build-gpu --wheels .deps/wheels --out $OUT --deadline 540
    # CPU smoke test (tiny widths, real vocabulary, 2 layers)
    python3 tools/cuda/methods_gpu_check.py --mla-bench build/mla-bench --out /tmp/o --device cpu \\
        --dtype float32 --layers 2 --shrink --contexts 256 512 --new-tokens 8 --d-kv 32 --rope-dims 16
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import vlm_gpu_check as vgc  # noqa: E402  (model dir, random checkpoint, transformers helpers)

NAME = "llama3-llava-next-8b-hf"
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat watches from the window. "
SITE_ENV = "MLAB_F7_SITE"

# Ours: (label, spec, needs the converted model). The specs are the issue's; the JSON keeps the
# resolved spec mla-bench prints.
OURS = [
    ("full", "full", False),
    ("quanto:bits=4", "quanto:bits=4", False),
    ("quanto:bits=2", "quanto:bits=2", False),
    ("hqq:bits=4", "hqq:bits=4", False),
    ("hqq:bits=2", "hqq:bits=2", False),
    ("h2o:budget=0.375", "h2o:budget=0.375", False),
    ("tova:budget=0.375", "tova:budget=0.375", False),
    ("streaming_llm:budget=0.375", "streaming_llm:budget=0.375", False),
    ("mha2mla", "mha2mla", True),
    ("mha2mla+quanto:bits=4", "mha2mla+quanto:bits=4", True),
    ("mha2mla+quanto:bits=4,target=kv", "mha2mla+quanto:bits=4,target=kv", True),
    ("mha2mla+h2o:budget=0.375", "mha2mla+h2o:budget=0.375", True),
]

# Peers: transformers' caches (QuantizedCache with transformers 5.24's cache_config keys and defaults:
# q_group_size 64, residual_length 128, axis 0) and kvpress presses at compression_ratio 0.625 (keeps
# 37.5%, ours' budget=0.375).
QUANT = {"q_group_size": 64, "residual_length": 128, "axis_key": 0, "axis_value": 0}
PEERS = {   # run in this order (the int2 caches and the eager press last: the first to go at a deadline)
    "hf-dynamic": {"doc": "transformers DynamicCache (sdpa)"},
    "hf-quanto-4": {"cache": dict(QUANT, backend="quanto", nbits=4), "doc": "QuantizedCache quanto int4"},
    "hf-hqq-4": {"cache": dict(QUANT, backend="hqq", nbits=4), "doc": "QuantizedCache HQQ int4"},
    "kvpress-streaming_llm": {"press": "StreamingLLMPress", "doc": "kvpress StreamingLLMPress(0.625)"},
    "kvpress-tova": {"press": "TOVAPress", "doc": "kvpress TOVAPress(0.625)"},
    "kvpress-expected_attention": {"press": "ExpectedAttentionPress",
                                   "doc": "kvpress ExpectedAttentionPress(0.625)"},
    "hf-quanto-2": {"cache": dict(QUANT, backend="quanto", nbits=2), "doc": "QuantizedCache quanto int2"},
    "hf-hqq-2": {"cache": dict(QUANT, backend="hqq", nbits=2), "doc": "QuantizedCache HQQ int2"},
    "kvpress-observed_attention": {"press": "ObservedAttentionPress", "attn": "eager",
                                   "doc": "kvpress ObservedAttentionPress(0.625), eager attention"},
}
COMPRESSION = 0.625

# Which peer a row of ours is compared with ("vs transformers' same-kind cache").
SAME_KIND = {
    "full": "hf-dynamic", "quanto:bits=4": "hf-quanto-4", "quanto:bits=2": "hf-quanto-2",
    "hqq:bits=4": "hf-hqq-4", "hqq:bits=2": "hf-hqq-2", "h2o:budget=0.375": "kvpress-observed_attention",
    "tova:budget=0.375": "kvpress-tova", "streaming_llm:budget=0.375": "kvpress-streaming_llm",
    "mha2mla": "hf-dynamic", "mha2mla+quanto:bits=4": "hf-quanto-4",
    "mha2mla+quanto:bits=4,target=kv": "hf-quanto-4", "mha2mla+h2o:budget=0.375": "kvpress-observed_attention",
}


def log(*a):
    print("[methods_gpu]", *a, flush=True)


def short_exc(e):
    return f"{type(e).__name__}: {str(e).strip()[-1500:]}"


def gib(b):
    return "-" if b is None else f"{b / 2**30:.2f}"


def num(x, f="{:.1f}"):
    return "-" if x is None else f.format(x)


# ----------------------------------------------------------------------------------------------------------
# environment: wheels, build
# ----------------------------------------------------------------------------------------------------------
def install_wheels(wheels, work):
    """pip install --no-deps --no-index the staged wheels into <work>/site; re-exec with it on PYTHONPATH."""
    if os.environ.get(SITE_ENV):
        return
    site = Path(work) / "site"
    marker = site / ".installed"
    wl = sorted(str(p) for p in Path(wheels).glob("*.whl"))
    if not wl:
        raise SystemExit(f"--wheels {wheels}: no .whl files (run tools/stage_deps.sh and carry .deps)")
    if not marker.exists() or marker.read_text() != "\n".join(wl):
        log(f"installing {len(wl)} wheels into {site}")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                        "--no-index", "--no-compile", "--no-cache-dir", "--upgrade", "--target", str(site)] + wl,
                       check=True)
        marker.write_text("\n".join(wl))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env[SITE_ENV] = str(site)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def gpu_info():
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv"],
                           capture_output=True, text=True, timeout=60)
        return (p.stdout + p.stderr).strip()
    except Exception as e:      # no nvidia-smi (CPU machine)
        return f"nvidia-smi unavailable ({short_exc(e)})"


def other_cpus():
    n = os.cpu_count() or 1
    return set(range(2, n)) if n >= 8 else None


def start_build(build_dir, log_path):
    """tools/cuda/build.sh's configure, then only the mla-bench target, in the background."""
    py = sys.executable
    nvcc = subprocess.run(["bash", "-c", "command -v nvcc || echo /usr/local/cuda/bin/nvcc"], capture_output=True,
                          text=True).stdout.strip()
    gen = ["-G", "Ninja"] if subprocess.run(["bash", "-c", "command -v ninja"], capture_output=True).returncode == 0 \
        else []
    cpus = other_cpus()
    jobs = len(cpus) if cpus else (os.cpu_count() or 2)
    script = (f"set -e; cmake -S {REPO} -B {build_dir} {' '.join(gen)} -DCMAKE_BUILD_TYPE=Release -DMLAB_CUDA=ON "
              f"-DMLAB_PYTHON={py} -DCMAKE_CUDA_COMPILER={nvcc} -DMLAB_CUDA_ARCHITECTURES=90; "
              f"cmake --build {build_dir} --target mla-bench -j{jobs}")
    env = dict(os.environ, TORCH_CUDA_ARCH_LIST=os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0"), NCCL_NVLS_ENABLE="0")
    f = open(log_path, "w")
    log(f"build (background, {jobs} jobs{', CPUs 2-' + str(max(cpus)) if cpus else ''}): {script}")
    return subprocess.Popen(["bash", "-c", script], stdout=f, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)


QUANTO_UNPACK_PYBIND = """#include <torch/extension.h>
#include "unpack.h"
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("unpack", &unpack, "unpack"); }
"""


def quanto_unpack_lib(build_dir, notes):
    """optimum-quanto's CUDA unpack kernel (its own unpack.cu) built alone and bound where quanto looks.

    On CUDA, quanto's dequantize calls torch.ops.quanto.unpack, whose CUDA implementation JIT-builds the whole
    quanto_cuda extension (AWQ and Marlin GEMMs too, minutes of nvcc) at first use. The KV cache needs only
    unpack: its source is compiled alone (seconds) and set as that extension's library, so transformers'
    quanto cache runs quanto's own CUDA kernel. Falls back to quanto's pure-torch unpack if the build fails."""
    import optimum.quanto  # noqa: F401  (registers the extensions)
    from optimum.quanto.library.extensions import get_extension
    ext = get_extension("quanto_cuda")
    cuda_dir = Path(ext.sources[0]).parent
    Path(build_dir).mkdir(parents=True, exist_ok=True)
    pyb = Path(build_dir) / "unpack_pybind.cpp"
    if not pyb.exists() or pyb.read_text() != QUANTO_UNPACK_PYBIND:
        pyb.write_text(QUANTO_UNPACK_PYBIND)
    try:
        from torch.utils.cpp_extension import load
        t0 = time.time()
        arch = [f for f in ext.extra_cuda_cflags if f.startswith("-DQUANTO_CUDA_ARCH")]
        lib = load(name="mlab_quanto_unpack", sources=[str(cuda_dir / "unpack.cu"), str(pyb)],
                   extra_include_paths=[str(cuda_dir)], extra_cflags=["-O3"],
                   extra_cuda_cflags=["--expt-extended-lambda", "--use_fast_math"] + arch,
                   build_directory=str(build_dir), verbose=False)
        ext._lib = lib
        notes.append(f"quanto: its CUDA unpack kernel (unpack.cu) built alone in {time.time() - t0:.1f} s and "
                     "bound as quanto_cuda's library (the AWQ/Marlin GEMMs of that extension are not used by "
                     "the KV cache)")
    except Exception as e:
        from types import SimpleNamespace
        from optimum.quanto.library.unpack import unpack
        ext._lib = SimpleNamespace(unpack=unpack)
        notes.append(f"quanto: building its CUDA unpack kernel failed ({short_exc(e)[:300]}); quanto's pure-torch "
                     "unpack used instead")


def cmd_quanto_build(argv):
    """Hidden subcommand: prebuild the quanto unpack kernel (run in the background while the GPU is busy)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    notes = []
    quanto_unpack_lib(a.dir, notes)
    print("\n".join(notes), flush=True)


# ----------------------------------------------------------------------------------------------------------
# model dir, inputs
# ----------------------------------------------------------------------------------------------------------
def make_inputs(model_dir, contexts, work):
    """Exactly N tokens per context: BOS + the sentence repeated (the model dir's tokenizer)."""
    import torch
    import tokenizers
    from safetensors.torch import save_file
    tok = tokenizers.Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    body = tok.encode(SENTENCE, add_special_tokens=False).ids
    bos = vgc.BENCH_MODELS[NAME]["generation"]["bos_token_id"]
    files = {}
    for n in contexts:
        f = Path(work) / f"ctx{n}.inputs.safetensors"
        ids = ([bos] + body * (n // len(body) + 1))[:n]
        t = torch.tensor([ids], dtype=torch.long)
        save_file({"input_ids": t, "attention_mask": torch.ones_like(t)}, str(f),
                  metadata={"producer": "tools/cuda/methods_gpu_check.py", "tokens": str(n)})
        files[n] = f
    return files


# ----------------------------------------------------------------------------------------------------------
# peers (hidden subcommand, one process)
# ----------------------------------------------------------------------------------------------------------
def tensor_bytes(obj, seen=None):
    """Bytes of every tensor reachable from a cache layer (quanto's subclass tensors through their parts)."""
    import torch
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if hasattr(obj, "__tensor_flatten__") and type(obj) is not torch.Tensor:
            names, _ = obj.__tensor_flatten__()
            return sum(tensor_bytes(getattr(obj, n), seen) for n in names)
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v, seen) for v in obj)
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith(("transformers", "hqq", "optimum")):
        return sum(tensor_bytes(v, seen) for k, v in vars(obj).items() if k not in ("config",))
    return 0


def cache_bytes(cache):
    if cache is None:
        return None
    layers = getattr(cache, "layers", None)
    if layers is None:
        return None
    return sum(tensor_bytes(layer) for layer in layers)


def cache_tokens(cache):
    try:
        return int(cache.get_seq_length(0))
    except Exception:
        return None


def adapt_press(press, notes):
    """kvpress 0.5.5 targets transformers < 5.3: its forward hook reads the attention kwargs
    `past_key_values` and `cache_position`, which transformers 5.24 renamed to `cache` and dropped. The hook is
    wrapped to supply both (cache_position = the positions of this forward's queries, from the cache's length
    after the forward stored them); the press's own code runs unchanged."""
    import torch
    orig = press.forward_hook

    def hook(module, args, kwargs, output):
        if "past_key_values" in kwargs and "cache_position" in kwargs:
            return orig(module, args, kwargs, output)
        kw = dict(kwargs)
        cache = kw.get("past_key_values", kw.get("cache"))
        kw["past_key_values"] = cache
        if "cache_position" not in kw:
            q_len = kw["hidden_states"].shape[1]
            n = cache.get_seq_length(module.layer_idx)
            kw["cache_position"] = torch.arange(n - q_len, n, device=kw["hidden_states"].device)
        return orig(module, args, kw, output)

    press.forward_hook = hook
    n = ("kvpress 0.5.5 (pins transformers < 5.3) runs under transformers 5.24 through a shim: its hook gets the "
         "renamed `cache` kwarg as `past_key_values` and a `cache_position` derived from the cache length")
    if n not in notes:
        notes.append(n)
    return press


def cmd_peers(argv):
    ap = argparse.ArgumentParser(prog="methods_gpu_check.py _peers")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--inputs", nargs="+", required=True, help="N=FILE")
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--quanto-build", default="")
    ap.add_argument("--deadline-at", type=float, default=0)
    ap.add_argument("--result", required=True)
    a = ap.parse_args(argv)
    import contextlib
    import torch
    import transformers
    res = {"notes": [], "runs": {}, "versions": {"transformers": transformers.__version__}}
    cuda = a.device.startswith("cuda")

    def flush():
        vgc.write_json(a.result, res)

    for mod in ("optimum.quanto", "hqq", "kvpress", "tokenizers", "huggingface_hub"):
        try:
            import importlib.metadata as md
            res["versions"][mod] = md.version({"optimum.quanto": "optimum-quanto"}.get(mod, mod))
        except Exception as e:
            res["versions"][mod] = f"? ({short_exc(e)[:100]})"
    if cuda:
        torch.backends.cuda.enable_cudnn_sdp(False)
        res["notes"].append("cuDNN SDPA off (torch.backends.cuda.enable_cudnn_sdp(False)), as mla-bench does on "
                            "CUDA: with it every new key length builds a plan (docs/measurements/f5_h100.md)")
        if any(PEERS[c].get("cache", {}).get("backend") == "quanto" for c in a.configs):
            quanto_unpack_lib(a.quanto_build or "/tmp/mlab_quanto_unpack", res["notes"])
    dtype = vgc.torch_dtype(a.dtype)
    t0 = time.time()
    model = vgc.hf_load(a.dir, dtype, a.device, "sdpa", res["notes"])
    vgc.sync(a.device)
    res["load_seconds"] = time.time() - t0
    res["model_class"] = type(model).__name__
    if cuda:
        res["weights_bytes"] = torch.cuda.memory_allocated()
    inputs = {}
    for spec in a.inputs:
        n, f = spec.split("=", 1)
        t, _ = vgc.read_st(f)
        inputs[int(n)] = {"input_ids": t["input_ids"].long().to(a.device),
                          "attention_mask": t["attention_mask"].long().to(a.device)}
    n_new = a.new_tokens
    kvpress = None
    for name in a.configs:
        cfg = PEERS[name]
        for ctx, inp in inputs.items():
            key = f"{name}@{ctx}"
            if a.deadline_at and time.time() > a.deadline_at:
                res["runs"][key] = {"skipped": "deadline"}
                continue
            r = {"config": name, "doc": cfg["doc"], "context": ctx, "notes": []}
            res["runs"][key] = r
            try:
                extra = {}
                if "cache" in cfg:
                    extra = {"cache_implementation": "quantized", "cache_config": dict(cfg["cache"])}
                press = None
                if "press" in cfg:
                    if kvpress is None:
                        # imported last: kvpress patches transformers' attention functions at import
                        kvpress = vgc_import_kvpress(res["notes"])
                    kw = {"compression_ratio": COMPRESSION}
                    if cfg["press"] == "StreamingLLMPress":
                        kw["n_sink"] = 4
                    press = adapt_press(getattr(kvpress, cfg["press"])(**kw), res["notes"])
                    r["press"] = repr(press)
                attn = cfg.get("attn", "sdpa")
                if attn != "sdpa":
                    model.set_attn_implementation(attn)
                try:
                    def gen(n):
                        """generate(n) with a per-step clock: a logits processor synchronises and reads the time
                        each time a forward's logits arrive (after the prefill, then after every decode step)."""
                        g = vgc.gen_config(model, n, n)
                        stamps = []

                        def stamp(input_ids, scores):
                            vgc.sync(a.device)
                            stamps.append(time.perf_counter())
                            return scores
                        lp = transformers.LogitsProcessorList([stamp])
                        ctxm = press(model) if press is not None else contextlib.nullcontext()
                        vgc.sync(a.device)
                        t = time.perf_counter()
                        with torch.no_grad(), ctxm:
                            out = model.generate(**inp, generation_config=g, logits_processor=lp,
                                                 return_dict_in_generate=True, **extra)
                        vgc.sync(a.device)
                        return out, t, stamps, time.perf_counter() - t

                    out, _, _, tw = gen(n_new + 1)                     # warm-up
                    r["warmup_seconds"] = tw
                    del out
                    if cuda:
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats()
                        r["memory_before_bytes"] = torch.cuda.memory_allocated()
                    out, t0, stamps, tn = gen(n_new + 1)
                    if cuda:
                        r["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
                    new = out.sequences.shape[1] - inp["input_ids"].shape[1]
                    steps = len(stamps) - 1
                    dec = stamps[-1] - stamps[0]
                    r.update(prompt_length=int(inp["input_ids"].shape[1]), generated=int(new),
                             prefill_seconds=stamps[0] - t0, generate_seconds=tn, decode_steps=steps,
                             decode_seconds=dec, decode_tokens_per_second=(steps / dec) if dec > 0 else None,
                             cache_class=type(out.past_key_values).__name__,
                             kv_bytes=cache_bytes(out.past_key_values), kv_tokens=cache_tokens(out.past_key_values))
                    if new != n_new + 1:
                        r["notes"].append(f"generate returned {new} new tokens, asked {n_new + 1}")
                    del out
                finally:
                    if attn != "sdpa":
                        model.set_attn_implementation("sdpa")
                log(f"  peer {key}: prefill {r['prefill_seconds']:.3f} s, decode "
                    f"{num(r['decode_tokens_per_second'])} tok/s, peak {gib(r.get('peak_memory_bytes'))} GiB, "
                    f"KV {r.get('kv_bytes')} B ({r.get('kv_tokens')} tokens)")
            except Exception as e:
                r["error"] = short_exc(e)
                r["traceback"] = traceback.format_exc()[-3000:]
                log(f"  peer {key} failed: {short_exc(e)[:600]}")
            if cuda:
                torch.cuda.empty_cache()
            flush()
    flush()


def vgc_import_kvpress(notes):
    """kvpress imports `datasets` at module scope for two presses not run here; stub it if it cannot load."""
    try:
        import datasets  # noqa: F401
    except Exception as e:
        import types
        stub = types.ModuleType("datasets")

        def load_dataset(*a, **k):
            raise RuntimeError("datasets is not importable here (stubbed for kvpress)")
        stub.load_dataset = load_dataset
        sys.modules["datasets"] = stub
        notes.append(f"datasets not importable ({short_exc(e)[:200]}): stubbed for kvpress (only DuoAttention and "
                     "ExpectedAttentionStats presses use it)")
    import kvpress
    return kvpress


# ----------------------------------------------------------------------------------------------------------
# ours
# ----------------------------------------------------------------------------------------------------------
def run_ours(exe, model_dir, inputs, spec, a, timeout):
    cmd = [str(exe), "generate", "--model", str(model_dir), "--inputs", str(inputs), "--device", a.device,
           "--dtype", a.dtype, "--max-new-tokens", str(a.new_tokens + 1), "--no-eos", "--warmup", "1", "--json",
           "--methods", spec]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"mla-bench exit {p.returncode} after {wall:.1f}s: {(p.stderr or p.stdout).strip()[-1500:]}")
    js = None
    for line in reversed(p.stdout.splitlines()):
        if line.strip().startswith("{"):
            js = json.loads(line)
            break
    if js is None:
        raise RuntimeError(f"mla-bench printed no JSON: {p.stdout[-500:]}")
    js = {k: v for k, v in js.items() if k not in ("text", "texts", "tokens", "all_tokens")}
    js["wall_seconds"] = wall
    js["command"] = " ".join(cmd)
    return js


# ----------------------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------------------
def markdown(state):
    v = state.get("versions", {})
    pv = state.get("peer_versions", {})
    lines = [f"# F7: KV-cache methods on {state.get('gpu_name', '?')} — {NAME} (random weights)", "",
             f"GPU: {state.get('gpu', '?')}", "",
             f"torch {v.get('torch')} (CUDA {v.get('torch_cuda')}), transformers {pv.get('transformers')}, "
             f"optimum-quanto {pv.get('optimum.quanto')}, hqq {pv.get('hqq')}, kvpress {pv.get('kvpress')}, "
             f"git {v.get('git_head')}", ""]
    b = state.get("build_checkpoint", {})
    if b:
        lines.append(f"checkpoint: {b.get('parameters', 0) / 1e9:.3f}B parameters, "
                     f"{b.get('checkpoint_bytes', 0) / 2**30:.2f} GiB"
                     + (f", overrides {state.get('config_overrides')}" if state.get("config_overrides") else "")
                     + f"; {state.get('dtype')}, batch 1, {state.get('new_tokens')} new tokens after a warm-up")
        lines.append("")
    c = state.get("convert")
    if c:
        lines += [f"converted: {c.get('summary', '')}", ""]
    lines += ["| method | context | prefill s | decode tok/s | peak GiB | peak - before GiB | KV bytes (end) | "
              "KV tokens | vs | decode x | peak - before x | KV x |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    peers = state.get("peers", {})
    ours = state.get("ours", {})
    contexts = state.get("contexts", [])

    def over(r):
        p, b0 = r.get("peak_memory_bytes"), r.get("memory_before_bytes")
        return None if p is None or b0 is None else p - b0

    def ratio(x, y):
        return None if x is None or y is None or y == 0 else x / y

    for ctx in contexts:
        for label, _, _ in OURS:
            r = ours.get(f"{label}@{ctx}")
            if r is None:
                continue
            ref_name = SAME_KIND.get(label)
            ref = peers.get(f"{ref_name}@{ctx}", {})
            if "error" in r or "skipped" in r:
                lines.append(f"| ours {label} | {ctx} | {'error: ' + r['error'][:300] if 'error' in r else 'skipped: ' + r['skipped']} "
                             "| | | | | | | | | |")
                continue
            ok = ref and "error" not in ref and "skipped" not in ref
            lines.append(
                f"| ours {label} | {r.get('prompt_length')} | {num(r.get('prefill_seconds'), '{:.3f}')} | "
                f"{num(r.get('decode_tokens_per_second'))} | {gib(r.get('peak_memory_bytes'))} | {gib(over(r))} | "
                f"{r.get('kv_bytes', 0):,} | {r.get('kv_tokens', '-')} | {ref_name} | "
                f"{num(ratio(r.get('decode_tokens_per_second'), ref.get('decode_tokens_per_second')) if ok else None, '{:.2f}')} | "
                f"{num(ratio(over(r), over(ref)) if ok else None, '{:.2f}')} | "
                f"{num(ratio(r.get('kv_bytes'), ref.get('kv_bytes')) if ok else None, '{:.2f}')} |")
        for name in PEERS:
            for key in (f"{name}@{ctx}", f"{name}@{ctx}/control"):
                r = peers.get(key)
                if r is None:
                    continue
                label = name + (" (control, after the build)" if key.endswith("/control") else "")
                if "error" in r or "skipped" in r:
                    msg = ("error: " + r["error"][:300]) if "error" in r else ("skipped: " + r["skipped"])
                    lines.append(f"| {label} | {ctx} | {msg.replace('|', '/').replace(chr(10), ' ')} | | | | | | | | | |")
                    continue
                kvb = r.get("kv_bytes")
                lines.append(f"| {label} | {r.get('prompt_length')} | {num(r.get('prefill_seconds'), '{:.3f}')} | "
                             f"{num(r.get('decode_tokens_per_second'))} | {gib(r.get('peak_memory_bytes'))} | "
                             f"{gib(over(r))} | {'-' if kvb is None else f'{kvb:,}'} | {r.get('kv_tokens', '-')} | "
                             "| | | |")
    notes = state.get("notes", []) + [f"peers: {n}" for n in state.get("peer_notes", [])]
    for r in list(ours.values()) + list(peers.values()):
        for n in r.get("notes", []):
            notes.append(f"{r.get('config', r.get('method', '?'))}@{r.get('context', r.get('prompt_length'))}: {n}")
    if notes:
        lines += ["", "Notes:"] + [f"* {n}" for n in notes]
    errs = state.get("errors", [])
    if errs:
        lines += ["", "Errors:"] + [f"* {e[:1500]}" for e in errs]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------------------
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_peers":
        return cmd_peers(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "_quanto_build":
        return cmd_quanto_build(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mla-bench", help="the mla-bench binary (default: <--build>/mla-bench)")
    ap.add_argument("--build", help="build mla-bench into this dir first (CUDA; in the background)")
    ap.add_argument("--wheels", help="dir of staged wheels to install first (.deps/wheels)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/mlab_f7", type=Path)
    ap.add_argument("--resume", type=Path, help="a methods_gpu.json of an earlier call: its finished runs are kept")
    ap.add_argument("--tokenizers", default=None, help="dir with llama3.tokenizer.json.gz "
                    "(default: tools/cuda/tokenizers, else .deps/tokenizers from tools/stage_deps.sh)")
    ap.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--layers", type=int, help="decoder layers (default: the config's 32)")
    ap.add_argument("--shrink", action="store_true", help="(smoke only) small hidden sizes")
    ap.add_argument("--d-kv", type=int, default=128)
    ap.add_argument("--rope-dims", type=int, default=32)
    ap.add_argument("--ours", nargs="+", default=[o[0] for o in OURS], help="labels of OURS to run")
    ap.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    ap.add_argument("--no-control", action="store_true", help="skip the contention-free DynamicCache rerun")
    ap.add_argument("--deadline", type=float, default=0, help="start no new run after this many seconds (0: none)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per subprocess")
    a = ap.parse_args()
    a.dtype = vgc.canonical_dtype(a.dtype)
    a.work.mkdir(parents=True, exist_ok=True)
    if a.wheels:
        install_wheels(a.wheels, a.work)
    t_start = time.time()
    deadline_at = t_start + a.deadline if a.deadline > 0 else 0
    os.chdir(REPO)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.tokenizers is None:
        a.tokenizers = vgc.default_tokenizers_dir()
    state_file = a.work / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if a.resume and a.resume.exists():
        old = json.loads(a.resume.read_text())
        for k in ("ours", "peers"):
            for key, r in old.get(k, {}).items():
                if "error" not in r and "skipped" not in r:
                    state.setdefault(k, {}).setdefault(key, r)
        state.setdefault("resumed_from", str(a.resume))
    state.update(contexts=a.contexts, new_tokens=a.new_tokens, dtype=a.dtype, device=a.device,
                 argv=sys.argv, gpu=gpu_info(), versions=vgc.versions())
    state["gpu_name"] = state["versions"].get("gpu", a.device)
    state.setdefault("notes", [])
    state.setdefault("errors", [])
    state.setdefault("calls", []).append({"started": time.strftime("%Y-%m-%d %H:%M:%S")})
    state.setdefault("ours", {})
    state.setdefault("peers", {})

    def flush():
        state["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        state["calls"][-1]["seconds"] = time.time() - t_start
        text = json.dumps(state, indent=1, default=str) + "\n"
        state_file.write_text(text)
        (a.out / "methods_gpu.json").write_text(text)
        (a.out / "methods_gpu.md").write_text(markdown(state) + "\n")

    def note(n):
        if n not in state["notes"]:
            state["notes"].append(n)

    def left():
        return not deadline_at or time.time() < deadline_at

    flush()
    log("gpu:", state["gpu"].replace("\n", " | "))
    # 2. build (background) + quanto unpack kernel (background)
    build = None
    exe = Path(a.mla_bench) if a.mla_bench else (Path(a.build) / "mla-bench" if a.build else REPO / "build/mla-bench")
    exe = exe if exe.is_absolute() else REPO / exe
    if a.build:
        build = start_build(a.build, a.out / "build.log")
    qbuild = None
    if a.device.startswith("cuda") and any(PEERS[p].get("cache", {}).get("backend") == "quanto" for p in a.peers):
        cpus = other_cpus()
        qbuild = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_quanto_build", "--dir",
                                   str(a.work / "quanto_unpack")], stdout=open(a.out / "quanto_build.log", "w"),
                                  stderr=subprocess.STDOUT,
                                  preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    try:
        # 3. model dir + checkpoint
        d = a.work / NAME
        if not (d / "model.safetensors.index.json").exists() and not (d / "model.safetensors").exists():
            info = {}
            args = argparse.Namespace(layers=a.layers, vision_layers=None, shrink=a.shrink, tokenizers=a.tokenizers)
            vgc.make_model_dir(args, NAME, d, info)
            state["config_overrides"] = info.get("config_overrides")
            bj = a.work / "build_checkpoint.json"
            t0 = time.time()
            vgc.run_sub(["_build", "--dir", d, "--device", a.device, "--dtype", a.dtype, "--result", bj], a.timeout,
                        "checkpoint")
            vgc.write_json(d / "generation_config.json", dict(vgc.BENCH_MODELS[NAME]["generation"]))
            state["build_checkpoint"] = {k: v for k, v in json.loads(bj.read_text()).items()
                                         if k != "transformers_config_json"}
            state["build_checkpoint"]["wall_seconds"] = time.time() - t0
            flush()
        # 4. inputs
        files = make_inputs(d, a.contexts, a.work)
        # 5. peers, while the build runs
        peer_result = a.work / "peers.json"

        def run_peers(configs, suffix, pin):
            todo = [c for c in configs if any(f"{c}@{n}{suffix}" not in state["peers"] for n in a.contexts)]
            if not todo or not left():
                return
            if qbuild is not None:
                qbuild.wait()
            if peer_result.exists():
                peer_result.unlink()
            cmd = [sys.executable, str(Path(__file__).resolve()), "_peers", "--dir", str(d), "--inputs"] + \
                  [f"{n}={f}" for n, f in files.items()] + ["--configs"] + todo + \
                  ["--new-tokens", str(a.new_tokens), "--device", a.device, "--dtype", a.dtype, "--quanto-build",
                   str(a.work / "quanto_unpack"), "--deadline-at", str(deadline_at), "--result", str(peer_result)]
            log("peers:", " ".join(todo) + (" (CPUs 0-1)" if pin else ""))
            pin_set = {0, 1} if pin and other_cpus() else None
            try:
                p = subprocess.run(cmd, timeout=max(60, (deadline_at - time.time() + 120) if deadline_at else 3600),
                                   preexec_fn=(lambda: os.sched_setaffinity(0, pin_set)) if pin_set else None)
                if p.returncode != 0:
                    state["errors"].append(f"peers process exit {p.returncode}")
            except subprocess.TimeoutExpired:
                state["errors"].append("peers process timed out")
            if peer_result.exists():
                pr = json.loads(peer_result.read_text())
                state["peer_versions"] = pr.get("versions", {})
                for n in pr.get("notes", []):
                    if n not in state.setdefault("peer_notes", []):
                        state["peer_notes"].append(n)
                state.setdefault("peer_load", []).append({"load_seconds": pr.get("load_seconds"),
                                                          "weights_bytes": pr.get("weights_bytes"), "suffix": suffix})
                for key, r in pr.get("runs", {}).items():
                    state["peers"][key + suffix] = r
            flush()

        run_peers(a.peers, "", pin=build is not None and build.poll() is None)
        if build is not None and state["peers"]:
            note("the peers ran pinned to CPUs 0-1 while mla-bench compiled on the other CPUs (GPU idle "
                 "otherwise); the 'control' DynamicCache rows reran after the build")
        # 6. build done?
        if build is not None:
            rc = build.wait()
            state["build_rc"] = rc
            state["build_seconds"] = time.time() - t_start
            log(f"build rc={rc} after {state['build_seconds']:.0f} s")
            if rc != 0:
                tail = (a.out / "build.log").read_text()[-3000:]
                raise RuntimeError(f"mla-bench build failed rc={rc}: {tail}")
            flush()
        # 7. converted model
        mla = a.work / f"{NAME}-mla{a.d_kv}"
        need_mla = any(o[2] and o[0] in a.ours for o in OURS)
        if need_mla and not (mla / "config.json").exists() and left():
            t0 = time.time()
            rep = a.work / "convert_report.json"
            cmd = [str(exe), "convert", "--model", str(d), "--out", str(mla), "--rope", "high", "--rope-dims",
                   str(a.rope_dims), "--d-kv", str(a.d_kv), "--svd", "weight", "--device", a.device, "--dtype", a.dtype,
                   "--report", str(rep)]
            log("convert:", " ".join(cmd))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
            if p.returncode != 0:
                raise RuntimeError(f"convert failed rc={p.returncode}: {(p.stderr or p.stdout)[-2000:]}")
            state["convert"] = {"wall_seconds": time.time() - t0, "command": " ".join(cmd),
                                "stdout_tail": p.stdout[-1500:],
                                "summary": f"`mla-bench convert --rope high --rope-dims {a.rope_dims} --d-kv {a.d_kv} "
                                           f"--svd weight` in {time.time() - t0:.1f} s (no calibration data: the "
                                           "latent's values do not change decode speed; the shapes are F6's)"}
            flush()
        # 8. ours
        for ctx in a.contexts:
            for label, spec, on_mla in OURS:
                if label not in a.ours:
                    continue
                key = f"{label}@{ctx}"
                if key in state["ours"] and "error" not in state["ours"][key] and "skipped" not in state["ours"][key]:
                    continue
                if not left():
                    state["ours"][key] = {"skipped": "deadline", "method": label, "context": ctx}
                    continue
                try:
                    r = run_ours(exe, mla if on_mla else d, files[ctx], spec, a, a.timeout)
                    r.update(label=label, context=ctx, notes=[])
                    state["ours"][key] = r
                    log(f"  ours {key}: prefill {r['prefill_seconds']:.3f} s, decode "
                        f"{r['decode_tokens_per_second']:.1f} tok/s, peak {gib(r.get('peak_memory_bytes'))} GiB, "
                        f"KV {r['kv_bytes']} B ({r.get('kv_tokens')} tokens), wall {r['wall_seconds']:.1f} s")
                except Exception as e:
                    state["ours"][key] = {"error": short_exc(e), "method": label, "context": ctx}
                    log(f"  ours {key} failed: {short_exc(e)[:600]}")
                flush()
        # 9. control: the DynamicCache peer without the build running
        if build is not None and not a.no_control and "hf-dynamic" in a.peers:
            run_peers(["hf-dynamic"], "/control", pin=False)
    except Exception as e:
        state["errors"].append(f"{short_exc(e)}\n{traceback.format_exc()[-2000:]}")
        log("failed:", short_exc(e)[:1500])
    finally:
        for p in (build, qbuild):
            if p is not None and p.poll() is None:
                p.wait()
    flush()
    print(markdown(state), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main() or 0)
