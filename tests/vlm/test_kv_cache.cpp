// DenseKvCache against a brute-force attention written here (f64 softmax over explicit masks):
// prefill with left padding, decode steps, GQA, per-head pruning with keep(), bytes().
#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "models/runtime/dense_kv_cache.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

using mlab::models::AttentionImpl;
using mlab::models::DenseKvCache;

// q [B,H,L,D] over k/v [B,Hkv,S,D]; allowed bool [B,H or 1,L,S].
at::Tensor brute(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                 const at::Tensor& allowed, double scale) {
  const int64_t rep = q.size(1) / k.size(1);
  const auto kk = k.to(at::kDouble).repeat_interleave(rep, 1);
  const auto vv = v.to(at::kDouble).repeat_interleave(rep, 1);
  auto s = at::matmul(q.to(at::kDouble), kk.transpose(-1, -2)) * scale;
  s = s.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(s, -1), vv);
}

}  // namespace

TEST_CASE("DenseKvCache: padded prefill and decode equal brute-force attention", "[vlm][kv]") {
  at::manual_seed(7);
  const int64_t B = 2, H = 4, Hkv = 2, D = 8, L = 5;
  const double scale = 1.0 / std::sqrt(8.0);
  for (auto impl : {AttentionImpl::kSdpa, AttentionImpl::kEager}) {
    DenseKvCache cache(impl, 2);  // small reserve: appends must grow the buffer
    const auto k = at::randn({B, Hkv, L, D}), v = at::randn({B, Hkv, L, D}),
               q = at::randn({B, H, L, D});
    // Row 0 unpadded, row 1 with 2 left pads.
    const auto valid = at::tensor({1, 1, 1, 1, 1, 0, 0, 1, 1, 1}, at::kLong).ne(0).view({B, L});
    cache.append(k, v, valid);
    const auto out = cache.attend(q, scale);
    auto allowed =
        at::ones({L, L}, at::kBool).tril().view({1, 1, L, L}).logical_and(valid.view({B, 1, 1, L}));
    allowed = allowed.logical_or(at::eye(L, at::kBool).view({1, 1, L, L}));
    const auto expect = brute(q, k, v, allowed, scale);
    CHECK((out.to(at::kDouble) - expect).abs().max().item<double>() < 1e-5);
    // Three decode steps: every earlier valid key and itself.
    auto all_k = k, all_v = v, all_valid = valid;
    for (int step = 0; step < 3; ++step) {
      const auto k1 = at::randn({B, Hkv, 1, D}), v1 = at::randn({B, Hkv, 1, D}),
                 q1 = at::randn({B, H, 1, D});
      cache.append(k1, v1, at::Tensor());
      all_k = at::cat({all_k, k1}, 2);
      all_v = at::cat({all_v, v1}, 2);
      all_valid = at::cat({all_valid, at::ones({B, 1}, at::kBool)}, 1);
      const auto o1 = cache.attend(q1, scale);
      const auto e1 = brute(q1, all_k, all_v, all_valid.view({B, 1, 1, -1}), scale);
      CHECK((o1.to(at::kDouble) - e1).abs().max().item<double>() < 1e-5);
    }
    CHECK(cache.tokens() == L + 3);
    CHECK(cache.bytes() == 2 * B * Hkv * (L + 3) * D * 4);
    CHECK(cache.reserved_bytes() >= cache.bytes());
  }
}

TEST_CASE("DenseKvCache: keep() prunes per head and attention follows", "[vlm][kv]") {
  at::manual_seed(3);
  const int64_t B = 1, H = 2, Hkv = 2, D = 4, L = 6;
  DenseKvCache cache;
  const auto k = at::randn({B, Hkv, L, D}), v = at::randn({B, Hkv, L, D});
  cache.append(k, v, at::Tensor());
  const auto idx = at::tensor({0, 2, 5, 1, 3, 4}, at::kLong).view({B, Hkv, 3});
  cache.keep(idx);
  CHECK(cache.tokens() == 3);
  CHECK(cache.keys().equal(k.gather(2, idx.unsqueeze(-1).expand({-1, -1, -1, D}))));
  const auto q = at::randn({B, H, 1, D});
  const auto k1 = at::randn({B, Hkv, 1, D}), v1 = at::randn({B, Hkv, 1, D});
  cache.append(k1, v1, at::Tensor());
  const auto kept_k = at::cat({k.gather(2, idx.unsqueeze(-1).expand({-1, -1, -1, D})), k1}, 2);
  const auto kept_v = at::cat({v.gather(2, idx.unsqueeze(-1).expand({-1, -1, -1, D})), v1}, 2);
  const auto expect = brute(q, kept_k, kept_v, at::ones({1, 1, 1, 4}, at::kBool), 0.5);
  CHECK((cache.attend(q, 0.5).to(at::kDouble) - expect).abs().max().item<double>() < 1e-5);
  CHECK_THROWS_WITH(cache.keep(at::zeros({2, 2, 1}, at::kLong)), Catch::Contains("[B, H_kv, S']"));
}
