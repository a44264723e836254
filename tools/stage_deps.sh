#!/usr/bin/env bash
# Stages what the CUDA machine lacks (it has PyTorch, nvcc, CMake and ninja but no Debian -dev
# packages and no network) into the ignored .deps/ prefix, which device runs carry along
# (specs/build.md §4). Run on the Debian 12 machine after tools/setup.sh installed the packages.
set -euo pipefail
cd "$(dirname "$0")/.."
D=.deps
rm -rf "$D"
mkdir -p "$D/include" "$D/share/cmake" "$D/lib/cmake" "$D/lib/x86_64-linux-gnu/cmake"
ML=/usr/lib/x86_64-linux-gnu

# Header-only libraries with their CMake package files.
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/catch2 "$D/include/"
# stb: only the image decoder the build includes (the rest of libstb-dev is 1.8 MB of the 64 MiB a
# device run may carry).
mkdir -p "$D/include/stb" && cp /usr/include/stb/stb_image.h "$D/include/stb/"
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$D/share/cmake/"
# Catch2 v2 (single header; its package config also names libCatch2WithMain.a).
cp -r /usr/lib/cmake/Catch2 "$D/lib/cmake/" && cp /usr/lib/libCatch2WithMain.a "$D/lib/"
# SQLite and PCRE2: headers + static archives (no runtime package needed there).
cp /usr/include/sqlite3.h /usr/include/sqlite3ext.h "$D/include/"
cp "$ML/libsqlite3.a" "$D/lib/"
cp /usr/include/pcre2.h "$D/include/" && cp "$ML/libpcre2-8.a" "$D/lib/"
# libjpeg-turbo, libpng and zlib (datasets/image.cpp): headers + static archives.
cp /usr/include/jpeglib.h /usr/include/jmorecfg.h /usr/include/jerror.h \
  /usr/include/x86_64-linux-gnu/jconfig.h /usr/include/png.h /usr/include/pngconf.h \
  /usr/include/pnglibconf.h /usr/include/zlib.h /usr/include/zconf.h "$D/include/"
cp "$ML/libjpeg.a" "$ML/libpng16.a" "$ML/libz.a" "$D/lib/"
# Google Benchmark: headers, library and package config (the config finds it relative to itself).
cp -r /usr/include/benchmark "$D/include/"
cp -a "$ML"/libbenchmark.so* "$ML/libbenchmark_main.a" "$D/lib/x86_64-linux-gnu/"
cp -r "$ML/cmake/benchmark" "$D/lib/x86_64-linux-gnu/cmake/"

# Python wheels the CUDA machine lacks (it has torch and an older transformers, no network), for
# tools/cuda/methods_gpu_check.py: the oracles optimum-quanto 0.2.7, hqq 0.2.2 and kvpress 0.5.5
# with the pure-Python modules they import there (termcolor, cachetools, fire, datasets + dill +
# multiprocess), and transformers 5.24 (the version of the committed fixtures) with the versions
# it checks at import (huggingface_hub, tokenizers, safetensors, regex) and the modules hub imports
# (httpx2, httpcore2, truststore, click; not hf-xet, which only downloads).
# For CPython 3.12 on x86-64 (the device's python3); installed there with `python3 -m pip
# install --no-deps --no-index --target DIR .deps/wheels/*.whl`. hqq and fire publish sdists
# only: built into wheels here (pure Python).
PY=${MLAB_STAGE_PYTHON:-.venv/bin/python}
PIP=("$PY" -m pip -q --disable-pip-version-check)
W="$D/wheels"
mkdir -p "$W"
"${PIP[@]}" download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$W" optimum-quanto==0.2.7 kvpress==0.5.5 termcolor==3.3.0 cachetools==5.5.2 \
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.24.0 huggingface_hub==2.4.0 \
  tokenizers==0.23.3 safetensors==0.8.0 regex==2026.11.19 httpx2==2.16.2 httpcore2==2.16.2 \
  truststore==0.10.5 click==8.5.1
"${PIP[@]}" wheel --no-deps -w "$W" hqq==0.2.2 fire==0.6.0

# The real Llama-3 and Qwen2.5 tokenizers (../shared/tokenizers, not on the device) for the
# random-weight checkpoints of tools/cuda/{vlm,mha2mla,methods}_gpu_check.py.
T=../shared/tokenizers
mkdir -p "$D/tokenizers"
for t in llama3 qwen2.5; do
  if [ -f "$T/$t/tokenizer.json" ]; then
    gzip -9nc "$T/$t/tokenizer.json" >"$D/tokenizers/$t.tokenizer.json.gz"
  else
    echo "stage_deps.sh: $T/$t/tokenizer.json is missing: no $t tokenizer staged" >&2
  fi
done

du -sh "$W" "$D/tokenizers"; du -sh "$D"
