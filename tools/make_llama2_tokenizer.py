#!/usr/bin/env python3
"""Builds a Hugging Face tokenizer.json for the LLaMA-1/2 vocabulary (the base of llava-1.5-7b /
Vicuna) from llama-tokenizer-js's packed data (vocabulary: base64 of the id-ordered tokens joined
by '\\n'; merges: base64 of little-endian uint16 id pairs in rank order, see its
data-conversion.py). The pipeline is the one of the Mistral-7B tokenizer.json (the converted
SentencePiece BPE of Llama-2): Prepend("▁") + Replace(" " -> "▁") normalizer, BPE with byte
fallback and fused unk, `<s> $A` template, Replace/ByteFallback/Fuse/Strip decoder.

Checks, unless --no-check:
  * the result loads in Python `tokenizers` and "Hello world" gives [1, 15043, 3186];
  * on a few thousand strings (no special tokens written inline) its ids equal those of
    llama-tokenizer-js's own encoder run under node.

Usage: .venv/bin/python tools/make_llama2_tokenizer.py
         [--js ../shared/tokenizers/llama-tokenizer-js/llama-tokenizer.js]
         [--out tests/data/tokenizers/llama2/tokenizer.json] [--no-check]
"""
import argparse
import base64
import json
import random
import re
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
META = "\u2581"


def read_js_data(js_path):
    text = Path(js_path).read_text(encoding="utf-8")
    def constant(name):
        m = re.search(r"const %s\s*=\s*\"([A-Za-z0-9+/=]+)\"" % name, text)
        if not m:
            sys.exit(f"{js_path}: constant {name} not found")
        return base64.b64decode(m.group(1))
    vocab = constant("llama_vocab_base64").decode("utf-8").split("\n")
    raw = constant("llama_merges_binary")
    ids = struct.unpack(f"<{len(raw) // 2}H", raw)
    merges = [(vocab[ids[i]], vocab[ids[i + 1]]) for i in range(0, len(ids), 2)]
    return vocab, merges


def build(vocab, merges):
    if len(vocab) != 32000 or vocab[:3] != ["<unk>", "<s>", "</s>"] or vocab[3] != "<0x00>":
        sys.exit(f"unexpected vocabulary: {len(vocab)} tokens, starts {vocab[:4]}")
    if len(set(vocab)) != len(vocab):
        sys.exit("vocabulary has duplicate tokens")
    special = lambda i, c: {"id": i, "content": c, "single_word": False, "lstrip": False,
                            "rstrip": False, "normalized": False, "special": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": META},
            {"type": "Replace", "pattern": {"String": " "}, "content": META}]},
        "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": META}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "<unk>",
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": True, "byte_fallback": True,
            "vocab": {tok: i for i, tok in enumerate(vocab)},
            "merges": [f"{a} {b}" for a, b in merges]},
    }


def check_strings(seed=1234, count=3000):
    rng = random.Random(seed)
    base = ["Hello world!", "The quick brown fox jumps over the lazy dog.", "  leading spaces",
            "trailing   ", "tabs\tand\nnewlines\n\n", "数字 12345 と日本語のテキスト", "Ünïcödé façade naïve",
            "emoji 🦙🦙 👩‍👩‍👧 ✨", "def f(x):\n    return x ** 2\n", "DON'T you're we'll", "Привет, мир",
            "مرحبا بالعالم", "नमस्ते दुनिया", "한국어 텍스트", "😀" * 20, "a" * 300, " ", "\u0000\u0001x"]
    alphabet = ("abcdefghijklmnopqrstuvwxyz ABCXYZ  0123456789.,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`|\n\t"
                "éàüßñøçšžłğıœ∑≤≥→中文字日本語한국어ру́сскийελληνικάעבריתعربىहिंदीไทย🦙😀👍🏽❤️‍🔥\u200d\ufeff\u00a0")
    out = list(base)
    while len(out) < count:
        n = rng.choice([1, 2, 5, 10, 30, 80])
        out.append("".join(rng.choice(alphabet) for _ in range(n)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--js", default=str(ROOT.parent / "shared/tokenizers/llama-tokenizer-js/llama-tokenizer.js"))
    ap.add_argument("--out", default=str(ROOT / "tests/data/tokenizers/llama2/tokenizer.json"))
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()

    vocab, merges = read_js_data(args.js)
    config = build(vocab, merges)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes): {len(vocab)} tokens, {len(merges)} merges")
    if args.no_check:
        return

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(out))
    ids = tok.encode("Hello world").ids
    assert ids == [1, 15043, 3186], ids
    strings = check_strings()
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.json"
        inp.write_text(json.dumps(strings), encoding="utf-8")
        script = Path(tmp) / "run.mjs"
        script.write_text(
            "import fs from 'fs';\n"
            f"import llamaTokenizer from {json.dumps(str(Path(args.js).resolve()))};\n"
            "const strings = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));\n"
            "process.stdout.write(JSON.stringify(strings.map(s => llamaTokenizer.encode(s))));\n")
        js = json.loads(subprocess.run(["node", str(script), str(inp)], check=True,
                                       capture_output=True, text=True).stdout)
    mismatches = 0
    for s, expected in zip(strings, js):
        got = tok.encode(s).ids
        if s == "":
            expected = [1]  # llama-tokenizer-js returns [] for the empty string; tokenizers gives BOS
        if got != expected:
            mismatches += 1
            if mismatches <= 5:
                print(f"mismatch on {s!r}:\n  tokenizers {got}\n  llama-tokenizer-js {expected}")
    if mismatches:
        sys.exit(f"{mismatches} of {len(strings)} strings differ from llama-tokenizer-js")
    print(f"ok: {len(strings)} strings identical to llama-tokenizer-js (node) and load in tokenizers")


if __name__ == "__main__":
    main()
