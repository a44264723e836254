// `quanto`: Quanto-style Int4/Int2 KV cache, as transformers' QuantoQuantizedCache runs
// optimum-quanto 0.2.7 (specs/baselines.md §2): per-group affine codes (MaxOptimizer), arithmetic
// in the KV dtype, a full-precision residual window of R tokens, the prefill attended
// unquantized. Stacked on mha2mla it quantizes the latent c (target=latent) or the reconstructed
// K/V (target=kv, the authors' setting).
#include "methods/kv_method.hpp"
#include "methods/quanto/quanto_quantizer.hpp"

namespace mlab::methods {
namespace {

std::shared_ptr<const models::Quantizer> make_quanto(const MethodSpec& spec, int axis) {
  return std::make_shared<QuantoQuantizer>(
      QuantoOptions{.bits = static_cast<int>(spec_int(spec, "bits")),
                    .group = spec_int(spec, "group"),
                    .axis = axis});
}

}  // namespace

std::unique_ptr<KvMethod> make_quanto_method(const MethodSpec& spec) {
  return std::make_unique<QuantizingMethod>(spec, &make_quanto);
}

}  // namespace mlab::methods
