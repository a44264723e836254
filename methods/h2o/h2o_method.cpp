// `h2o`: H2O (Zhang et al. 2023, heavy-hitter oracle; specs/baselines.md §4): accumulated attention
// per token, sinks and a recent window kept. Pruning acts on whatever the stack stores (dense K/V,
// quantized K/V, the MLA latent with absorbed-attention scores), after every attention forward of
// prefill and decode.
#include "methods/h2o/h2o_pruner.hpp"
#include "methods/kv_method.hpp"

namespace mlab::methods {
namespace {

class H2oMethod final : public KvMethod {
 public:
  explicit H2oMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    const auto options = spec_.options;
    const auto chunk = options.find("chunk");
    if (chunk != options.end()) recipe.prefill_chunk = std::stoll(chunk->second);
    recipe.pruner = [options]() -> std::unique_ptr<models::TokenPruner> {
      return H2oPruner::from_options(options);
    };
  }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_h2o_method(const MethodSpec& spec) {
  return std::make_unique<H2oMethod>(spec);
}

}  // namespace mlab::methods
