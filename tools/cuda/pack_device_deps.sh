#!/usr/bin/env bash
# Packs what a device run needs from .deps (headers, static libraries, CMake package files, the
# llama3 tokenizer) into one xz tarball, .deps/device.tar.xz: the working tree plus the carried
# paths of a device run may not exceed 64 MiB, and the unpacked .deps alone is ~13 MB.
# On the device: tar -xJf .deps/device.tar.xz   (recreates .deps/include, lib, share, tokenizers)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .deps/include ] || { echo "pack_device_deps.sh: run tools/stage_deps.sh first" >&2; exit 2; }
tar -cJf .deps/device.tar.xz .deps/include .deps/lib .deps/share .deps/tokenizers/llama3.tokenizer.json.gz
ls -la .deps/device.tar.xz
