// Hugging Face config.json -> ModelConfig (specs/models.md §1.1, parser rules). Every default and
// derived value mirrors transformers 5 (the configuration class is named where it is applied);
// checks go further than transformers where a bad value would only fail later, at model build.
#include "models/config/model_config.hpp"

#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "core/strings.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

namespace mlab::models {
namespace {

using nlohmann::json;

const std::vector<std::string>& rope_types() {
  // transformers.modeling_rope_utils: "default" plus ROPE_INIT_FUNCTIONS' keys.
  static const std::vector<std::string> types = {"default",  "linear", "dynamic",     "yarn",
                                                 "longrope", "llama3", "proportional"};
  return types;
}

// The offending value for messages: `string "32"`, `number 32.0`, `null`; long values shortened.
std::string describe(const json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::string list_text(const std::vector<int64_t>& values) {
  std::vector<std::string> parts;
  for (const int64_t v : values) parts.push_back(std::to_string(v));
  return "[" + join(parts, ", ") + "]";
}

// One JSON object being read. Errors read "<source>: <path>.<key>: <problem>".
class Reader {
 public:
  Reader(const json& object, const std::string& source, std::string path)
      : object_(object), source_(source), path_(std::move(path)) {}

  const std::string& source() const { return source_; }

  std::string where(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  [[noreturn]] void fail(std::string_view key, const std::string& problem) const {
    MLAB_FAIL(source_, ": ", where(key), ": ", problem);
  }

  // The value under `key`, or nullptr when the key is absent (a JSON null is returned as is).
  const json* find(std::string_view key) const {
    const auto it = object_.find(std::string(key));
    return it == object_.end() ? nullptr : &*it;
  }

  // True when `key` is present with a non-null value.
  bool has(std::string_view key) const {
    const json* value = find(key);
    return value != nullptr && !value->is_null();
  }

  int64_t to_integer(std::string_view key, const json& value) const {
    if (!value.is_number_integer()) fail(key, "expected an integer, got " + describe(value));
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(key, "integer " + value.dump() + " is out of range");
    }
    return value.get<int64_t>();
  }

  // Absent -> fallback; anything but an integer (null included) is an error.
  int64_t integer(std::string_view key, int64_t fallback) const {
    const json* value = find(key);
    return value == nullptr ? fallback : to_integer(key, *value);
  }

  // integer() that must be > 0.
  int64_t positive(std::string_view key, int64_t fallback) const {
    return check_positive(key, integer(key, fallback));
  }

  int64_t check_positive(std::string_view key, int64_t value) const {
    if (value <= 0) fail(key, "must be positive, got " + std::to_string(value));
    return value;
  }

  // Absent -> fallback, null -> nullopt (transformers' `int | None` fields).
  std::optional<int64_t> nullable_integer(std::string_view key,
                                          std::optional<int64_t> fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (value->is_null()) return std::nullopt;
    return to_integer(key, *value);
  }

  // A number; integers are accepted where transformers wants a float.
  double number(std::string_view key, double fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_number()) fail(key, "expected a number, got " + describe(*value));
    return value->get<double>();
  }

  double positive_number(std::string_view key, double fallback) const {
    const double value = number(key, fallback);
    if (!(value > 0)) fail(key, "must be positive, got " + find(key)->dump());
    return value;
  }

  std::optional<double> nullable_number(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return positive_number(key, 0);
  }

  std::string string(std::string_view key, const std::string& fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) fail(key, "expected a string, got " + describe(*value));
    return value->get<std::string>();
  }

  std::optional<std::string> nullable_string(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return string(key, "");
  }

  bool boolean(std::string_view key, bool fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_boolean()) fail(key, "expected true or false, got " + describe(*value));
    return value->get<bool>();
  }

  std::optional<bool> nullable_boolean(std::string_view key) const {
    if (!has(key)) return std::nullopt;
    return boolean(key, false);
  }

  // A list of integers; absent -> fallback.
  std::vector<int64_t> integer_list(std::string_view key, std::vector<int64_t> fallback) const {
    const json* value = find(key);
    if (value == nullptr) return fallback;
    if (!value->is_array()) fail(key, "expected a list of integers, got " + describe(*value));
    std::vector<int64_t> out;
    for (std::size_t i = 0; i < value->size(); ++i) {
      out.push_back(to_integer(std::string(key) + "[" + std::to_string(i) + "]", (*value)[i]));
    }
    return out;
  }

