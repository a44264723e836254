#pragma once
// Shared by the VLM and MHA2MLA tests: the tiny fixture models (tests/data/tiny_vlms) and the
// comparison helpers. Include after the project headers (it pulls the test prelude).
#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"

namespace mlab::test {

// The processor outputs a reference file stores (input_ids, attention_mask, pixel_values and
// the family's image_sizes / image_grid_thw), as the model's inputs.
inline models::VlmInputs inputs_of(const models::Checkpoint& ref) {
  models::VlmInputs in;
  in.input_ids = ref.get("input_ids").clone();
  in.attention_mask = ref.get("attention_mask").clone();
  in.pixel_values = ref.get("pixel_values").clone();
  if (ref.contains("image_sizes")) in.image_sizes = ref.get("image_sizes").clone();
  if (ref.contains("image_grid_thw")) in.image_grid_thw = ref.get("image_grid_thw").clone();
  return in;
}

inline std::filesystem::path tiny_vlm_dir() { return data_dir() / "tiny_vlms"; }

// The three fixture families (directory names of the transformers-5 layout).
inline const std::vector<std::string>& vlm_families() {
  static const std::vector<std::string> f = {"llava", "llava_next", "qwen2_5_vl"};
  return f;
}

// max |a - b| / max |b|, in f64 on the CPU.
inline double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  const auto a64 = a.to(at::kCPU, at::kDouble), b64 = b.to(at::kCPU, at::kDouble);
  REQUIRE(a64.sizes() == b64.sizes());
  return (a64 - b64).abs().max().item<double>() / b64.abs().max().item<double>();
}

// Prints "what value" when MLAB_TEST_REPORT is set (the figures quoted in notes).
inline void report(const std::string& what, double value) {
  if (std::getenv("MLAB_TEST_REPORT") != nullptr) std::printf("%-56s %.3g\n", what.c_str(), value);
}

}  // namespace mlab::test
