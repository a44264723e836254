// Per-stage trainable parameter sets of MHA2MLA-VLM, from the config alone (see trainable.hpp).
// The module layout is transformers 4.51's (LlavaForConditionalGeneration,
// LlavaNextForConditionalGeneration, Qwen2_5_VLForConditionalGeneration) after the authors'
// patches; the shapes follow specs/method.md §2.6 (stage 1) and §3.1 (stage 2).
#include "training/trainable.hpp"

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::training {
namespace {

using models::ModelConfig;
using models::ModelFamily;

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// Appends parameters in module order.
class Builder {
 public:
  void add(std::string name, std::vector<int64_t> shape, std::string group) {
    parameters_.push_back({std::move(name), std::move(shape), std::move(group), false});
  }
  // A Linear: weight [out, in], then bias [out] when it has one.
  void linear(const std::string& prefix, int64_t out, int64_t in, bool bias,
              const std::string& group) {
    add(prefix + ".weight", {out, in}, group);
    if (bias) add(prefix + ".bias", {out}, group);
  }
  // A LayerNorm with bias (CLIP).
  void layer_norm(const std::string& prefix, int64_t width, const std::string& group) {
    add(prefix + ".weight", {width}, group);
    add(prefix + ".bias", {width}, group);
  }
  std::vector<ParameterEntry> take() { return std::move(parameters_); }

 private:
  std::vector<ParameterEntry> parameters_;
};

// CLIPVisionModel (all its layers exist, even those after the feature layer).
void add_clip_tower(Builder& b, const models::ClipVisionConfig& v) {
  const std::string p = "vision_tower.vision_model.", g = "vision_tower";
  const int64_t c = v.hidden_size, i = v.intermediate_size, ps = v.patch_size;
  b.add(p + "embeddings.class_embedding", {c}, g);
  b.add(p + "embeddings.patch_embedding.weight", {c, v.num_channels, ps, ps}, g);
  b.add(p + "embeddings.position_embedding.weight", {v.num_patches() + 1, c}, g);
  b.layer_norm(p + "pre_layrnorm", c, g);
  for (int64_t l = 0; l < v.num_hidden_layers; ++l) {
    const std::string q = p + "encoder.layers." + std::to_string(l) + ".";
    for (const char* proj : {"k_proj", "v_proj", "q_proj", "out_proj"}) {
      b.linear(q + "self_attn." + proj, c, c, true, g);
    }
    b.layer_norm(q + "layer_norm1", c, g);
    b.linear(q + "mlp.fc1", i, c, true, g);
    b.linear(q + "mlp.fc2", c, i, true, g);
    b.layer_norm(q + "layer_norm2", c, g);
  }
  b.layer_norm(p + "post_layernorm", c, g);
}

void add_llava_projector(Builder& b, const ModelConfig& config) {
  const int64_t in =
      config.clip_vision->hidden_size * static_cast<int64_t>(config.vision_feature_layer.size());
  const int64_t out = config.text.hidden_size;
  b.linear("multi_modal_projector.linear_1", out, in, config.multimodal_projector_bias,
           "projector");
  b.linear("multi_modal_projector.linear_2", out, out, config.multimodal_projector_bias,
           "projector");
}

// Qwen2_5_VisionTransformerPretrainedModel: the blocks, then the merger (swift's aligner).
void add_qwen_visual(Builder& b, const models::QwenVisionConfig& v) {
  const std::string g = "vision_tower";
  const int64_t c = v.hidden_size, i = v.intermediate_size;
  const int64_t merged = c * v.spatial_merge_size * v.spatial_merge_size;
  b.add("visual.patch_embed.proj.weight",
        {c, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size}, g);
  for (int64_t l = 0; l < v.depth; ++l) {
    const std::string p = "visual.blocks." + std::to_string(l) + ".";
    b.add(p + "norm1.weight", {c}, g);
    b.add(p + "norm2.weight", {c}, g);
    b.linear(p + "attn.qkv", 3 * c, c, true, g);
    b.linear(p + "attn.proj", c, c, true, g);
    b.linear(p + "mlp.gate_proj", i, c, true, g);
    b.linear(p + "mlp.up_proj", i, c, true, g);
    b.linear(p + "mlp.down_proj", c, i, true, g);
  }
  b.add("visual.merger.ln_q.weight", {c}, "projector");
  b.linear("visual.merger.mlp.0", merged, merged, true, "projector");
  b.linear("visual.merger.mlp.2", v.out_hidden_size, merged, true, "projector");
}

// One decoder layer's attention: the original q/k/v/o (stage 0), or after the authors' patches,
// which delete k_proj / v_proj (and stage 1's kv_proj) and append the new modules at the end.
void add_attention(Builder& b, const std::string& p, const models::TextConfig& t,
                   const TrainableOptions& o) {
  const int64_t E = t.hidden_size, D = t.head_dim, nq = t.num_attention_heads,
                nkv = t.num_key_value_heads, r = o.rope_dim;
  const bool bias = t.attention_bias;
  auto module = [&](const std::string& name, int64_t out, int64_t in, bool has_bias) {
    b.linear(p + name, out, in, has_bias, name);
  };
  module("q_proj", nq * D, E, bias);
  if (o.stage == 0) {
    module("k_proj", nkv * D, E, bias);
    module("v_proj", nkv * D, E, bias);
    module("o_proj", E, nq * D, t.attention_out_bias);
    return;
  }
  module("o_proj", E, nq * D, t.attention_out_bias);
  module("k_r_proj", nkv * r, E, bias);  // W_kr: the kept RoPE rows of W_k
  if (o.stage == 1) {
    // LowRankKVLinear without a down projection: up_k = W_k_nope, up_v = W_v.
    module("kv_proj.up_k", nkv * (D - r), E, bias);
    module("kv_proj.up_v", nkv * D, E, bias);
    return;
  }
  const int64_t dc = nkv * o.d_kv;
  for (const char* branch : {"kv_proj_img.", "kv_proj_text."}) {
    const std::string br = branch;
    module(br + "down_kv", dc, E, false);
    module(br + "up_k", nkv * (D - r), dc, bias);
    module(br + "up_v", nkv * D, dc, bias);
  }
}

void add_language_model(Builder& b, const ModelConfig& config, const TrainableOptions& o) {
  const models::TextConfig& t = config.text;
  const bool qwen = config.family == ModelFamily::kQwen2_5_VL;
  const std::string prefix = qwen ? "model." : "language_model.model.";
  const int64_t E = t.hidden_size, I = t.intermediate_size, V = t.vocab_size;
  b.add(prefix + "embed_tokens.weight", {V, E}, "embed_tokens");
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string p = prefix + "layers." + std::to_string(l) + ".";
    add_attention(b, p + "self_attn.", t, o);
    b.linear(p + "mlp.gate_proj", I, E, t.mlp_bias, "mlp");
    b.linear(p + "mlp.up_proj", I, E, t.mlp_bias, "mlp");
    b.linear(p + "mlp.down_proj", E, I, t.mlp_bias, "mlp");
    b.add(p + "input_layernorm.weight", {E}, "norms");
    b.add(p + "post_attention_layernorm.weight", {E}, "norms");
  }
  b.add(prefix + "norm.weight", {E}, "norms");
  // A tied lm_head is the embedding's Parameter: named_parameters() lists it once.
  if (!config.tie_word_embeddings) {
    b.add(qwen ? "lm_head.weight" : "language_model.lm_head.weight", {V, E}, "lm_head");
  }
}

void check_options(const ModelConfig& config, const TrainableOptions& o) {
  const models::TextConfig& t = config.text;
  MLAB_CHECK(o.stage >= 0 && o.stage <= 2, "trainable parameters: stage must be 1 or 2 (0: the ",
             "unconverted model), got ", o.stage);
  if (o.stage >= 1) {
    MLAB_CHECK(o.rope_dim > 0 && o.rope_dim % 2 == 0 && o.rope_dim <= t.head_dim,
               "trainable parameters: rope_dim ", o.rope_dim, " must be even and in (0, ",
               t.head_dim, "] (head_dim)");
  }
  if (o.stage == 2) {
    // The conversion's bound (methods/mha2mla/mha2mla_converter.cpp): the latent factorises
    // [W_k_nope; W_v] (n_kv (2D - r) x E), whose rank bounds d_c = n_kv * d_kv.
    const int64_t rows = t.num_key_value_heads * (2 * t.head_dim - o.rope_dim);
    const int64_t max_dkv = std::min(rows, t.hidden_size) / t.num_key_value_heads;
    MLAB_CHECK(o.d_kv > 0 && o.d_kv <= max_dkv, "trainable parameters: d_kv ", o.d_kv,
               " must be in [1, ", max_dkv, "] (n_kv * d_kv may not exceed min(n_kv * (2 * ",
               "head_dim - rope_dim) = ", rows, ", hidden_size = ", t.hidden_size, "))");
  }
  const bool qwen = config.family == ModelFamily::kQwen2_5_VL;
  MLAB_CHECK(qwen ? config.qwen_vision.has_value() : config.clip_vision.has_value(),
             "trainable parameters: the ", models::family_name(config.family),
             " config has no vision_config");
}

// The language model's own name of a canonical LLM parameter (what freeze_non_attn_weights sees:
// LLaVA passes `language_model`, Qwen2.5-VL `model`); nullopt outside the language model.
std::optional<std::string_view> llm_relative_name(ModelFamily family, std::string_view name) {
  const std::string_view prefix =
      family == ModelFamily::kQwen2_5_VL ? std::string_view("model.") : "language_model.";
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  return name.substr(prefix.size());
}

}  // namespace