  // The object under `key`; nullopt when absent or null, an error when not an object.
  std::optional<Reader> child(std::string_view key) const {
    const json* value = find(key);
    if (value == nullptr || value->is_null()) return std::nullopt;
    if (!value->is_object()) fail(key, "expected an object, got " + describe(*value));
    return Reader(*value, source_, where(key));
  }

 private:
  const json& object_;
  const std::string& source_;
  std::string path_;
};

const json& empty_object() {
  static const json empty = json::object();
  return empty;
}

// `key` or its alias (transformers' attribute_map); both present and different is an error.
int64_t aliased_integer(const Reader& r, std::string_view key, std::string_view alias,
                        int64_t fallback) {
  if (r.has(key) && r.has(alias) && r.integer(key, 0) != r.integer(alias, 0)) {
    r.fail(key, std::to_string(r.integer(key, 0)) + " disagrees with " + std::string(alias) + " " +
                    std::to_string(r.integer(alias, 0)));
  }
  if (r.find(key) != nullptr) return r.integer(key, fallback);
  return r.integer(alias, fallback);
}

// eos_token_id: an int, a list of ints, or null (-> empty).
std::vector<int64_t> eos_list(const Reader& r, std::vector<int64_t> fallback) {
  const json* value = r.find("eos_token_id");
  if (value == nullptr) return fallback;
  if (value->is_null()) return {};
  if (value->is_array()) return r.integer_list("eos_token_id", {});
  if (!value->is_number_integer()) {
    r.fail("eos_token_id", "expected an integer or a list of integers, got " + describe(*value));
  }
  return {r.integer("eos_token_id", 0)};
}

// `dtype` wins over the legacy `torch_dtype` (PreTrainedConfig.__post_init__).
std::optional<std::string> dtype_of(const Reader& r) {
  if (auto dtype = r.nullable_string("dtype")) return dtype;
  return r.nullable_string("torch_dtype");
}

// The RoPE dict transformers standardises: a non-empty `rope_scaling` wins over `rope_parameters`
// (RotaryEmbeddingConfigMixin.convert_rope_params_to_dict).
std::optional<Reader> rope_object(const Reader& r) {
  const json* scaling = r.find("rope_scaling");
  const bool use_scaling =
      scaling != nullptr && !scaling->is_null() && !(scaling->is_object() && scaling->empty());
  return r.child(use_scaling ? "rope_scaling" : "rope_parameters");
}

RopeConfig parse_rope(const Reader& r, const TextConfig& text, double default_theta, bool qwen) {
  // rotate_half pairs the two halves of each head (RotaryEmbeddingConfigMixin.validate_rope).
  if (text.head_dim % 2 != 0) {
    r.fail("head_dim", std::to_string(text.head_dim) + " must be even for rotary embeddings");
  }
  RopeConfig rope;
  rope.theta = r.positive_number("rope_theta", default_theta);
  if (qwen) rope.mrope_section = {16, 24, 24};  // Qwen2_5_VLRotaryEmbedding's fallback
  const std::optional<Reader> params = rope_object(r);
  if (params) {
    rope.theta = params->positive_number("rope_theta", rope.theta);
    const bool has_rope_type = params->find("rope_type") != nullptr;
    rope.type = has_rope_type ? params->string("rope_type", "") : params->string("type", "default");
    // Qwen2_5_VLTextConfig.convert_rope_params_to_dict: "mrope" is default RoPE plus sections.
    if (qwen && rope.type == "mrope") rope.type = "default";
    const auto& known = rope_types();
    if (std::find(known.begin(), known.end(), rope.type) == known.end()) {
      params->fail(has_rope_type ? "rope_type" : "type",
                   unknown_name_message("rope type", rope.type, known));
    }
    rope.factor = params->nullable_number("factor");
    rope.low_freq_factor = params->nullable_number("low_freq_factor");
    rope.high_freq_factor = params->nullable_number("high_freq_factor");
    if (rope.type == "llama3" || rope.type == "yarn" || rope.type == "longrope") {
      rope.original_max_position_embeddings = params->check_positive(
          "original_max_position_embeddings",
          params->integer("original_max_position_embeddings", text.max_position_embeddings));
    }
    if (qwen) rope.mrope_section = params->integer_list("mrope_section", rope.mrope_section);
  }
  if (qwen) {
    // The sections split head_dim / 2 frequencies into (t, h, w) groups (torch.split).
    const Reader& at = params ? *params : r;
    const std::string key = params ? "mrope_section" : "rope_scaling";
    int64_t sum = 0;
    for (const int64_t section : rope.mrope_section) {
      if (section <= 0) {
        at.fail(key, "sections must be positive, got " + list_text(rope.mrope_section));
      }
      sum += section;
    }
    if (sum * 2 != text.head_dim) {
      at.fail(key, "M-RoPE sections " + list_text(rope.mrope_section) + " sum to " +
                       std::to_string(sum) +
                       ", but head_dim / 2 = " + std::to_string(text.head_dim / 2));
    }
  }
  return rope;
}

