// `h2o`: H2O (Zhang et al. 2023, heavy-hitter oracle; specs/baselines.md §4): accumulated attention
// per token, sinks and a recent window kept. Pruning acts on whatever the stack stores (dense K/V,
// quantized K/V, the MLA latent with absorbed-attention scores), after every attention forward of
// prefill and decode.
#include "methods/h2o/h2o_pruner.hpp"
#include "methods/kv_method.hpp"

namespace mlab::methods {

std::unique_ptr<KvMethod> make_h2o_method(const MethodSpec& spec) {
  return std::make_unique<PruningMethod<H2oPruner>>(spec);
}

}  // namespace mlab::methods