PeftVersion parse_peft_version(std::string_view name) {
  const auto& names = peft_version_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<PeftVersion>(i);
  }
  throw Error(unknown_name_message("peft version", name, names));
}

std::string_view peft_version_name(PeftVersion version) {
  return peft_version_names().at(static_cast<size_t>(version));
}

const std::vector<std::string>& peft_version_names() {
  static const std::vector<std::string> names = {"none", "v2", "v3", "v4", "v5", "v6"};
  return names;
}

PeftVersion default_peft_version(int stage) {
  if (stage == 1) return PeftVersion::kV4;
  if (stage == 2) return PeftVersion::kV2;
  return PeftVersion::kNone;
}

bool freeze_vit_for_stage(int stage, bool train_vision, bool freeze_vision) {
  return stage == 0 ? freeze_vision : !train_vision;
}

bool authors_peft_rule(PeftVersion version, std::string_view n) {
  const bool attn = contains(n, "attn"), norm = contains(n, "norm");
  const bool v3 = attn && !contains(n, "o_proj");
  const bool v4 = v3 && !contains(n, "k_r_proj");
  const bool v5 = v4 && !contains(n, "q_proj");
  const bool v6 = v5 && !contains(n, "up_");
  switch (version) {
    case PeftVersion::kNone:
      return true;
    case PeftVersion::kV2:
      return attn || norm;
    case PeftVersion::kV3:
      return v3 || norm;
    case PeftVersion::kV4:
      return v4 || norm;
    case PeftVersion::kV5:
      return v5 || norm;
    case PeftVersion::kV6:
      return v6 || norm;
  }
  return false;
}

