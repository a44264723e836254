#!/usr/bin/env python3
"""Writes models/tokenizer/unicode_tables.cpp: the canonical-composition data that the NFC
normalizer of mlab::tokenizer needs (combining classes, canonical decompositions, primary
composites, NFC quick-check), taken from Hugging Face `tokenizers` itself where it exposes the
data (NFD/NFC normalizers) and from Python's unicodedata for the combining classes, then checked
code point by code point against `tokenizers.normalizers.NFC`.

Usage: .venv/bin/python tools/make_unicode_tables.py [--out models/tokenizer/unicode_tables.cpp]
"""
import argparse
import sys
import unicodedata
from pathlib import Path

from tokenizers import Regex, normalizers, pre_tokenizers

HANGUL_S_BASE, HANGUL_S_COUNT = 0xAC00, 11172


def is_candidate(cp):
    return cp != 0 and not (0xD800 <= cp <= 0xDFFF) and not (HANGUL_S_BASE <= cp < HANGUL_S_BASE + HANGUL_S_COUNT)


def regex_class(cps, pattern):
    """Code points that Oniguruma (tokenizers' regex engine) matches with `pattern`."""
    text = "".join(chr(cp) for cp in cps)
    kept = set()
    for piece, _ in pre_tokenizers.Split(Regex(pattern), "removed").pre_tokenize_str(text):
        kept.update(ord(ch) for ch in piece)
    return set(cps) - kept


