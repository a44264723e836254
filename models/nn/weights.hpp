#pragma once
// Weights: the tensors of one model directory under canonical names, loaded on demand into the
// compute dtype and device, with every shape checked against config.json and every tensor of the
// files accounted for (specs/models.md §1.2).
//
// Canonical names are the hub (transformers v4) names of the real checkpoints:
//   LLaVA / LLaVA-NeXT: language_model.model.*, language_model.lm_head.weight,
//                       vision_tower.vision_model.*, multi_modal_projector.*, image_newline
//   Qwen2.5-VL:         model.*, lm_head.weight, visual.*
// The other spellings transformers writes or holds in memory are accepted and mapped:
//   vision_tower.X (5.x save_pretrained) -> vision_tower.vision_model.X;
//   model.language_model.X -> language_model.model.X (LLaVA) | model.X (Qwen);
//   model.vision_tower. / model.multi_modal_projector. / model.image_newline / model.visual. ->
//   without "model."; lm_head.weight -> language_model.lm_head.weight (LLaVA).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/io/checkpoint.hpp"

namespace mlab::models {

// Where and in which dtype a model runs.
struct LoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;  // compute dtype: f32 | bf16 | f16
};

// "float32" | "fp32" | "bfloat16" | "bf16" | "float16" | "fp16" -> dtype; throws mlab::Error.
c10::ScalarType parse_compute_dtype(std::string_view name);
// "cpu" | "cuda" | "cuda:N" -> device; throws mlab::UsageError naming the argument otherwise.
c10::Device parse_device(const std::string& name);

// "float32", "bfloat16", "float16".
std::string_view compute_dtype_name(c10::ScalarType dtype);

class Weights {
 public:
  // Opens the checkpoint of `dir` (Checkpoint::open) and maps its names to canonical ones for
  // `family`. Throws mlab::Error naming the file when two stored names map to the same
  // canonical name.
  static Weights open(const std::filesystem::path& dir, ModelFamily family, LoadOptions options);

  // The canonical name `name` converted to the compute dtype on the device (integer tensors keep
  // their dtype). Throws mlab::Error naming the file, the stored name and both shapes when the
  // shape differs from `shape`, or naming the closest stored name when it is missing.
  at::Tensor take(const std::string& name, std::vector<int64_t> shape);
  // As take(), nullopt when absent.
  std::optional<at::Tensor> take_optional(const std::string& name, std::vector<int64_t> shape);
  // Checks `name` exists with `shape` without loading it: tensors the architecture has but the
  // VLM never uses (CLIP's post_layernorm and the layers after the feature layer).
  void expect(const std::string& name, std::vector<int64_t> shape);
  bool contains(const std::string& name) const { return canonical_.count(name) != 0; }

  // Throws mlab::Error naming the file and the first few tensors that no take()/expect() asked
  // for (an extra tensor means the files are not the model config.json describes). Names ending
  // in one of `ignorable_suffixes` (buffers such as "embeddings.position_ids") are allowed.
  void check_all_used(const std::vector<std::string>& ignorable_suffixes = {}) const;

  const LoadOptions& options() const { return options_; }
  // The compute dtype of later take() calls (e.g. once stored_dtype() is known).
  void set_dtype(c10::ScalarType dtype) { options_.dtype = dtype; }
  const Checkpoint& checkpoint() const { return checkpoint_; }
  // The stored dtype of the first floating-point tensor (what the files hold), e.g. bf16.
  c10::ScalarType stored_dtype() const;

 private:
  Weights(Checkpoint checkpoint, LoadOptions options)
      : checkpoint_(std::move(checkpoint)), options_(options) {}
  const std::string& stored_name(const std::string& name) const;
  void check_shape(const std::string& name, const std::vector<int64_t>& shape) const;

  Checkpoint checkpoint_;
  LoadOptions options_;
  std::map<std::string, std::string, std::less<>> canonical_;  // canonical -> stored
  std::set<std::string, std::less<>> used_;
};

// The canonical name of a stored tensor name for `family` (see the header comment).
std::string canonical_weight_name(ModelFamily family, std::string_view stored);

}  // namespace mlab::models
