#!/usr/bin/env bash
# Sets up and builds MLA-Bench on Debian 12 (idempotent; a second run only rebuilds):
#   1. the Debian packages (compiler, CMake, ninja, ccache, header libraries, SQLite, PCRE2,
#      libjpeg-turbo and libpng for Pillow-exact decoding, cjpeg for the decode fixtures, ...),
#   2. the virtualenv .venv with torch==2.11.0 (its LibTorch is the one we build against) and the
#      test oracles (transformers, tokenizers, safetensors, pillow, numpy),
#   3. configure + build into build/.
# Env: MLAB_BUILD_DIR (build), MLAB_JOBS (nproc), MLAB_SKIP_APT=1 to skip step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${MLAB_BUILD_DIR:-build}
JOBS=${MLAB_JOBS:-$(nproc)}
TORCH_VERSION=2.11.0
say() { printf '[setup %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# 1. Debian packages.
PKGS=(build-essential cmake ninja-build ccache git python3 python3-venv python3-dev
      catch2 libcli11-dev nlohmann-json3-dev libstb-dev libsqlite3-dev libbenchmark-dev
      libpcre2-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev libjpeg-turbo-progs)
if [ "${MLAB_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# 2. The virtualenv with torch and the oracles.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  say "installing torch==$TORCH_VERSION into .venv (large download)"
  .venv/bin/pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
fi
if ! .venv/bin/python -c "import transformers, tokenizers, safetensors, PIL, numpy, pandas, pyarrow, datasets, optimum.quanto, hqq" 2>/dev/null; then
  say "installing the test oracles into .venv"
  .venv/bin/pip install -q --disable-pip-version-check transformers tokenizers safetensors pillow numpy \
    pandas pyarrow datasets optimum-quanto==0.2.7 hqq==0.2.2 "torch==$TORCH_VERSION"
fi
# kvpress (pruning oracle, tools/fixtures/make_pruning_fixtures.py) pins transformers<5.3: install it
# without its dependencies, plus the three its package import needs.
if ! .venv/bin/python -c "import kvpress" 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check "requests>=2.32.3,<3" "cachetools>=5.5.2,<6" \
    "fire>=0.6,<0.7"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps kvpress==0.5.5
fi

# The CUDA wheel's CMake config needs a CUDA toolkit (nvcc). Debian 12 has none by default: take
# NVIDIA's nvcc wheel of torch's CUDA version into .venv when no system toolkit is present.
CMAKE_CUDA_ARGS=()
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  say "no CUDA toolkit found: using NVIDIA's nvcc wheel in .venv"
  CUDA_VERSION=$(.venv/bin/python -c "import torch; print(torch.version.cuda)")
  CUDA_MAJOR=${CUDA_VERSION%%.*}
  # nvcc's own dependencies are unpinned upstream: pin them to torch's CUDA version.
  .venv/bin/pip install -q --disable-pip-version-check "nvidia-cuda-nvcc==${CUDA_VERSION}.*" \
    "nvidia-nvvm==${CUDA_VERSION}.*" "nvidia-cuda-crt==${CUDA_VERSION}.*" \
    "nvidia-cuda-cccl==${CUDA_VERSION}.*"
  ROOT=$(.venv/bin/python -c "import nvidia, os; print(os.path.join(nvidia.__path__[0], 'cu$CUDA_MAJOR'))")
  # The wheels put libraries in lib/; nvcc and CMake look for lib64/ and an unversioned cudart.
  ln -sfn lib "$ROOT/lib64"
  [ -e "$ROOT/lib/libcudart.so" ] || ln -s "libcudart.so.$CUDA_MAJOR" "$ROOT/lib/libcudart.so"
  CMAKE_CUDA_ARGS=(-DCUDAToolkit_ROOT="$ROOT" -DCUDA_TOOLKIT_ROOT_DIR="$ROOT"
                   -DCUDA_NVCC_EXECUTABLE="$ROOT/bin/nvcc" -DCMAKE_CUDA_COMPILER="$ROOT/bin/nvcc")
elif ! command -v nvcc >/dev/null; then
  CMAKE_CUDA_ARGS=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi

# 3. Configure and build.
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  say "configuring $BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CMAKE_CUDA_ARGS[@]}"
fi
say "building $BUILD with $JOBS jobs"
cmake --build "$BUILD" -j"$JOBS"
say "done: $BUILD/mla-bench"