// Shared size fields of LlamaConfig and Qwen2_5_VLTextConfig, over the family's defaults.
void read_text_sizes(const Reader& r, TextConfig& t) {
  t.vocab_size = r.positive("vocab_size", t.vocab_size);
  t.hidden_size = r.positive("hidden_size", t.hidden_size);
  t.intermediate_size = r.positive("intermediate_size", t.intermediate_size);
  t.num_hidden_layers = r.positive("num_hidden_layers", t.num_hidden_layers);
  t.num_attention_heads = r.positive("num_attention_heads", t.num_attention_heads);
  t.hidden_act = r.string("hidden_act", t.hidden_act);
  t.max_position_embeddings = r.positive("max_position_embeddings", t.max_position_embeddings);
  t.rms_norm_eps = r.positive_number("rms_norm_eps", t.rms_norm_eps);
  t.bos_token_id = r.nullable_integer("bos_token_id", t.bos_token_id);
  t.eos_token_id = eos_list(r, t.eos_token_id);
  t.pad_token_id = r.nullable_integer("pad_token_id", t.pad_token_id);
  // Both LlamaConfig.validate_architecture and Qwen2_5_VLAttention require this, head_dim or not.
  if (t.hidden_size % t.num_attention_heads != 0) {
    r.fail("hidden_size", std::to_string(t.hidden_size) + " is not a multiple of " +
                              r.where("num_attention_heads") + " " +
                              std::to_string(t.num_attention_heads));
  }
}

void check_kv_heads(const Reader& r, const TextConfig& t) {
  r.check_positive("num_key_value_heads", t.num_key_value_heads);
  if (t.num_attention_heads % t.num_key_value_heads != 0) {
    r.fail("num_key_value_heads", std::to_string(t.num_attention_heads) +
                                      " attention heads are not a multiple of " +
                                      std::to_string(t.num_key_value_heads) + " key/value heads");
  }
}

// LlamaConfig from a LLaVA text_config (a dict without model_type is a Llama: LlavaConfig's
// SubConfigSpec default).
TextConfig parse_llama_text(const Reader& r) {
  TextConfig t;
  t.model_type = r.string("model_type", "llama");
  if (t.model_type != "llama") {
    r.fail("model_type", "unsupported text model '" + t.model_type +
                             "'; the LLaVA families here have a 'llama' decoder");
  }
  read_text_sizes(r, t);
  t.num_key_value_heads =
      r.nullable_integer("num_key_value_heads", std::nullopt).value_or(t.num_attention_heads);
  check_kv_heads(r, t);
  t.head_dim =
      r.nullable_integer("head_dim", std::nullopt).value_or(t.hidden_size / t.num_attention_heads);
  r.check_positive("head_dim", t.head_dim);
  t.attention_bias = r.boolean("attention_bias", false);
  t.attention_out_bias = t.attention_bias;  // LlamaAttention: one flag for q, k, v and o
  t.mlp_bias = r.boolean("mlp_bias", false);
  t.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  t.dtype = dtype_of(r);
  t.rope = parse_rope(r, t, 10000.0, /*qwen=*/false);
  t.layer_types.assign(static_cast<std::size_t>(t.num_hidden_layers), "full_attention");
  return t;
}