def to_ranges(cps):
    ranges = []
    for cp in sorted(cps):
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return ranges


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "models/tokenizer/unicode_tables.cpp"))
    args = ap.parse_args()
    nfd = normalizers.NFD()
    nfc = normalizers.NFC()

    cps = [cp for cp in range(0x110000) if is_candidate(cp)]
    # Full canonical decompositions as `tokenizers` computes them (one call, separator U+0000 is NFD-stable).
    joined = "\0".join(chr(cp) for cp in cps)
    nfd_all = nfd.normalize_str(joined).split("\0")
    nfc_all = nfc.normalize_str(joined).split("\0")
    assert len(nfd_all) == len(cps) and len(nfc_all) == len(cps)

    ccc = {}
    decomp = {}     # cp -> single-step canonical decomposition (1 or 2 code points)
    full = {}
    for cp, d in zip(cps, nfd_all):
        c = unicodedata.combining(chr(cp))
        # tokenizers' Unicode tables are older than Python's: keep a class only where tokenizers
        # reorders by it (a class-1 overlay after it, or it after an acute accent for class 1).
        if c > 1 and nfd.normalize_str(chr(cp) + "\u0334") == "\u0334" + chr(cp):
            ccc[cp] = c
        elif c == 1 and nfd.normalize_str("\u0301" + chr(cp)) == chr(cp) + "\u0301":
            ccc[cp] = c
        if d != chr(cp):
            full[cp] = d
    # Single-step decompositions: from unicodedata where it agrees with tokenizers' full NFD.
    for cp, d in full.items():
        raw = unicodedata.decomposition(chr(cp))
        if not raw or raw.startswith("<"):
            sys.exit(f"U+{cp:04X}: tokenizers decomposes it, unicodedata has no canonical mapping")
        step = [int(x, 16) for x in raw.split()]
        decomp[cp] = step
    newer = [cp for cp in cps if cp not in full and unicodedata.decomposition(chr(cp))
             and not unicodedata.decomposition(chr(cp)).startswith("<")]
    if newer:
        print(f"note: {len(newer)} canonical decompositions of unicodedata are unknown to tokenizers "
              f"(newer Unicode), e.g. U+{newer[0]:04X}; left out")
    # Primary composites: two-code-point decompositions that NFC recomposes.
    compose = {}
    for cp, step in decomp.items():
        if len(step) == 2 and nfc.normalize_str(chr(step[0]) + chr(step[1])) == chr(cp):
            compose[(step[0], step[1])] = cp
    seconds = {b for (_, b) in compose}
    # NFC quick check "not yes": combining marks, characters that never survive NFC, composition
    # seconds (Hangul V/T jamo included).
    not_yes = set(ccc) | seconds | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp, c in zip(cps, nfc_all):
        if c != chr(cp):
            not_yes.add(cp)
    ranges = []
    for cp in sorted(not_yes):
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])

    # Regex classes: Oniguruma's Unicode data is newer than PCRE2 10.42's (Unicode 14, the same
    # as Python 3.11's unicodedata): the letters and numbers it knows beyond Unicode 14.
    all_cps = [cp for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF]
    categories = {cp: unicodedata.category(chr(cp)) for cp in all_cps}
    onig_letters = regex_class(all_cps, r"\p{L}")
    onig_numbers = regex_class(all_cps, r"\p{N}")
    onig_space = regex_class(all_cps, r"\s")
    letter_extra = to_ranges(onig_letters - {cp for cp in all_cps if categories[cp][0] == "L"})
    number_extra = to_ranges(onig_numbers - {cp for cp in all_cps if categories[cp][0] == "N"})
    if {cp for cp in all_cps if categories[cp][0] == "L"} - onig_letters or \
            {cp for cp in all_cps if categories[cp][0] == "N"} - onig_numbers:
        sys.exit("unicodedata has letters/numbers that Oniguruma lacks: extend regex.cpp")
    space_ranges = to_ranges(onig_space)

    out = []
    w = out.append
    w("// Generated by tools/make_unicode_tables.py from Hugging Face tokenizers' NFD/NFC and Python")
    w(f"// unicodedata {unicodedata.unidata_version} (combining classes). Do not edit.")
    w('#include "models/tokenizer/unicode.hpp"')
    w("")
    w("namespace mlab::tokenizer::tables {")
    w("")
    def emit(name, rows, per_line):
        w(f"const uint32_t {name}[] = {{")
        line = []
        for r in rows:
            line.append(r)
            if len(line) == per_line:
                w("    " + " ".join(line))
                line = []
        if line:
            w("    " + " ".join(line))
        w("};")
    emit("kCombiningClass", [f"0x{cp:X}, {c}," for cp, c in sorted(ccc.items())], 6)
    w(f"const size_t kCombiningClassCount = {len(ccc)};")
    emit("kDecomposition", [f"0x{cp:X}, 0x{s[0]:X}, 0x{(s[1] if len(s) > 1 else 0):X},"
                            for cp, s in sorted(decomp.items())], 4)
    w(f"const size_t kDecompositionCount = {len(decomp)};")
    emit("kComposition", [f"0x{a:X}, 0x{b:X}, 0x{c:X}," for (a, b), c in sorted(compose.items())], 4)
    w(f"const size_t kCompositionCount = {len(compose)};")
    emit("kNfcQuickCheckNo", [f"0x{a:X}, 0x{b:X}," for a, b in ranges], 6)
    w(f"const size_t kNfcQuickCheckNoCount = {len(ranges)};")
    emit("kRegexLetterExtra", [f"0x{a:X}, 0x{b:X}," for a, b in letter_extra], 6)
    w(f"const size_t kRegexLetterExtraCount = {len(letter_extra)};")
    emit("kRegexNumberExtra", [f"0x{a:X}, 0x{b:X}," for a, b in number_extra], 6)
    w(f"const size_t kRegexNumberExtraCount = {len(number_extra)};")
    emit("kRegexSpace", [f"0x{a:X}, 0x{b:X}," for a, b in space_ranges], 6)
    w(f"const size_t kRegexSpaceCount = {len(space_ranges)};")
    w("")
    w("}  // namespace mlab::tokenizer::tables")
    Path(args.out).write_text("\n".join(out) + "\n")
    print(f"wrote {args.out}: {len(ccc)} classes, {len(decomp)} decompositions, {len(compose)} compositions, "
          f"{len(ranges)} quick-check ranges")


if __name__ == "__main__":
    main()
