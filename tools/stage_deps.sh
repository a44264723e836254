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
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/catch2 /usr/include/stb "$D/include/"
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$D/share/cmake/"
# Catch2 v2 (single header; its package config also names libCatch2WithMain.a).
cp -r /usr/lib/cmake/Catch2 "$D/lib/cmake/" && cp /usr/lib/libCatch2WithMain.a "$D/lib/"
# SQLite and PCRE2: headers + static archives (no runtime package needed there).
cp /usr/include/sqlite3.h /usr/include/sqlite3ext.h "$D/include/"
cp "$ML/libsqlite3.a" "$D/lib/"
cp /usr/include/pcre2.h "$D/include/" && cp "$ML/libpcre2-8.a" "$D/lib/"
# Google Benchmark: headers, library and package config (the config finds it relative to itself).
cp -r /usr/include/benchmark "$D/include/"
cp -a "$ML"/libbenchmark.so* "$ML/libbenchmark_main.a" "$D/lib/x86_64-linux-gnu/"
cp -r "$ML/cmake/benchmark" "$D/lib/x86_64-linux-gnu/cmake/"

du -sh "$D"
