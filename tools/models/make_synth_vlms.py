#!/usr/bin/env python3
"""Creates the two small random-init VLMs that F9 trains from scratch on the synthetic suite
(`mla-bench synth`) and ships under assets/models/ (docs/synth_models.md):

  mlab-llava-synth  LLaVA-1.5 style (LlavaForConditionalGeneration): CLIP ViT (112 px, patch 14:
                    64 image tokens, feature layer -2, strategy "default"), 2-layer GELU MLP
                    projector, Llama MHA text model (head_dim 64), Llama-2-style SentencePiece BPE
                    tokenizer (byte fallback), the LLaVA-1.5 chat template ("USER: <image>\\n{q}
                    ASSISTANT:"), CLIP image processor (shortest edge 112, center crop 112).
  mlab-qwen-synth   Qwen2.5-VL style (Qwen2_5_VLForConditionalGeneration): GQA with q/k/v bias,
                    M-RoPE (mrope_section [8, 12, 12]: sums to head_dim / 2 = 32), the window-attention
                    ViT (window 112 px, fullatt_block_indexes, spatial merge 2, SwiGLU, RMSNorm),
                    Qwen2-style byte-level BPE tokenizer (NFC + Split + ByteLevel, no BOS), the
                    Qwen2.5-VL chat template; min_pixels 168^2, max_pixels 224^2: a 112x112 image is
                    resized to 168x168, 36 merged tokens (6x6: 2x2 windows, padded).

Both: head_dim 64 (the quickstart's MHA2MLA keeps r = 16 RoPE dims and d_kv = 16 / 32),
max_position_embeddings 2048, untied lm_head, HF's initialisation (normal, initializer_range 0.02)
from a fixed seed, saved in bfloat16 by transformers 5 `save_pretrained` (layout (a) of
tests/data/tiny_vlms/README.md) with the processor's files.

Tokenizers are trained here with the `tokenizers` library on the suite's text: every question and
answer of DIR/train/train.jsonl (the LLaVA records), every string field of the eval samples'
`doc` (DIR/<task>/samples.jsonl: questions, options, answers) and the prompt strings of
configs/tasks/*.json. The family styles and chat templates are those of
tools/fixtures/make_tiny_vlms.py (imported).

Usage: .venv/bin/python tools/models/make_synth_vlms.py --corpus SYNTH_DIR --out DIR [--seed S]
       [--vocab 1024]
Writes DIR/mlab-llava-synth and DIR/mlab-qwen-synth (replaced), prints parameter counts and sizes.
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "fixtures"))

import torch  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402
from tokenizers import processors as tk_processors  # noqa: E402

import make_tiny_vlms as M  # noqa: E402  (tokenizer styles, chat templates, processor helpers)
import transformers as T  # noqa: E402

IMAGE = 112                      # the synth image side (mla-bench synth --image-size default)
QWEN_MIN_PIXELS = 168 * 168      # 112x112 -> 168x168: 36 merged tokens
QWEN_MAX_PIXELS = 224 * 224      # at most 64 merged tokens per image
MAX_POSITIONS = 2048
TEXT = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
            head_dim=64, max_position_embeddings=MAX_POSITIONS, initializer_range=0.02)
CLIP_VIS = dict(model_type="clip_vision_model", hidden_size=128, intermediate_size=512,
                num_hidden_layers=4, num_attention_heads=2, image_size=IMAGE, patch_size=14,
                projection_dim=128, hidden_act="quick_gelu", layer_norm_eps=1e-5)
QWEN_VIS = dict(depth=4, hidden_size=128, intermediate_size=256, num_heads=2, out_hidden_size=256,
                hidden_act="silu", fullatt_block_indexes=[1, 3], window_size=112, patch_size=14,
                spatial_merge_size=2, temporal_patch_size=2, tokens_per_second=2, in_channels=3)
NAMES = {"llava": "mlab-llava-synth", "qwen": "mlab-qwen-synth"}
SEEDS = {"llava": 20260901, "qwen": 20260902}


# ------------------------------------------------------------------------------------------------
# the corpus
# ------------------------------------------------------------------------------------------------
def _strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from _strings(v)


def read_corpus(synth):
    """Lines of text: train.jsonl's turns (LLaVA 'conversations' or swift 'messages'), the eval
    samples' doc strings, the task configs' prompt strings. Deduplicated, in first-seen order."""
    lines = []
    train = synth / "train" / "train.jsonl"
    if not train.exists():
        sys.exit(f"{train} missing: give --corpus the dir of `mla-bench synth --out DIR`")
    with open(train) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            for turn in rec.get("conversations", []) + rec.get("messages", []):
                text = turn.get("value", turn.get("content", ""))
                lines.append(text.replace("<image>", " ").strip())
    for samples in sorted(synth.glob("*/samples.jsonl")):
        with open(samples) as f:
            for line in f:
                if line.strip():
                    lines += list(_strings(json.loads(line).get("doc", {})))
    for cfg in sorted((ROOT / "configs" / "tasks").glob("*.json")):
        lines += list(_strings(json.loads(cfg.read_text())))
    lines += ["USER: ASSISTANT: user assistant system You are a helpful assistant."]
    seen, out = set(), []
    for s in lines:
        s = s.strip()
        if s and s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ------------------------------------------------------------------------------------------------
# tokenizers (make_tiny_vlms.py's family styles, with the vocabulary size as a parameter)
# ------------------------------------------------------------------------------------------------
def tokenizer_llama2(vocab_rows):
    """LLaVA-1.5's: <unk> <s> </s>, <0x00>..<0xFF>, the trained pieces, then <image> and <pad>
    (added tokens); Prepend/Replace normalizer, byte fallback, '<s> $A'. vocab_rows - 2 entries
    before <image> at most (fewer when the corpus has fewer merges)."""
    pieces, merges = M._train_bpe(
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True),
        vocab_rows - 2 - 259)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for p in pieces:
        if p not in vocab and len(vocab) < vocab_rows - 2:
            vocab[p] = len(vocab)
    merges = [m for m in merges if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                              byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"),
                                          normalizers.Replace(" ", "\u2581")])
    tk.pre_tokenizer = None
    tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                    decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tk.add_special_tokens([M._special(t) for t in ["<unk>", "<s>", "</s>", "<image>", "<pad>"]])
    tk.post_processor = tk_processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tk


def tokenizer_qwen(vocab_rows):
    """Qwen2's: NFC + Split(RQ) + ByteLevel, no BOS; the trained byte-level pieces, then the 22
    Qwen added tokens (<|endoftext|>, <|im_start|>, <|im_end|>, ..., <|image_pad|>, ...)."""
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(M.RQ), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    n = vocab_rows - len(M.QWEN_SPECIALS)
    pieces, merges = M._train_bpe(pre, n, pre_tokenizers.ByteLevel.alphabet())
    vocab = {p: i for i, p in enumerate(pieces[:n])}
    merges = [m for m in merges if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=False))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre
    tk.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tk.post_processor = tk_processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                                use_regex=False)
    tk.add_tokens([M.AddedToken(t, special=t not in M.QWEN_NOT_SPECIAL, normalized=False)
                   for t in M.QWEN_SPECIALS])
    return tk


def rows(tk):
    """Embedding rows: the tokenizer's size rounded up to a multiple of 64."""
    return (tk.get_vocab_size() + 63) // 64 * 64


