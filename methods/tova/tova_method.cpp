// `tova`: TOVA (Oren et al. 2024; specs/baselines.md §5): the current (last) query's attention,
// averaged over heads, one token set per layer. Pruning acts on whatever the stack stores (dense
// K/V, quantized K/V, the MLA latent with absorbed-attention scores), after every attention forward
// of prefill and decode.
#include "methods/kv_method.hpp"
#include "methods/tova/tova_pruner.hpp"

namespace mlab::methods {

std::unique_ptr<KvMethod> make_tova_method(const MethodSpec& spec) {
  return std::make_unique<PruningMethod<TovaPruner>>(spec);
}

}  // namespace mlab::methods
