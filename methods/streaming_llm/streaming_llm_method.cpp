// `streaming_llm`: StreamingLLM (Xiao et al. 2024): attention sinks plus the most recent tokens, no
// attention needed. Pruning acts on whatever the stack stores (dense K/V, quantized K/V, the MLA
// latent with absorbed-attention scores), after every attention forward of prefill and decode.
#include "methods/kv_method.hpp"
#include "methods/streaming_llm/streaming_llm_pruner.hpp"

namespace mlab::methods {

std::unique_ptr<KvMethod> make_streaming_llm_method(const MethodSpec& spec) {
  return std::make_unique<PruningMethod<StreamingLlmPruner>>(spec);
}

}  // namespace mlab::methods