// Qwen2_5_VLTextConfig from `r`: the text_config object, or the top level of a flat hub file
// (Qwen2_5_VLConfig.__post_init__ moves the text keys there into the text config; it then takes
// the dtype from `torch_dtype` only and leaves `tie_word_embeddings` at the top level).
TextConfig parse_qwen_text(const Reader& r, bool flat) {
  TextConfig t = qwen2_5_vl_text_defaults();
  read_text_sizes(r, t);
  // Absent -> the class default 8; null -> one kv head per query head.
  t.num_key_value_heads = r.nullable_integer("num_key_value_heads", t.num_key_value_heads)
                              .value_or(t.num_attention_heads);
  check_kv_heads(r, t);
  // Qwen2_5_VLAttention always uses hidden_size / heads; a different head_dim key would only
  // reach the rotary embedding and break it.
  t.head_dim = t.hidden_size / t.num_attention_heads;
  if (r.has("head_dim") && r.integer("head_dim", 0) != t.head_dim) {
    r.fail("head_dim", std::to_string(r.integer("head_dim", 0)) +
                           " disagrees with hidden_size / num_attention_heads = " +
                           std::to_string(t.head_dim) + " (Qwen2.5-VL derives head_dim)");
  }
  t.use_sliding_window = r.nullable_boolean("use_sliding_window").value_or(false);
  t.sliding_window = r.nullable_integer("sliding_window", t.sliding_window);
  if (t.sliding_window) r.check_positive("sliding_window", *t.sliding_window);
  if (!t.use_sliding_window) t.sliding_window = std::nullopt;
  t.max_window_layers = r.nullable_integer("max_window_layers", t.max_window_layers);
  t.tie_word_embeddings = flat ? false : r.boolean("tie_word_embeddings", false);
  t.dtype = flat ? r.nullable_string("torch_dtype") : dtype_of(r);
  t.rope = parse_rope(r, t, 1e6, /*qwen=*/true);
  if (r.has("layer_types")) {
    const json& types = *r.find("layer_types");
    if (!types.is_array()) r.fail("layer_types", "expected a list, got " + describe(types));
    if (static_cast<int64_t>(types.size()) != t.num_hidden_layers) {
      r.fail("layer_types", std::to_string(types.size()) + " entries for " +
                                std::to_string(t.num_hidden_layers) + " layers");
    }
    t.layer_types.clear();
    for (std::size_t i = 0; i < types.size(); ++i) {
      const std::string key = "layer_types[" + std::to_string(i) + "]";
      if (!types[i].is_string() ||
          (types[i] != "full_attention" && types[i] != "sliding_attention")) {
        r.fail(key,
               "expected \"full_attention\" or \"sliding_attention\", got " + describe(types[i]));
      }
      t.layer_types.push_back(types[i].get<std::string>());
    }
  } else {
    t.layer_types.clear();
    for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
      const bool sliding = t.sliding_window && t.max_window_layers && i >= *t.max_window_layers;
      t.layer_types.push_back(sliding ? "sliding_attention" : "full_attention");
    }
  }
  return t;
}

// CLIPVisionConfig from a LLaVA vision_config (no model_type -> clip_vision_model).
ClipVisionConfig parse_clip(const Reader& r) {
  ClipVisionConfig v;
  v.model_type = r.string("model_type", v.model_type);
  if (v.model_type != "clip_vision_model") {
    r.fail("model_type", "unsupported vision model '" + v.model_type +
                             "'; the LLaVA families here have a 'clip_vision_model' tower");
  }
  v.hidden_size = r.positive("hidden_size", v.hidden_size);
  v.intermediate_size = r.positive("intermediate_size", v.intermediate_size);
  v.projection_dim = r.positive("projection_dim", v.projection_dim);
  v.num_hidden_layers = r.positive("num_hidden_layers", v.num_hidden_layers);
  v.num_attention_heads = r.positive("num_attention_heads", v.num_attention_heads);
  v.num_channels = r.positive("num_channels", v.num_channels);
  v.image_size = r.positive("image_size", v.image_size);
  v.patch_size = r.positive("patch_size", v.patch_size);
  v.hidden_act = r.string("hidden_act", v.hidden_act);
  v.layer_norm_eps = r.positive_number("layer_norm_eps", v.layer_norm_eps);
  if (v.hidden_size % v.num_attention_heads != 0) {  // CLIPVisionConfig.validate_architecture
    r.fail("hidden_size", std::to_string(v.hidden_size) + " is not a multiple of " +
                              r.where("num_attention_heads") + " " +
                              std::to_string(v.num_attention_heads));
  }
  if (v.image_size % v.patch_size != 0) {
    r.fail("image_size", std::to_string(v.image_size) + " is not a multiple of " +
                             r.where("patch_size") + " " + std::to_string(v.patch_size));
  }
  return v;
}

