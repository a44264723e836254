#!/usr/bin/env python3
"""Export the Hugging Face datasets lmms-eval evaluates on into MLA-Bench dataset dirs (issue F4).

A dataset dir (docs/formats.md) is dataset.json + samples.jsonl + images/. Each sample line is
{"id", "images", "doc"} where "doc" is the row in lmms-eval's schema without its image columns and
the images are written with their ORIGINAL encoded bytes (no re-encoding, so the pixels the C++
side decodes are the pixels PIL decodes in lmms-eval).

Sources, per task (the lmms-lab/* repositories of specs/benchmarks.md §1):
  ai2d          lmms-lab/ai2d               split test
  gqa           lmms-lab/GQA                config testdev_balanced_instructions, split testdev
                                            (+ images from config testdev_balanced_images)
  pope          lmms-lab/POPE               split test
  seedbench     lmms-lab/SEED-Bench         split test  (image: a LIST of images; video docs
                                            have all frames; --image-only drops video docs)
  realworldqa   lmms-lab/RealWorldQA        split test
  mmbench_en_dev lmms-lab/MMBench           config en, split dev
  chartqa       lmms-lab/ChartQA            split test
  docvqa_val    lmms-lab/DocVQA             config DocVQA, split validation

Usage:
  # with hub access (needs `datasets`; HF_TOKEN for gated sets):
  python tools/export_datasets.py --task docvqa_val --out data/docvqa_val
  # from local parquet files (needs pyarrow only), e.g. a mirror of the repositories:
  python tools/export_datasets.py --task gqa --parquet q-*.parquet --images-parquet img-*.parquet --out data/gqa
Options: --limit N (first N rows), --image-only (SEED-Bench).
"""
import argparse
import json
import math
import sys
from pathlib import Path

TASKS = {
    "ai2d": {"hf_path": "lmms-lab/ai2d", "hf_config": None, "split": "test", "id": None},
    "gqa": {"hf_path": "lmms-lab/GQA", "hf_config": "testdev_balanced_instructions", "split": "testdev",
            "id": "id", "images_config": "testdev_balanced_images"},
    "pope": {"hf_path": "lmms-lab/POPE", "hf_config": None, "split": "test", "id": "question_id"},
    "seedbench": {"hf_path": "lmms-lab/SEED-Bench", "hf_config": None, "split": "test", "id": "question_id"},
    "realworldqa": {"hf_path": "lmms-lab/RealWorldQA", "hf_config": None, "split": "test", "id": None},
    "mmbench_en_dev": {"hf_path": "lmms-lab/MMBench", "hf_config": "en", "split": "dev", "id": "index"},
    "chartqa": {"hf_path": "lmms-lab/ChartQA", "hf_config": None, "split": "test", "id": None},
    "docvqa_val": {"hf_path": "lmms-lab/DocVQA", "hf_config": "DocVQA", "split": "validation", "id": "questionId"},
}


# --------------------------------------------------------------------------------------------
# row sources: dicts with image columns as {"bytes": b"...", "path": "..."} (HF's Image storage)
# --------------------------------------------------------------------------------------------
def parquet_rows(files):
    import pyarrow.parquet as pq
    for name in sorted(files):  # shard order = HF's file order
        parquet = pq.ParquetFile(name)
        for batch in parquet.iter_batches(batch_size=256):
            yield from batch.to_pylist()


def hub_rows(path, config, split):
    import datasets
    ds = datasets.load_dataset(path, config, split=split)
    for name, feature in ds.features.items():  # keep the encoded bytes: no PIL round trip
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feature, datasets.Sequence) and isinstance(feature.feature, datasets.Image):
            ds = ds.cast_column(name, datasets.Sequence(datasets.Image(decode=False)))
        elif isinstance(feature, list) and feature and isinstance(feature[0], datasets.Image):
            ds = ds.cast_column(name, [datasets.Image(decode=False)])
    yield from ds


def is_image(value):
    return isinstance(value, dict) and "bytes" in value and "path" in value


def is_image_column(value):
    return is_image(value) or (isinstance(value, list) and bool(value) and all(is_image(v) for v in value))


def image_extension(data):
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if data.startswith(b"BM"):
        return ".bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"


