#include "models/image/preprocessor_config.hpp"

#include <string>

#include "core/error.hpp"

namespace mlab::image::detail {
namespace {

const nlohmann::json* find(const nlohmann::json& config, std::string_view key) {
  MLAB_CHECK(config.is_object(), "preprocessor_config: expected a JSON object, got ",
             config.type_name());
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return nullptr;
  return &*it;
}

int64_t as_int(const nlohmann::json& value, std::string_view key) {
  MLAB_CHECK(value.is_number_integer(), "preprocessor_config: ", key, ": expected an integer, got ",
             value.dump());
  return value.get<int64_t>();
}

double as_number(const nlohmann::json& value, std::string_view key) {
  MLAB_CHECK(value.is_number(), "preprocessor_config: ", key, ": expected a number, got ",
             value.dump());
  return value.get<double>();
}

void read_triple(const nlohmann::json& config, std::string_view key, std::array<double, 3>& out) {
  const nlohmann::json* v = find(config, key);
  if (v == nullptr) return;
  if (v->is_number()) {
    out.fill(as_number(*v, key));
    return;
  }
  MLAB_CHECK(v->is_array() && v->size() == 3, "preprocessor_config: ", key,
             ": expected a number or a list of 3 numbers, got ", v->dump());
  for (int c = 0; c < 3; ++c) out[c] = as_number((*v)[c], key);
}

}  // namespace

void read_bool(const nlohmann::json& config, std::string_view key, bool& out) {
  const nlohmann::json* v = find(config, key);
  if (v == nullptr) return;
  MLAB_CHECK(v->is_boolean(), "preprocessor_config: ", key, ": expected true/false, got ",
             v->dump());
  out = v->get<bool>();
}

void read_int(const nlohmann::json& config, std::string_view key, int64_t& out) {
  const nlohmann::json* v = find(config, key);
  if (v != nullptr) out = as_int(*v, key);
}

void read_resample(const nlohmann::json& config, Resample& out) {
  const nlohmann::json* v = find(config, "resample");
  if (v == nullptr) return;
  try {
    out = resample_from_pil_code(static_cast<int>(as_int(*v, "resample")));
  } catch (const Error& e) {
    throw Error(std::string("preprocessor_config: resample: ") + e.what());
  }
}

void read_normalize(const nlohmann::json& config, NormalizeOptions& out) {
  read_bool(config, "do_rescale", out.do_rescale);
  if (const nlohmann::json* v = find(config, "rescale_factor")) {
    out.rescale_factor = as_number(*v, "rescale_factor");
  }
  read_bool(config, "do_normalize", out.do_normalize);
  read_triple(config, "image_mean", out.mean);
  read_triple(config, "image_std", out.std);
}

void read_crop_size(const nlohmann::json& config, int64_t& height, int64_t& width) {
  const nlohmann::json* v = find(config, "crop_size");
  if (v == nullptr) return;
  if (v->is_number_integer()) {
    height = width = as_int(*v, "crop_size");
    return;
  }
  MLAB_CHECK(v->is_object() && v->contains("height") && v->contains("width") && v->size() == 2,
             "preprocessor_config: crop_size: expected an integer or {\"height\", \"width\"}, got ",
             v->dump());
  height = as_int((*v)["height"], "crop_size.height");
  width = as_int((*v)["width"], "crop_size.width");
}

void read_shortest_edge(const nlohmann::json& config, int64_t& shortest_edge) {
  const nlohmann::json* v = find(config, "size");
  if (v == nullptr) return;
  if (v->is_number_integer()) {
    shortest_edge = as_int(*v, "size");
    return;
  }
  MLAB_CHECK(v->is_object() && v->contains("shortest_edge") && v->size() == 1,
             "preprocessor_config: size: only {\"shortest_edge\": N} is supported here, got ",
             v->dump());
  shortest_edge = as_int((*v)["shortest_edge"], "size.shortest_edge");
}

}  // namespace mlab::image::detail
