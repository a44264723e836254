#!/usr/bin/env python3
"""A synthetic calibration dataset dir (docs/formats.md, POPE schema) for `mla-bench convert --calib`
when no real data is at hand (the CUDA machine has no network): N samples, each an image of random
coloured shapes (sizes and aspect ratios vary, so LLaVA-NeXT tiles and Qwen grids vary) and a
question about it. Deterministic for a seed. Usage:
    python3 tools/make_calib_dataset.py --out DIR [--samples 512] [--seed 0]
"""
import argparse
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

OBJECTS = ["dog", "cat", "car", "person", "chair", "bus", "tree", "ball", "umbrella", "bicycle"]
SIZES = [(336, 336), (640, 480), (480, 640), (1000, 200), (200, 600), (512, 384), (800, 800)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    (a.out / "images").mkdir(parents=True, exist_ok=True)
    with open(a.out / "samples.jsonl", "w") as f:
        for i in range(a.samples):
            w, h = rng.choice(SIZES)
            img = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
            d = ImageDraw.Draw(img)
            for _ in range(rng.randrange(3, 12)):
                x0, y0 = rng.randrange(w), rng.randrange(h)
                x1, y1 = x0 + rng.randrange(10, w // 2 + 11), y0 + rng.randrange(10, h // 2 + 11)
                shape = d.ellipse if rng.random() < 0.5 else d.rectangle
                shape([x0, y0, x1, y1], fill=tuple(rng.randrange(256) for _ in range(3)))
            img.save(a.out / "images" / f"{i}.png")
            obj = rng.choice(OBJECTS)
            doc = {"id": str(i), "question_id": str(i + 1), "question": f"Is there a {obj} in the image?",
                   "answer": rng.choice(["yes", "no"]), "image_source": "synthetic", "category": "random"}
            f.write(json.dumps({"id": str(i + 1), "images": [f"images/{i}.png"], "doc": doc}) + "\n")
    meta = {"format": "mla-bench-dataset", "version": 1, "task": "pope",
            "source": {"generator": "tools/make_calib_dataset.py", "seed": a.seed}, "samples": a.samples}
    (a.out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {a.samples} samples to {a.out}")


if __name__ == "__main__":
    main()
