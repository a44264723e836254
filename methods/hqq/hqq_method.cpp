// `hqq`: HQQ-style Int4/Int2 KV cache, as transformers' HQQQuantizedCache runs hqq 0.2.2
// (specs/baselines.md §3): min-max affine codes in f32 with bf16 scale and zero (optimize=0, the
// authors' setting: hqq 0.2.2's default; optimize=1: the half-quadratic proximal solver), a
// full-precision residual window of R tokens, the prefill attended unquantized. Stacked on
// mha2mla it quantizes the latent c (target=latent) or the reconstructed K/V (target=kv).
#include "methods/hqq/hqq_quantizer.hpp"
#include "methods/kv_method.hpp"

namespace mlab::methods {
namespace {

int64_t int_option(const MethodSpec& spec, const char* key, int64_t fallback) {
  const auto it = spec.options.find(key);
  return it == spec.options.end() ? fallback : std::stoll(it->second);
}

class HqqMethod final : public KvMethod {
 public:
  explicit HqqMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    HqqOptions k;
    k.bits = static_cast<int>(int_option(spec_, "bits", 4));
    k.group = int_option(spec_, "group", 64);
    k.axis = static_cast<int>(int_option(spec_, "axis_key", 0));
    k.optimize = int_option(spec_, "optimize", 0) != 0;
    HqqOptions v = k;
    v.axis = static_cast<int>(int_option(spec_, "axis_value", 0));
    recipe.key_quantizer = std::make_shared<HqqQuantizer>(k);
    recipe.value_quantizer = std::make_shared<HqqQuantizer>(v);
    recipe.residual = int_option(spec_, "residual", 128);
    recipe.quantize_rope = int_option(spec_, "quantize_rope", 0) != 0;
    const auto t = spec_.options.find("target");
    if (t != spec_.options.end() && t->second == "kv") recipe.latent = false;
  }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_hqq_method(const MethodSpec& spec) {
  return std::make_unique<HqqMethod>(spec);
}

}  // namespace mlab::methods