int64_t ParameterEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TrainableSet TrainableSet::build(const ModelConfig& config, const TrainableOptions& options) {
  check_options(config, options);
  TrainableSet set;
  set.options_ = options;
  if (!set.options_.peft) set.options_.peft = default_peft_version(options.stage);
  const PeftVersion peft = *set.options_.peft;

  Builder b;
  if (config.family == ModelFamily::kQwen2_5_VL) {
    add_qwen_visual(b, *config.qwen_vision);
  } else {
    // LlavaNext registers image_newline on the top module: named_parameters() yields it first.
    if (config.family == ModelFamily::kLlavaNext) {
      b.add("image_newline", {config.text.hidden_size}, "image_newline");
    }
    add_clip_tower(b, *config.clip_vision);
    add_llava_projector(b, config);
  }
  add_language_model(b, config, set.options_);
  set.parameters_ = b.take();

  for (ParameterEntry& p : set.parameters_) {
    if (p.group == "vision_tower") {
      p.trainable = !options.freeze_vit;
    } else if (p.group == "projector") {
      p.trainable = !options.freeze_aligner;
    } else if (p.group == "image_newline") {
      p.trainable = true;  // in no swift group: keeps prepare_model's requires_grad_(True)
    } else if (p.group == "lm_head") {
      p.trainable = peft == PeftVersion::kNone;  // frozen explicitly after the PEFT rule
    } else {
      const auto rel = llm_relative_name(config.family, p.name);
      MLAB_CHECK(rel.has_value(), "trainable parameters: '", p.name,
                 "' is in no group (a bug in the parameter table)");
      p.trainable = authors_peft_rule(peft, *rel);
    }
  }
  return set;
}

