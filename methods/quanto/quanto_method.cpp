// `quanto`: Quanto-style Int4/Int2 KV cache, as transformers' QuantoQuantizedCache runs
// optimum-quanto 0.2.7 (specs/baselines.md §2): per-group affine codes (MaxOptimizer), arithmetic
// in the KV dtype, a full-precision residual window of R tokens, the prefill attended
// unquantized. Stacked on mha2mla it quantizes the latent c (target=latent) or the reconstructed
// K/V (target=kv, the authors' setting).
#include "methods/kv_method.hpp"
#include "methods/quanto/quanto_quantizer.hpp"

namespace mlab::methods {
namespace {

int64_t int_option(const MethodSpec& spec, const char* key, int64_t fallback) {
  const auto it = spec.options.find(key);
  return it == spec.options.end() ? fallback : std::stoll(it->second);
}

class QuantoMethod final : public KvMethod {
 public:
  explicit QuantoMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    QuantoOptions k{.bits = static_cast<int>(int_option(spec_, "bits", 4)),
                    .group = int_option(spec_, "group", 64),
                    .axis = static_cast<int>(int_option(spec_, "axis_key", 0))};
    QuantoOptions v = k;
    v.axis = static_cast<int>(int_option(spec_, "axis_value", 0));
    recipe.key_quantizer = std::make_shared<QuantoQuantizer>(k);
    recipe.value_quantizer = std::make_shared<QuantoQuantizer>(v);
    recipe.residual = int_option(spec_, "residual", 128);
    recipe.quantize_rope = int_option(spec_, "quantize_rope", 0) != 0;
    const auto t = spec_.options.find("target");
    if (t != spec_.options.end() && t->second == "kv") recipe.latent = false;
  }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_quanto_method(const MethodSpec& spec) {
  return std::make_unique<QuantoMethod>(spec);
}

}  // namespace mlab::methods
