#include "methods/kv_method.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "methods/registry.hpp"
#include "models/runtime/dense_kv_cache.hpp"
#include "models/runtime/latent_kv_cache.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/quantized_kv_cache.hpp"
#include "models/runtime/vlm.hpp"

namespace mlab::methods {
namespace {

// Fault injection for the nightly regression gate's own test (tools/nightly.sh, docs/nightly.md):
// with MLAB_FAULT_CORRUPT_KV=<method name> (quanto | hqq), that method's quantizer stores the
// negated tensor, so every quantized K/V (or latent) entry reads back with the wrong sign, the
// way a broken kernel would corrupt the cache. Unset (always, outside that test): no effect.
class NegatingQuantizer final : public models::Quantizer {
 public:
  explicit NegatingQuantizer(std::shared_ptr<const models::Quantizer> inner)
      : inner_(std::move(inner)) {}
  std::unique_ptr<models::QuantizedTensor> quantize(const at::Tensor& t) const override {
    return inner_->quantize(-t);
  }
  int bits() const override { return inner_->bits(); }
  std::string describe() const override { return inner_->describe() + " (corrupted)"; }

 private:
  std::shared_ptr<const models::Quantizer> inner_;
};

bool fault_corrupts(const std::string& method) {
  const char* v = std::getenv("MLAB_FAULT_CORRUPT_KV");
  return v != nullptr && method == v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// A quantizer's groups must tile every token's elements (whatever the sequence length): the
// group size must divide the per-token width of each tensor it stores — n_kv·d_h for K and V,
// d_c = n_kv·d_kv for the MLA latent (and n_kv·r for its RoPE key with quantize_rope).
// Otherwise optimum-quanto and hqq reject some lengths mid-generation; say so up front.
void check_groups(const MethodStack& stack, const models::Vlm& vlm) {
  const CacheRecipe& recipe = stack.recipe();
  if (!recipe.key_quantizer) return;
  const MethodSpec* quant = nullptr;
  for (const auto& p : stack.parts())
    if (p.name == "quanto" || p.name == "hqq") quant = &p;
  if (quant == nullptr || !quant->options.count("group")) return;
  const int64_t group = std::stoll(quant->options.at("group"));
  const auto& text = vlm.config().text;
  std::vector<std::pair<std::string, int64_t>> widths;
  const auto mla = models::MlaConfig::from_model_config(vlm.config());
  if (mla && recipe.latent) {
    widths.emplace_back("the latent width d_c = n_kv * d_kv", text.num_key_value_heads * mla->d_kv);
    if (recipe.quantize_rope)
      widths.emplace_back("the RoPE key width n_kv * r", text.num_key_value_heads * mla->rope_dim);
  } else {
    widths.emplace_back("the K/V width n_kv * head_dim", text.num_key_value_heads * text.head_dim);
  }
  for (const auto& [what, width] : widths) {
    std::vector<std::string> divisors;
    for (int64_t g = width; g >= 1 && divisors.size() < 4; --g)
      if (width % g == 0 && g <= group) divisors.push_back(std::to_string(g));
    MLAB_CHECK(width % group == 0, "method '", stack.spec(), "': ", quant->name, " group=", group,
               " does not divide ", what, " = ", width, " of the model at ", vlm.dir().string(),
               "; pass a group that does (e.g. group=", join(divisors, " | "), ")");
  }
}

}  // namespace

std::string expand_method_presets(std::string_view spec) {
  std::string out;
  for (const auto& raw : split(spec, '+')) {
    std::string part(trim(raw));
    if (!part.empty() && part.find(':') == std::string::npos) {
      if (const auto preset = method_preset(part)) part = *preset;
    }
    out += (out.empty() ? "" : "+") + part;
  }
  return out;
}

std::vector<std::string> split_method_list(std::string_view list) {
  std::vector<std::string> specs;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t end = list.find_first_of(",;", start);
    const std::string_view piece = trim(
        list.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    const bool after_comma = start > 0 && list[start - 1] == ',';
    // "key=value" with no ':' or '+' before the '=' continues the options of the spec before.
    const std::size_t eq = piece.find('=');
    const bool is_option = eq != std::string_view::npos &&
                           piece.substr(0, eq).find_first_of(":+") == std::string_view::npos;
    if (!piece.empty()) {
      if (is_option && after_comma && !specs.empty()) {
        specs.back() += "," + std::string(piece);
      } else {
        specs.emplace_back(piece);
      }
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return specs;
}

MethodStack make_method_stack(std::string_view spec_text, const models::Vlm* vlm) {
  std::vector<MethodSpec> parts = parse_method_stack(spec_text);
  std::optional<models::MlaConfig> mla;
  if (vlm != nullptr) mla = models::MlaConfig::from_model_config(vlm->config());
  if (mla && mla->stage == 2) {
    // A converted model runs its latent cache under every stack: `full` is `mha2mla`, and a
    // stack without mha2mla gets it in front; d_kv / rope_dim not written are the model's
    // (written ones must agree: Mha2mlaMethod::check_model). A stage-1 model (partial RoPE
    // only) has no latent to speak of: its stacks run as written, K/V caches included.
    if (parts.size() == 1 && parts[0].name == "full") parts[0] = MethodSpec{"mha2mla", {}};
    auto it = std::find_if(parts.begin(), parts.end(),
                           [](const MethodSpec& p) { return p.name == "mha2mla"; });
    if (it == parts.end()) it = parts.insert(parts.begin(), MethodSpec{"mha2mla", {}});
    it->options.emplace("d_kv", std::to_string(mla->d_kv));
    it->options.emplace("rope_dim", std::to_string(mla->rope_dim));
  }
  // Every option resolved (defaults written out), so methods read their options from one place.
  parts = parse_method_stack(format_method_stack(parts));
  MethodStack stack;
  stack.parts_ = parts;
  stack.spec_ = format_method_stack(parts);
  for (const auto& part : parts) {
    stack.methods_.push_back(make_method(part));
  }
  // mha2mla first, so that a quantizer's target=kv can turn the latent off after it.
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].name == "mha2mla") stack.methods_[i]->configure(stack.recipe_);
  }
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].name != "mha2mla") stack.methods_[i]->configure(stack.recipe_);
  }
  if (vlm != nullptr) {
    for (const auto& m : stack.methods_) m->check_model(*vlm);
    check_groups(stack, *vlm);
  }
  return stack;
}

