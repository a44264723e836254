#!/usr/bin/env python3
"""Convert the MHA2MLA-VLM authors' MKL rank files into safetensors that mlab's C++ code reads.

Usage:  convert_rank_files.py [--reference DIR] [--out DIR]

  --reference  the authors' method folder holding mkl/<model>/<model>-ranks.pth
               (default: ../shared/reference/mha2mla-vlm beside the repository)
  --out        where to write (default: configs/mha2mla/ranks in the repository)

Each .pth is a torch.save zip of one uint8 tensor [L, n_kv, 128] (specs/method.md §2.3): for every
(layer l, KV head g), rank[l, g, :64] is a permutation of 0..63 and rank[l, g, 64:] repeats it
(the rank of frequency f sits at dims f and f + 64). Rank 0 = most important; partial RoPE with r
kept dims keeps the frequencies with rank < r/2 (`partial_rope_mask`, mkl branch).

Writes <out>/<model>.safetensors for the three models, with one tensor "ranks" u8 [L, n_kv, 64]
(the first half only) and metadata: source file, sha256 of the .pth, model, shape, meaning.
Validation failures (dtype, shape, permutation, halves) abort with a message naming the file.
Run with the project's Python:  .venv/bin/python -I tools/convert_rank_files.py
"""
import argparse
import hashlib
import pathlib
import sys

import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "mha2mla-vlm"
DEFAULT_OUT = ROOT / "configs" / "mha2mla" / "ranks"

# (source relative to the reference folder, output name = the model's configs/models/<name>.json,
#  HF id, expected [L, n_kv, d_h] from specs/method.md §0)
FILES = [
    ("mkl/llava/llava-ranks.pth", "llava-1.5-7b-hf", "llava-hf/llava-1.5-7b-hf", (32, 32, 128)),
    ("mkl/llavanext/llavanext-ranks.pth", "llama3-llava-next-8b-hf",
     "llava-hf/llama3-llava-next-8b-hf", (32, 8, 128)),
    ("mkl/qwen2_5_vl/qwen2_5_vl-ranks.pth", "Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct",
     (28, 4, 128)),
]


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_ranks(path: pathlib.Path) -> torch.Tensor:
    """The rank tensor of an authors' .pth (weights_only: plain tensors, no code)."""
    t = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{path}: expected one tensor, got {type(t).__name__}")
    return t


def validate(path: pathlib.Path, t: torch.Tensor, shape) -> torch.Tensor:
    """Checks dtype, shape, permutation and the repeated half; returns u8 [L, n_kv, 64]."""
    if t.dtype != torch.uint8:
        raise ValueError(f"{path}: dtype {t.dtype}, expected torch.uint8")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{path}: shape {list(t.shape)}, expected {list(shape)}")
    half = shape[2] // 2
    first, second = t[..., :half], t[..., half:]
    if not torch.equal(first, second):
        bad = (first != second).any(-1).nonzero()[0].tolist()
        raise ValueError(f"{path}: rank[..., {half}:] != rank[..., :{half}] at (layer, kv head) {bad}")
    expected = torch.arange(half, dtype=torch.int64)
    sorted_ranks = first.to(torch.int64).sort(dim=-1).values
    ok = (sorted_ranks == expected).all(-1)
    if not bool(ok.all()):
        bad = (~ok).nonzero()[0].tolist()
        raise ValueError(f"{path}: rank[{bad[0]}, {bad[1]}, :{half}] is not a permutation of 0..{half - 1}")
    return first.contiguous()


def convert(reference: pathlib.Path, out: pathlib.Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for rel, name, hf_id, shape in FILES:
        src = reference / rel
        if not src.is_file():
            print(f"error: {src} not found", file=sys.stderr)
            return 1
        ranks = validate(src, load_ranks(src), shape)
        meta = {
            "source": f"JT-Ushio/MHA2MLA-VLM:{rel}",
            "source_sha256": sha256(src),
            "model": hf_id,
            "source_shape": str(list(shape)),
            "shape": str(list(ranks.shape)),
            "meaning": "rank[l, g, f] of frequency f (dims f and f + d_h/2) of KV head g in layer l; "
                       "rank 0 = most important; keep rank < r/2",
            "producer": "tools/convert_rank_files.py",
        }
        dst = out / f"{name}.safetensors"
        save_file({"ranks": ranks}, str(dst), metadata=meta)
        print(f"{dst.relative_to(ROOT) if dst.is_relative_to(ROOT) else dst}: ranks u8 {list(ranks.shape)} "
              f"from {rel} (sha256 {meta['source_sha256'][:16]}...)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", type=pathlib.Path, default=DEFAULT_REFERENCE)
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    a = p.parse_args()
    try:
        return convert(a.reference, a.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
