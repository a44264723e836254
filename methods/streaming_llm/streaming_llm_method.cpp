// `streaming_llm`: StreamingLLM (Xiao et al. 2024): attention sinks plus the most recent tokens, no
// attention needed. Pruning acts on whatever the stack stores (dense K/V, quantized K/V, the MLA
// latent with absorbed-attention scores), after every attention forward of prefill and decode.
#include "methods/kv_method.hpp"
#include "methods/streaming_llm/streaming_llm_pruner.hpp"

namespace mlab::methods {
namespace {

class StreamingLlmMethod final : public KvMethod {
 public:
  explicit StreamingLlmMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    const auto options = spec_.options;
    const auto chunk = options.find("chunk");
    if (chunk != options.end()) recipe.prefill_chunk = std::stoll(chunk->second);
    recipe.pruner = [options]() -> std::unique_ptr<models::TokenPruner> {
      return StreamingLlmPruner::from_options(options);
    };
  }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_streaming_llm_method(const MethodSpec& spec) {
  return std::make_unique<StreamingLlmMethod>(spec);
}

}  // namespace mlab::methods
