// `tova`: TOVA (Oren et al. 2024; specs/baselines.md §5): the current (last) query's attention,
// averaged over heads, one token set per layer. Pruning acts on whatever the stack stores (dense
// K/V, quantized K/V, the MLA latent with absorbed-attention scores), after every attention forward
// of prefill and decode.
#include "methods/kv_method.hpp"
#include "methods/tova/tova_pruner.hpp"

namespace mlab::methods {
namespace {

class TovaMethod final : public KvMethod {
 public:
  explicit TovaMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    const auto options = spec_.options;
    const auto chunk = options.find("chunk");
    if (chunk != options.end()) recipe.prefill_chunk = std::stoll(chunk->second);
    recipe.pruner = [options]() -> std::unique_ptr<models::TokenPruner> {
      return TovaPruner::from_options(options);
    };
  }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_tova_method(const MethodSpec& spec) {
  return std::make_unique<TovaMethod>(spec);
}

}  // namespace mlab::methods