def json_value(value, where):
    """Row values as JSON: NaN -> null (pandas-style missing values), bytes rejected."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (bytes, bytearray)):
        raise SystemExit(f"{where}: binary value outside an image column")
    if isinstance(value, dict):
        return {k: json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, where) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


class Exporter:
    def __init__(self, task, out):
        self.task, self.out = task, Path(out)
        (self.out / "images").mkdir(parents=True, exist_ok=True)
        self.samples = (self.out / "samples.jsonl").open("w", encoding="utf-8")
        self.count = 0
        self.ids = set()

    def write_image(self, image, stem):
        data = image.get("bytes")
        if data is None:
            source = image.get("path")
            if not source or not Path(source).is_file():
                raise SystemExit(f"{self.task} {stem}: image has neither bytes nor a readable path")
            data = Path(source).read_bytes()
        name = f"images/{stem}{image_extension(data)}"
        path = self.out / name
        if not path.exists():
            path.write_bytes(data)
        return name

    def add(self, sample_id, images, doc):
        sample_id = str(sample_id)
        if sample_id in self.ids:
            raise SystemExit(f"{self.task}: duplicate id {sample_id!r}")
        self.ids.add(sample_id)
        line = {"id": sample_id, "images": images, "doc": doc}
        self.samples.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.count += 1

    def finish(self, source):
        self.samples.close()
        meta = {"format": "mla-bench-dataset", "version": 1, "task": self.task, "source": source,
                "samples": self.count}
        (self.out / "dataset.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        print(f"{self.out}: {self.count} samples")


def safe_stem(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def export(task, rows, out, image_rows=None, limit=None, image_only=False, source=None):
    spec = TASKS[task]
    exporter = Exporter(task, out)
    gqa_images = {}
    if task == "gqa":
        if image_rows is None:
            raise SystemExit("gqa: the images config (testdev_balanced_images) is required")
        for row in image_rows:
            gqa_images[str(row["id"])] = row["image"]
    for row_index, row in enumerate(rows):
        if limit is not None and exporter.count >= limit:
            break
        if task == "seedbench" and image_only and row.get("data_type") != "image":
            continue
        where = f"{task} row {row_index}"
        sample_id = row[spec["id"]] if spec["id"] else row_index
        stem = safe_stem(sample_id)
        images = []
        doc = {}
        for key, value in row.items():
            if is_image_column(value):
                values = value if isinstance(value, list) else [value]
                for k, image in enumerate(values):
                    images.append(exporter.write_image(image, stem if len(values) == 1 else f"{stem}_{k}"))
            elif key == "image" and (value is None or value == []):
                raise SystemExit(f"{where}: empty image column")
            else:
                doc[key] = json_value(value, f"{where}.{key}")
        if task == "gqa":
            image_id = str(row["imageId"])
            if image_id not in gqa_images:
                raise SystemExit(f"{where}: imageId {image_id!r} not in the images config")
            images.append(exporter.write_image(gqa_images[image_id], safe_stem(image_id)))
        if not images:
            raise SystemExit(f"{where}: no image column")
        exporter.add(sample_id, images, doc)
    exporter.finish(source or {"hf_path": spec["hf_path"], "hf_config": spec["hf_config"], "split": spec["split"]})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--out", required=True, help="dataset dir to write")
    parser.add_argument("--parquet", nargs="+", help="local parquet files of the split (else: the hub)")
    parser.add_argument("--images-parquet", nargs="+", help="GQA: parquet files of testdev_balanced_images")
    parser.add_argument("--limit", type=int, help="export the first N samples only")
    parser.add_argument("--image-only", action="store_true", help="SEED-Bench: drop video docs")
    args = parser.parse_args(argv)
    spec = TASKS[args.task]
    source = {"hf_path": spec["hf_path"], "hf_config": spec["hf_config"], "split": spec["split"]}
    if args.parquet:
        rows = parquet_rows(args.parquet)
        image_rows = parquet_rows(args.images_parquet) if args.images_parquet else None
        source["files"] = [Path(p).name for p in sorted(args.parquet)]
    else:
        rows = hub_rows(spec["hf_path"], spec["hf_config"], spec["split"])
        image_rows = hub_rows(spec["hf_path"], spec["images_config"], spec["split"]) if args.task == "gqa" else None
    if args.limit is not None:
        source["limit"] = args.limit
    if args.image_only:
        source["filter"] = "data_type == image"
    export(args.task, rows, args.out, image_rows, args.limit, args.image_only, source)


if __name__ == "__main__":
    sys.exit(main())