# ------------------------------------------------------------------------------------------------
# the two models
# ------------------------------------------------------------------------------------------------
def make_llava(out, corpus, vocab, seed):
    M.CORPUS = corpus  # read by make_tiny_vlms._train_bpe
    tk = tokenizer_llama2(vocab)
    image_id, pad_id = tk.token_to_id("<image>"), tk.token_to_id("<pad>")
    out.mkdir(parents=True)
    tk.save(str(out / "tokenizer.json"))
    M.write_json(out / "tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False,
        "added_tokens_decoder": M.added_tokens_decoder(tk), "bos_token": "<s>",
        "clean_up_tokenization_spaces": False, "eos_token": "</s>", "legacy": False,
        "model_max_length": MAX_POSITIONS, "pad_token": "<pad>", "padding_side": "left",
        "processor_class": "LlavaProcessor", "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>", "use_default_system_prompt": False})
    txt = dict(TEXT, model_type="llama", vocab_size=rows(tk), num_key_value_heads=4,
               rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
               bos_token_id=1, eos_token_id=2, pad_token_id=pad_id, tie_word_embeddings=False)
    cfg = T.LlavaConfig(text_config=txt, vision_config=dict(CLIP_VIS), image_token_index=image_id,
                        image_seq_length=(IMAGE // 14) ** 2, vision_feature_layer=-2,
                        vision_feature_select_strategy="default", projector_hidden_act="gelu",
                        tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = T.LlavaForConditionalGeneration(cfg).to(torch.bfloat16)
    model.generation_config = T.GenerationConfig(bos_token_id=1, eos_token_id=2,
                                                 pad_token_id=pad_id)
    model.save_pretrained(str(out))
    ip = T.CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE},
        do_center_crop=True, do_resize=True, do_rescale=True, do_normalize=True,
        do_convert_rgb=True, image_mean=M.CLIP_MEAN, image_std=M.CLIP_STD, resample=3)
    proc = T.LlavaProcessor(image_processor=ip, tokenizer=T.AutoTokenizer.from_pretrained(str(out)),
                            chat_template=M.LLAVA_TEMPLATE, patch_size=14,
                            vision_feature_select_strategy="default",
                            num_additional_image_tokens=1, image_token="<image>")
    proc.save_pretrained(str(out))
    ip.save_pretrained(str(out))
    return model