std::vector<ParameterGroup> TrainableSet::groups() const {
  std::vector<ParameterGroup> out;
  std::map<std::string, size_t, std::less<>> index;
  for (const ParameterEntry& p : parameters_) {
    auto [it, inserted] = index.try_emplace(p.group, out.size());
    if (inserted) out.push_back({p.group});
    ParameterGroup& g = out[it->second];
    g.tensors += 1;
    g.parameters += p.numel();
    if (p.trainable) g.trainable_parameters += p.numel();
  }
  return out;
}

int64_t TrainableSet::total_parameters() const {
  int64_t n = 0;
  for (const ParameterEntry& p : parameters_) n += p.numel();
  return n;
}

int64_t TrainableSet::trainable_parameters() const {
  int64_t n = 0;
  for (const ParameterEntry& p : parameters_) n += p.trainable ? p.numel() : 0;
  return n;
}

double TrainableSet::trainable_share() const {
  const int64_t total = total_parameters();
  return total > 0 ? static_cast<double>(trainable_parameters()) / static_cast<double>(total) : 0;
}

nlohmann::json TrainableSet::to_json(bool with_parameters) const {
  const double total = static_cast<double>(total_parameters());
  nlohmann::json groups = nlohmann::json::array();
  for (const ParameterGroup& g : this->groups()) {
    groups.push_back({{"group", g.name},
                      {"tensors", g.tensors},
                      {"parameters", g.parameters},
                      {"trainable_parameters", g.trainable_parameters},
                      {"share", total > 0 ? static_cast<double>(g.parameters) / total : 0.0}});
  }
  nlohmann::json j = {
      {"stage", options_.stage},
      {"peft", peft_version_name(*options_.peft)},
      {"rope_dim",
       options_.stage >= 1 ? nlohmann::json(options_.rope_dim) : nlohmann::json(nullptr)},
      {"d_kv", options_.stage == 2 ? nlohmann::json(options_.d_kv) : nlohmann::json(nullptr)},
      {"freeze_vit", options_.freeze_vit},
      {"freeze_aligner", options_.freeze_aligner},
      {"total_parameters", total_parameters()},
      {"trainable_parameters", trainable_parameters()},
      {"trainable_share", trainable_share()},
      {"groups", std::move(groups)}};
  if (with_parameters) {
    nlohmann::json params = nlohmann::json::array();
    for (const ParameterEntry& p : parameters_) {
      params.push_back(
          {{"name", p.name}, {"shape", p.shape}, {"group", p.group}, {"trainable", p.trainable}});
    }
    j["parameters"] = std::move(params);
  }
  return j;
}

}  // namespace mlab::training