// Qwen2_5_VLVisionConfig (its attribute_map: num_attention_heads -> num_heads, num_hidden_layers
// -> depth; hub files say in_chans for in_channels).
QwenVisionConfig parse_qwen_vision(const Reader& r) {
  QwenVisionConfig v;
  v.depth = r.check_positive("depth", aliased_integer(r, "depth", "num_hidden_layers", v.depth));
  v.hidden_size = r.positive("hidden_size", v.hidden_size);
  v.intermediate_size = r.positive("intermediate_size", v.intermediate_size);
  v.num_heads = r.check_positive(
      "num_heads", aliased_integer(r, "num_heads", "num_attention_heads", v.num_heads));
  v.in_channels =
      r.check_positive("in_channels", aliased_integer(r, "in_channels", "in_chans", v.in_channels));
  v.patch_size = r.positive("patch_size", v.patch_size);
  v.spatial_merge_size = r.positive("spatial_merge_size", v.spatial_merge_size);
  v.temporal_patch_size = r.positive("temporal_patch_size", v.temporal_patch_size);
  v.tokens_per_second = r.positive("tokens_per_second", v.tokens_per_second);
  v.window_size = r.positive("window_size", v.window_size);
  v.out_hidden_size = r.positive("out_hidden_size", v.out_hidden_size);
  v.fullatt_block_indexes = r.integer_list("fullatt_block_indexes", v.fullatt_block_indexes);
  v.hidden_act = r.string("hidden_act", v.hidden_act);
  v.rope_theta = r.positive_number("rope_theta", v.rope_theta);
  if (const auto params = rope_object(r)) {
    v.rope_theta = params->positive_number("rope_theta", v.rope_theta);
  }
  if (v.hidden_size % v.num_heads != 0) {
    r.fail("hidden_size", std::to_string(v.hidden_size) + " is not a multiple of " +
                              r.where("num_heads") + " " + std::to_string(v.num_heads));
  }
  // The 2-D rotary embedding gives each of the two axes head_dim / 4 frequencies.
  if (v.head_dim() % 4 != 0) {
    r.fail("hidden_size", "head_dim = hidden_size / num_heads = " + std::to_string(v.head_dim()) +
                              " must be a multiple of 4 for the 2-D rotary embedding");
  }
  for (const int64_t block : v.fullatt_block_indexes) {
    if (block < 0 || block >= v.depth) {
      r.fail("fullatt_block_indexes", "block " + std::to_string(block) +
                                          " is out of range for depth " + std::to_string(v.depth));
    }
  }
  return v;
}

// image_grid_pinpoints: a list of [height, width] pairs of positive integers.
std::vector<std::array<int64_t, 2>> parse_pinpoints(const Reader& r) {
  const json* value = r.find("image_grid_pinpoints");
  if (value == nullptr || value->is_null()) {  // LlavaNextConfig.__post_init__ default
    return {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
  }
  const std::string expected = "expected a list of [height, width] pairs of positive integers";
  if (!value->is_array() || value->empty()) {
    r.fail("image_grid_pinpoints", expected + ", got " + describe(*value));
  }
  std::vector<std::array<int64_t, 2>> pinpoints;
  for (std::size_t i = 0; i < value->size(); ++i) {
    const json& pair = (*value)[i];
    const std::string key = "image_grid_pinpoints[" + std::to_string(i) + "]";
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
        !pair[1].is_number_integer() || pair[0].get<int64_t>() <= 0 ||
        pair[1].get<int64_t>() <= 0) {
      r.fail(key, expected + ", got " + describe(pair));
    }
    pinpoints.push_back({pair[0].get<int64_t>(), pair[1].get<int64_t>()});
  }
  return pinpoints;
}

