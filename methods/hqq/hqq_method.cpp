// `hqq`: HQQ-style Int4/Int2 KV cache, as transformers' HQQQuantizedCache runs hqq 0.2.2
// (specs/baselines.md §3): min-max affine codes in f32 with bf16 scale and zero (optimize=0, the
// authors' setting: hqq 0.2.2's default; optimize=1: the half-quadratic proximal solver), a
// full-precision residual window of R tokens, the prefill attended unquantized. Stacked on
// mha2mla it quantizes the latent c (target=latent) or the reconstructed K/V (target=kv).
#include "methods/hqq/hqq_quantizer.hpp"
#include "methods/kv_method.hpp"

namespace mlab::methods {
namespace {

std::shared_ptr<const models::Quantizer> make_hqq(const MethodSpec& spec, int axis) {
  HqqOptions o;
  o.bits = static_cast<int>(spec_int(spec, "bits"));
  o.group = spec_int(spec, "group");
  o.axis = axis;
  o.optimize = spec_int(spec, "optimize") != 0;
  return std::make_shared<HqqQuantizer>(o);
}

}  // namespace

std::unique_ptr<KvMethod> make_hqq_method(const MethodSpec& spec) {
  return std::make_unique<QuantizingMethod>(spec, &make_hqq);
}

}  // namespace mlab::methods