def make_qwen(out, corpus, vocab, seed):
    M.CORPUS = corpus
    tk = tokenizer_qwen(vocab)
    ids = {t: tk.token_to_id(t) for t in M.QWEN_SPECIALS}
    out.mkdir(parents=True)
    tk.save(str(out / "tokenizer.json"))
    M.write_json(out / "tokenizer_config.json", {
        "add_prefix_space": False, "added_tokens_decoder": M.added_tokens_decoder(tk),
        "additional_special_tokens": M.QWEN_SPECIALS[1:14], "bos_token": None,
        "chat_template": M.QWEN_TEMPLATE, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": MAX_POSITIONS,
        "pad_token": "<|endoftext|>", "padding_side": "left",
        "processor_class": "Qwen2_5_VLProcessor", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})
    text = dict(TEXT, vocab_size=rows(tk), num_key_value_heads=2, rms_norm_eps=1e-6,
                rope_theta=1000000.0, hidden_act="silu",
                rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]},
                use_sliding_window=False, sliding_window=MAX_POSITIONS,
                max_window_layers=TEXT["num_hidden_layers"], attention_dropout=0.0)
    cfg = T.Qwen2_5_VLConfig(
        **text, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|vision_pad|>"], bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False, vision_config=dict(QWEN_VIS))
    torch.manual_seed(seed)
    model = T.Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.generation_config = T.GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"])
    model.save_pretrained(str(out))
    M.write_json(out / "preprocessor_config.json", dict(
        M.image_processor_dict("qwen2_5_vl"), min_pixels=QWEN_MIN_PIXELS,
        max_pixels=QWEN_MAX_PIXELS))
    M.write_json(out / "chat_template.json", {"chat_template": M.QWEN_TEMPLATE})
    proc = M.load_processor("qwen2_5_vl", out)  # PIL image processor, no video processor
    (out / "chat_template.json").unlink()  # save_pretrained writes chat_template.jinja
    proc.save_pretrained(str(out))
    proc.image_processor.save_pretrained(str(out))
    pc = out / "processor_config.json"
    pcfg = json.loads(pc.read_text())
    if pcfg.get("video_processor") is None:
        # What transformers 5 writes with torchvision installed (make_tiny_vlms.build_family): so
        # that AutoProcessor loads the dir where torchvision is.
        ip = {k: v for k, v in pcfg["image_processor"].items() if k != "image_processor_type"}
        pcfg["video_processor"] = dict(ip, do_sample_frames=False, max_frames=768,
                                       max_video_tokens=128000, min_frames=4,
                                       return_metadata=False,
                                       video_processor_type="Qwen2VLVideoProcessor")
        pc.write_text(json.dumps(pcfg, indent=2, sort_keys=True) + "\n")
    return model


def describe(name, model, out, corpus_lines):
    total = sum(p.numel() for p in model.parameters())
    groups = {}
    for n, p in model.named_parameters():
        g = ("vision" if ("vision_tower" in n or "visual." in n) and "merger" not in n
             else "projector" if "multi_modal_projector" in n or "merger" in n
             else "embeddings" if "embed_tokens" in n or "lm_head" in n else "text")
        groups[g] = groups.get(g, 0) + p.numel()
    size = sum(f.stat().st_size for f in out.iterdir())
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    print(f"{name}: {total:,} parameters ({', '.join(f'{k} {v:,}' for k, v in groups.items())}); "
          f"tokenizer {tok.get_vocab_size()} tokens, embedding rows "
          f"{model.config.get_text_config().vocab_size}; {size:,} bytes on disk in {out}")
    return {"parameters": total, "groups": groups, "bytes": size,
            "tokenizer_size": tok.get_vocab_size(), "corpus_lines": corpus_lines}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="dir of `mla-bench synth --out`")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="added to each model's weight seed")
    ap.add_argument("--vocab", type=int, default=1024, help="tokenizer size target (each)")
    args = ap.parse_args()
    corpus = read_corpus(args.corpus)
    print(f"corpus: {len(corpus)} distinct lines from {args.corpus}")
    summary = {}
    for family, make in (("llava", make_llava), ("qwen", make_qwen)):
        out = args.out / NAMES[family]
        shutil.rmtree(out, ignore_errors=True)
        model = make(out, corpus, args.vocab, SEEDS[family] + args.seed)
        summary[NAMES[family]] = describe(NAMES[family], model, out, len(corpus))
    total = sum(s["bytes"] for s in summary.values())
    print(f"both: {total:,} bytes ({total / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
