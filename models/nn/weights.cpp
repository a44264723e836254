#include "models/nn/weights.hpp"

#include <ATen/ATen.h>

#include <sstream>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::models {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string shape_string(c10::IntArrayRef shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

}  // namespace

c10::ScalarType parse_compute_dtype(std::string_view name) {
  if (name == "float32" || name == "fp32" || name == "float") return c10::kFloat;
  if (name == "bfloat16" || name == "bf16") return c10::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return c10::kHalf;
  MLAB_FAIL("unknown dtype '", name, "' (expected float32, bfloat16 or float16)");
}

c10::Device parse_device(const std::string& name) {
  try {
    return c10::Device(name);
  } catch (const c10::Error&) {
    throw UsageError("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
  }
}

std::string_view compute_dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      return c10::toString(dtype);
  }
}

std::string canonical_weight_name(ModelFamily family, std::string_view stored) {
  std::string name(stored);
  if (family == ModelFamily::kQwen2_5_VL) {
    if (starts_with(name, "model.language_model.")) return "model." + name.substr(21);
    if (starts_with(name, "model.visual.")) return name.substr(6);
    return name;
  }
  if (starts_with(name, "model.language_model.")) return "language_model.model." + name.substr(21);
  if (name == "lm_head.weight") return "language_model.lm_head.weight";
  if (starts_with(name, "model.vision_tower.") ||
      starts_with(name, "model.multi_modal_projector.") || name == "model.image_newline") {
    name = name.substr(6);
  }
  if (starts_with(name, "vision_tower.") && !starts_with(name, "vision_tower.vision_model.")) {
    return "vision_tower.vision_model." + name.substr(13);
  }
  return name;
}

Weights Weights::open(const std::filesystem::path& dir, ModelFamily family, LoadOptions options) {
  Weights w(Checkpoint::open(dir), options);
  for (const auto& stored : w.checkpoint_.names()) {
    auto canonical = canonical_weight_name(family, stored);
    auto [it, inserted] = w.canonical_.emplace(canonical, stored);
    MLAB_CHECK(inserted, w.checkpoint_.path().string(), ": tensors '", it->second, "' and '",
               stored, "' are the same weight (", canonical, ") under two names");
  }
  return w;
}

const std::string& Weights::stored_name(const std::string& name) const {
  auto it = canonical_.find(name);
  if (it == canonical_.end()) {
    std::vector<std::string> names;
    names.reserve(canonical_.size());
    for (const auto& [canonical, stored] : canonical_) names.push_back(canonical);
    std::string message = str_cat(checkpoint_.path().string(), ": missing tensor '", name, "'");
    if (auto match = closest_match(name, names)) message += "; closest present: '" + *match + "'";
    MLAB_FAIL(message, " (the weights do not match config.json)");
  }
  return it->second;
}

void Weights::check_shape(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto& stored = stored_name(name);
  const TensorInfo& info = checkpoint_.info(stored);
  const std::vector<int64_t> got(info.shape.begin(), info.shape.end());
  MLAB_CHECK(got == shape, checkpoint_.file_of(stored).path().string(), ": tensor '", stored,
             "' has shape ", shape_string(got), ", but config.json implies ", shape_string(shape));
}

at::Tensor Weights::take(const std::string& name, std::vector<int64_t> shape) {
  check_shape(name, shape);
  used_.insert(name);
  at::Tensor t = checkpoint_.get(stored_name(name));
  const auto dtype = at::isFloatingType(t.scalar_type()) ? options_.dtype : t.scalar_type();
  return t.to(options_.device, dtype).contiguous();
}

std::optional<at::Tensor> Weights::take_optional(const std::string& name,
                                                 std::vector<int64_t> shape) {
  if (!contains(name)) return std::nullopt;
  return take(name, std::move(shape));
}

void Weights::expect(const std::string& name, std::vector<int64_t> shape) {
  check_shape(name, shape);
  used_.insert(name);
}

void Weights::check_all_used(const std::vector<std::string>& ignorable_suffixes) const {
  std::vector<std::string> extra;
  for (const auto& [canonical, stored] : canonical_) {
    if (used_.count(canonical)) continue;
    bool ignorable = false;
    for (const auto& suffix : ignorable_suffixes) {
      ignorable |= stored.size() >= suffix.size() &&
                   stored.compare(stored.size() - suffix.size(), suffix.size(), suffix) == 0;
    }
    if (!ignorable) extra.push_back(stored);
  }
  if (extra.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < extra.size() && i < 5; ++i)
    list += (i ? ", '" : "'") + extra[i] + "'";
  if (extra.size() > 5) list += str_cat(", ... (", extra.size(), " in all)");
  MLAB_FAIL(checkpoint_.path().string(), ": unexpected tensor(s) ", list,
            " not part of the model config.json describes");
}

c10::ScalarType Weights::stored_dtype() const {
  for (const auto& name : checkpoint_.names()) {
    at::Tensor t = checkpoint_.get(name);
    if (at::isFloatingType(t.scalar_type())) return t.scalar_type();
  }
  return c10::kFloat;
}

}  // namespace mlab::models