// vision_feature_layer: an int or a list of ints, each a valid index into the CLIP
// hidden_states tuple (embeddings + one per layer).
std::vector<int64_t> parse_feature_layers(const Reader& r, const ClipVisionConfig& vision) {
  const json* value = r.find("vision_feature_layer");
  std::vector<int64_t> layers{-2};
  if (value != nullptr && value->is_array()) {
    layers = r.integer_list("vision_feature_layer", {});
    if (layers.empty()) r.fail("vision_feature_layer", "expected at least one layer, got []");
  } else if (value != nullptr) {
    if (!value->is_number_integer()) {
      r.fail("vision_feature_layer",
             "expected an integer or a list of integers, got " + describe(*value));
    }
    layers = {r.integer("vision_feature_layer", -2)};
  }
  const int64_t states = vision.num_hidden_layers + 1;
  for (const int64_t layer : layers) {
    if (layer < -states || layer >= states) {
      r.fail("vision_feature_layer",
             "layer " + std::to_string(layer) + " is out of range for a vision tower with " +
                 std::to_string(vision.num_hidden_layers) + " layers (valid: " +
                 std::to_string(-states) + " .. " + std::to_string(states - 1) + ")");
    }
  }
  return layers;
}

void parse_llava(const Reader& top, ModelConfig& c) {
  const std::optional<Reader> text = top.child("text_config");
  c.text = parse_llama_text(text ? *text : Reader(empty_object(), top.source(), "text_config"));
  const std::optional<Reader> vision = top.child("vision_config");
  c.clip_vision = vision ? parse_clip(*vision) : llava_clip_defaults();
  // LlavaConfig.attribute_map: image_token_id -> image_token_index.
  c.image_token_id = aliased_integer(top, "image_token_index", "image_token_id", 32000);
  c.vision_feature_layer = parse_feature_layers(top, *c.clip_vision);
  c.vision_feature_select_strategy = top.string("vision_feature_select_strategy", "default");
  if (c.vision_feature_select_strategy != "default" && c.vision_feature_select_strategy != "full") {
    top.fail("vision_feature_select_strategy",
             "expected \"default\" or \"full\", got \"" + c.vision_feature_select_strategy + "\"");
  }
  c.projector_hidden_act = top.string("projector_hidden_act", "gelu");
  c.multimodal_projector_bias = top.boolean("multimodal_projector_bias", true);
  c.image_seq_length = top.positive("image_seq_length", 576);
  if (c.family == ModelFamily::kLlavaNext) c.image_grid_pinpoints = parse_pinpoints(top);
  c.pad_token_id = top.nullable_integer("pad_token_id", std::nullopt);
  c.tie_word_embeddings = top.boolean("tie_word_embeddings", false);
  // LlavaConfig (not LlavaNextConfig) forwards a tied text config to the top level.
  if (c.family == ModelFamily::kLlava) c.tie_word_embeddings |= c.text.tie_word_embeddings;
}

void parse_qwen(const Reader& top, ModelConfig& c) {
  const std::optional<Reader> text = top.child("text_config");
  c.text = parse_qwen_text(text ? *text : top, /*flat=*/!text);
  const std::optional<Reader> vision = top.child("vision_config");
  c.qwen_vision = vision ? parse_qwen_vision(*vision) : QwenVisionConfig{};
  c.image_token_id = top.integer("image_token_id", 151655);
  c.video_token_id = top.integer("video_token_id", 151656);
  c.vision_start_token_id = top.integer("vision_start_token_id", 151652);
  c.vision_end_token_id = top.integer("vision_end_token_id", 151653);
  c.pad_token_id = text ? top.nullable_integer("pad_token_id", std::nullopt) : std::nullopt;
  c.tie_word_embeddings = top.boolean("tie_word_embeddings", false) || c.text.tie_word_embeddings;
  if (c.qwen_vision->out_hidden_size != c.text.hidden_size) {
    const std::string key = vision ? vision->where("out_hidden_size") : "vision_config";
    MLAB_FAIL(top.source(), ": ", key, ": the merger's out_hidden_size ",
              c.qwen_vision->out_hidden_size, " differs from the text hidden_size ",
              c.text.hidden_size);
  }
}

}  // namespace

std::string_view family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::kLlava:
      return "llava";
    case ModelFamily::kLlavaNext:
      return "llava_next";
    case ModelFamily::kQwen2_5_VL:
      return "qwen2_5_vl";
  }
  return "?";
}

