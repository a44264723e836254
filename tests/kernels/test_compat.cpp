#include "tests/support/catch_torch.hpp"

#include "compat/torch_compat.hpp"

namespace {
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

void check_sdpa_contract(const at::Device& device) {
  at::manual_seed(0);
  const auto opts = at::device(device);
  for (const int64_t L : {5, 1, 3}) {
    const int64_t S = 5;
    const auto q = at::randn({2, 3, L, 8}, opts);
    const auto k = at::randn({2, 3, S, 8}, opts);
    const auto v = at::randn({2, 3, S, 8}, opts);
    const double scale = 1.0 / std::sqrt(8.0);
    const auto [ref, weights] = mlab::compat::attention_with_weights(q, k, v, std::nullopt, true, scale);
    INFO("L=" << L << " S=" << S);
    CHECK(max_abs_diff(mlab::compat::sdpa(q, k, v, std::nullopt, true, scale), ref) < 1e-5);
    // Bottom-right alignment: the last query sees every key.
    CHECK((weights.select(2, L - 1) > 0).all().item<bool>());
    const auto mask = at::rand({L, S}, opts) > 0.3;
    const auto masked = mask.logical_or(at::eye(L, S, opts.dtype(at::kBool)));  // no empty rows
    const auto [mref, mweights] =
        mlab::compat::attention_with_weights(q, k, v, masked, false, scale);
    CHECK(max_abs_diff(mlab::compat::sdpa(q, k, v, masked, false, scale), mref) < 1e-5);
    CHECK(at::equal(mweights > 0, masked.expand_as(mweights)));
  }
}
}  // namespace

TEST_CASE("compat::sdpa equals attention_with_weights (bottom-right causal, masks)", "[compat]") {
  check_sdpa_contract(at::kCPU);
}

TEST_CASE("compat::sdpa keeps bottom-right alignment on CUDA", "[gpu][compat]") {
  MLAB_REQUIRE_CUDA();
  check_sdpa_contract(at::kCUDA);
}

TEST_CASE("compat::causal_mask is bottom-right aligned", "[compat]") {
  const auto m = mlab::compat::causal_mask(2, 4, at::TensorOptions());
  const auto expected = at::tensor({1, 1, 1, 0, 1, 1, 1, 1}).reshape({2, 4}).to(at::kBool);
  CHECK(at::equal(m, expected));
}