int64_t spec_int(const MethodSpec& spec, const std::string& key) {
  const auto it = spec.options.find(key);
  MLAB_CHECK(it != spec.options.end(), "method ", spec.name, ": option ", key,
             " is not set (specs reach methods resolved by make_method_stack)");
  return std::stoll(it->second);
}

void QuantizingMethod::configure(CacheRecipe& recipe) const {
  recipe.key_quantizer = make_(spec_, static_cast<int>(spec_int(spec_, "axis_key")));
  recipe.value_quantizer = make_(spec_, static_cast<int>(spec_int(spec_, "axis_value")));
  if (fault_corrupts(spec_.name)) {
    recipe.key_quantizer = std::make_shared<NegatingQuantizer>(recipe.key_quantizer);
    recipe.value_quantizer = std::make_shared<NegatingQuantizer>(recipe.value_quantizer);
  }
  recipe.residual = spec_int(spec_, "residual");
  recipe.quantize_rope = spec_int(spec_, "quantize_rope") != 0;
  const auto t = spec_.options.find("target");
  if (t != spec_.options.end() && t->second == "kv") recipe.latent = false;
}

bool MethodStack::is_plain() const { return !recipe_.key_quantizer && !recipe_.pruner; }

models::CacheFactory MethodStack::cache_factory() const {
  if (is_plain()) return {};  // every layer's own cache (dense, or the converted model's latent)
  const CacheRecipe recipe = recipe_;
  return [recipe](int64_t, const models::AttentionLayer& attention, models::AttentionImpl impl,
                  int64_t reserve) -> std::unique_ptr<models::KvCache> {
    const bool mla = dynamic_cast<const models::MlaAttention*>(&attention) != nullptr;
    std::unique_ptr<models::KvCache> cache;
    if (mla && recipe.latent) {
      auto latent = std::make_unique<models::LatentKvCache>(reserve);
      if (recipe.key_quantizer)
        latent->set_quantizer(recipe.key_quantizer, recipe.residual, recipe.quantize_rope);
      cache = std::move(latent);
    } else if (recipe.key_quantizer) {
      cache = std::make_unique<models::QuantizedKvCache>(
          recipe.key_quantizer, recipe.value_quantizer, recipe.residual, impl);
    } else {
      // Dense K/V (for a converted layer: its reconstructed K/V).
      cache = std::make_unique<models::DenseKvCache>(impl, reserve);
    }
    if (recipe.pruner) cache->set_pruner(recipe.pruner());
    return cache;
  };
}

}  // namespace mlab::methods