const std::vector<std::string>& family_names() {
  static const std::vector<std::string> names = {"llava", "llava_next", "qwen2_5_vl"};
  return names;
}

ModelFamily parse_family(std::string_view name) {
  if (name == "llava") return ModelFamily::kLlava;
  if (name == "llava_next") return ModelFamily::kLlavaNext;
  if (name == "qwen2_5_vl") return ModelFamily::kQwen2_5_VL;
  throw Error(unknown_name_message("model_type", name, family_names()));
}

TextConfig qwen2_5_vl_text_defaults() {
  TextConfig t{.model_type = "qwen2_5_vl_text",
               .vocab_size = 152064,
               .hidden_size = 8192,
               .intermediate_size = 29568,
               .num_hidden_layers = 80,
               .num_attention_heads = 64,
               .num_key_value_heads = 8,
               .head_dim = 128,
               .hidden_act = "silu",
               .max_position_embeddings = 32768,
               .rms_norm_eps = 1e-5,
               .rope = {},
               .attention_bias = true,
               .attention_out_bias = false,
               .mlp_bias = false,
               .tie_word_embeddings = false,
               .bos_token_id = 151643,
               .eos_token_id = {151645},
               .pad_token_id = std::nullopt,
               .dtype = std::nullopt,
               .use_sliding_window = false,
               .sliding_window = 4096,
               .max_window_layers = 80,
               .layer_types = {}};
  t.rope.theta = 1e6;
  t.rope.mrope_section = {16, 24, 24};
  t.layer_types.assign(80, "full_attention");
  return t;
}

ClipVisionConfig llava_clip_defaults() {
  return ClipVisionConfig{.hidden_size = 1024,
                          .intermediate_size = 4096,
                          .projection_dim = 768,
                          .num_hidden_layers = 24,
                          .num_attention_heads = 16,
                          .image_size = 336,
                          .patch_size = 14};
}

