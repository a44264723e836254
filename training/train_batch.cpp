#include "training/train_batch.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace mlab::training {

int64_t supervised_tokens(const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "supervised_tokens: labels must be [B, L], got ", labels.sizes());
  if (labels.size(1) < 2) return 0;
  return labels.narrow(1, 1, labels.size(1) - 1).ne(kIgnoreIndex).sum().item<int64_t>();
}

at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, double denominator) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                  logits.size(1) == labels.size(1),
              "causal_lm_loss: logits ", logits.sizes(), " must be [B, L, V] and labels ",
              labels.sizes(), " [B, L]");
  TORCH_CHECK(denominator > 0, "causal_lm_loss: denominator must be positive, got ", denominator);
  const int64_t B = logits.size(0), L = logits.size(1), V = logits.size(2);
  // transformers: labels padded with -100 on the right, then shifted (the last position has no
  // target); the same as dropping the last logit row.
  const at::Tensor target =
      at::constant_pad_nd(labels.to(logits.device(), at::kLong), {0, 1}, kIgnoreIndex)
          .narrow(1, 1, L)
          .reshape({B * L});
  const at::Tensor sum = at::cross_entropy_loss(logits.to(at::kFloat).reshape({B * L, V}), target,
                                                {}, at::Reduction::Sum, kIgnoreIndex);
  return sum / denominator;
}

}  // namespace mlab::training
