#include "methods/mha2mla/mkl_scorer.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace mlab::methods {

MklScorer::MklScorer(int64_t layers, int64_t q_heads, int64_t kv_heads, int64_t head_dim,
                     int64_t max_queries)
    : layers_(layers),
      q_heads_(q_heads),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      max_queries_(max_queries),
      sum_(at::zeros({layers, kv_heads, head_dim / 2}, at::kDouble)),
      count_(at::zeros({layers}, at::kDouble)) {
  MLAB_CHECK(q_heads % kv_heads == 0 && head_dim % 2 == 0 && max_queries > 0, "MklScorer: heads ",
             q_heads, " / kv heads ", kv_heads, " / head_dim ", head_dim);
}

void MklScorer::add(int64_t layer, const at::Tensor& q, const at::Tensor& k) {
  TORCH_CHECK(layer >= 0 && layer < layers_ && q.dim() == 3 && k.dim() == 3 &&
                  q.size(0) == k.size(0) && q.size(1) == q_heads_ && k.size(1) == kv_heads_ &&
                  q.size(2) == head_dim_ && k.size(2) == head_dim_,
              "MklScorer::add: q ", q.sizes(), " k ", k.sizes(), " layer ", layer);
  const int64_t T = q.size(0), D = head_dim_, F = D / 2, G = q_heads_ / kv_heads_;
  if (T == 0) return;
  // Sampled query positions, evenly spaced, the last included.
  const int64_t n = std::min(T, max_queries_);
  const at::Tensor pos =
      n == T ? at::arange(T, at::kLong)
             : at::linspace(0, static_cast<double>(T - 1), n, at::kDouble).round().to(at::kLong);
  const at::Tensor qs =
      q.to(at::kFloat).index_select(0, pos.to(q.device())).transpose(0, 1);        // [H, n, D]
  const at::Tensor ks = k.to(at::kFloat).transpose(0, 1).repeat_interleave(G, 0);  // [H, T, D]
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const at::Tensor allowed =
      at::arange(T, qs.options().dtype(at::kLong)).view({1, T}) <= pos.to(qs.device()).view({n, 1});
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const at::Tensor full = at::matmul(qs, ks.transpose(1, 2)) * scale;  // [H, n, T]
  const at::Tensor logp = at::log_softmax(full.masked_fill(allowed.logical_not(), neg_inf), -1);
  const at::Tensor pk = at::matmul(logp.exp(), ks);  // E_p[k]: [H, n, D]
  // With c_f the ablated subspace's score term (q_f k_f + q_{f+F} k_{f+F}) / sqrt(D), the masked
  // logits are s - c_f, so KL(P || P_f) = E_p[c_f] + log E_p[exp(-c_f)] (the log-partition terms
  // cancel): one log-sum-exp per frequency, no second softmax.
  // Frequencies in chunks of 8: c [H, n, T, 8] per chunk.
  at::Tensor kl = at::empty({q_heads_, F}, qs.options());
  const at::Tensor logp_t = logp.unsqueeze(-1);
  for (int64_t f0 = 0; f0 < F; f0 += 8) {
    const int64_t m = std::min<int64_t>(8, F - f0);
    const at::Tensor qf = qs.narrow(2, f0, m), qg = qs.narrow(2, f0 + F, m);  // [H, n, m]
    const at::Tensor kf = ks.narrow(2, f0, m), kg = ks.narrow(2, f0 + F, m);  // [H, T, m]
    const at::Tensor mean_c =
        (qf * pk.narrow(2, f0, m) + qg * pk.narrow(2, f0 + F, m)) * scale;  // [H, n, m]
    const at::Tensor c = (qf.unsqueeze(2) * kf.unsqueeze(1) + qg.unsqueeze(2) * kg.unsqueeze(1)) *
                         scale;                                    // [H, n, T, m]
    const at::Tensor log_mean_exp = at::logsumexp(logp_t - c, 2);  // [H, n, m]
    kl.narrow(1, f0, m).copy_((mean_c + log_mean_exp).clamp_min(0).mean(1));
  }
  sum_[layer] += kl.view({kv_heads_, G, F}).mean(1).to(at::kCPU, at::kDouble);
  count_[layer] += 1;
}

at::Tensor MklScorer::scores() const { return sum_ / count_.clamp_min(1).view({layers_, 1, 1}); }

int64_t MklScorer::sequences(int64_t layer) const {
  return static_cast<int64_t>(count_[layer].item<double>());
}

}  // namespace mlab::methods