ModelConfig parse_model_config(const nlohmann::json& document, const std::string& source) {
  if (!document.is_object()) {
    MLAB_FAIL(source, ": expected a JSON object at the top level, got ", describe(document));
  }
  const Reader top(document, source, "");
  if (!top.has("model_type")) {
    top.fail("model_type", "missing; supported: " + join(family_names(), ", "));
  }
  const std::string model_type = top.string("model_type", "");
  ModelConfig c;
  try {
    c.family = parse_family(model_type);
  } catch (const Error& e) {
    top.fail("model_type", e.what());
  }
  if (c.family == ModelFamily::kQwen2_5_VL) {
    parse_qwen(top, c);
  } else {
    parse_llava(top, c);
  }
  c.use_image_newline_parameter = top.nullable_boolean("use_image_newline_parameter");
  c.vision_token_id = top.nullable_integer("vision_token_id", std::nullopt);
  c.dtype = dtype_of(top);
  c.raw = document;
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& dir_or_file) {
  std::error_code ec;
  const std::filesystem::path file =
      std::filesystem::is_directory(dir_or_file, ec) ? dir_or_file / "config.json" : dir_or_file;
  const std::string source = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    MLAB_FAIL(source, ": cannot open (",
              std::filesystem::exists(file, ec) ? "not readable" : "no such file", ")");
  }
  std::ostringstream text;
  text << in.rdbuf();
  json document;
  try {
    const std::string raw = text.str();
    check_json_depth(raw, source);  // F11 D1: a deep file overflows the stack
    document = json::parse(raw);
  } catch (const json::parse_error& e) {
    MLAB_FAIL(source, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
  return parse_model_config(document, source);
}

namespace {
template <class T>
json or_null(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}
}  // namespace

nlohmann::json resolved_config_json(const ModelConfig& c) {
  const TextConfig& t = c.text;
  const bool llava = c.family != ModelFamily::kQwen2_5_VL;
  json text = {
      {"model_type", t.model_type},
      {"vocab_size", t.vocab_size},
      {"hidden_size", t.hidden_size},
      {"intermediate_size", t.intermediate_size},
      {"num_hidden_layers", t.num_hidden_layers},
      {"num_attention_heads", t.num_attention_heads},
      {"num_key_value_heads", t.num_key_value_heads},
      {"head_dim", t.head_dim},
      {"hidden_act", t.hidden_act},
      {"max_position_embeddings", t.max_position_embeddings},
      {"rms_norm_eps", t.rms_norm_eps},
      {"rope",
       {{"type", t.rope.type},
        {"theta", t.rope.theta},
        {"mrope_section", t.rope.mrope_section},
        {"factor", or_null(t.rope.factor)},
        {"low_freq_factor", or_null(t.rope.low_freq_factor)},
        {"high_freq_factor", or_null(t.rope.high_freq_factor)},
        {"original_max_position_embeddings", or_null(t.rope.original_max_position_embeddings)}}},
      {"attention_bias", t.attention_bias},
      {"attention_out_bias", t.attention_out_bias},
      {"mlp_bias", t.mlp_bias},
      {"tie_word_embeddings", t.tie_word_embeddings},
      {"bos_token_id", or_null(t.bos_token_id)},
      {"eos_token_id", t.eos_token_id},
      {"pad_token_id", or_null(t.pad_token_id)},
      {"dtype", or_null(t.dtype)},
      {"use_sliding_window", t.use_sliding_window},
      {"sliding_window", or_null(t.sliding_window)},
      {"max_window_layers", or_null(t.max_window_layers)},
      {"layer_types", t.layer_types}};
  json clip = nullptr;
  if (c.clip_vision) {
    const ClipVisionConfig& v = *c.clip_vision;
    clip = {{"model_type", v.model_type},
            {"hidden_size", v.hidden_size},
            {"intermediate_size", v.intermediate_size},
            {"projection_dim", v.projection_dim},
            {"num_hidden_layers", v.num_hidden_layers},
            {"num_attention_heads", v.num_attention_heads},
            {"head_dim", v.head_dim()},
            {"num_channels", v.num_channels},
            {"image_size", v.image_size},
            {"patch_size", v.patch_size},
            {"num_patches", v.num_patches()},
            {"hidden_act", v.hidden_act},
            {"layer_norm_eps", v.layer_norm_eps}};
  }
  json qwen = nullptr;
  if (c.qwen_vision) {
    const QwenVisionConfig& v = *c.qwen_vision;
    qwen = {{"model_type", v.model_type},
            {"depth", v.depth},
            {"hidden_size", v.hidden_size},
            {"intermediate_size", v.intermediate_size},
            {"num_heads", v.num_heads},
            {"head_dim", v.head_dim()},
            {"in_channels", v.in_channels},
            {"patch_size", v.patch_size},
            {"spatial_merge_size", v.spatial_merge_size},
            {"temporal_patch_size", v.temporal_patch_size},
            {"tokens_per_second", v.tokens_per_second},
            {"window_size", v.window_size},
            {"out_hidden_size", v.out_hidden_size},
            {"fullatt_block_indexes", v.fullatt_block_indexes},
            {"hidden_act", v.hidden_act},
            {"rope_theta", v.rope_theta}};
  }
  json pinpoints = nullptr;
  if (c.family == ModelFamily::kLlavaNext) {
    pinpoints = json::array();
    for (const auto& [h, w] : c.image_grid_pinpoints) pinpoints.push_back({h, w});
  }
  const auto llava_only = [&](json value) { return llava ? value : json(nullptr); };
  return {{"family", std::string(family_name(c.family))},
          {"text", text},
          {"clip_vision", clip},
          {"qwen_vision", qwen},
          {"image_token_id", c.image_token_id},
          {"vision_feature_layer", llava_only(c.vision_feature_layer)},
          {"vision_feature_select_strategy", llava_only(c.vision_feature_select_strategy)},
          {"projector_hidden_act", llava_only(c.projector_hidden_act)},
          {"multimodal_projector_bias", llava_only(c.multimodal_projector_bias)},
          {"image_seq_length", llava_only(c.image_seq_length)},
          {"image_grid_pinpoints", pinpoints},
          {"use_image_newline_parameter", or_null(c.use_image_newline_parameter)},
          {"video_token_id", or_null(c.video_token_id)},
          {"vision_start_token_id", or_null(c.vision_start_token_id)},
          {"vision_end_token_id", or_null(c.vision_end_token_id)},
          {"vision_token_id", or_null(c.vision_token_id)},
          {"pad_token_id", or_null(c.pad_token_id)},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"dtype", or_null(c.dtype)}};
}

}  // namespace mlab::models
