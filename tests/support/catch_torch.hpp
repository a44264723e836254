#pragma once
// The one test prelude (STYLE.md rule 14): Torch headers first (when the test executable links
// Torch), then Catch2, so that CHECK is Catch2's and not c10's aborting check.
#if MLAB_TEST_WITH_TORCH
#include <ATen/ATen.h>
#endif
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace mlab::test {

// Directory of committed fixtures: <source>/tests/data.
inline std::filesystem::path data_dir() { return std::filesystem::path(MLAB_TEST_DATA_DIR); }

// A fresh empty directory under the build tree's scratch folder, unique per call.
std::filesystem::path scratch_dir(const std::string& name);

// The project's Python with the test oracles (from CMake), or "" when none was configured.
inline std::string python() { return MLAB_TEST_PYTHON; }

}  // namespace mlab::test

#if MLAB_TEST_WITH_TORCH
// [gpu] tests call this first: without a CUDA device, or in a build without the CUDA kernels,
// they warn and return (Catch2 v2 has no SKIP; the warning says what happened).
#define MLAB_REQUIRE_CUDA()                                                  \
  do {                                                                       \
    if (!MLAB_WITH_CUDA || !::at::hasCUDA()) {                               \
      WARN("skipped: no CUDA device, or mlab was built without CUDA kernels"); \
      return;                                                                \
    }                                                                        \
  } while (false)
#endif
