#include "training/train_batch.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace mlab::training {
namespace {

// The defined tensors `field` of the rows concatenated along dim 0; undefined when none is.
// 5-D pixel values (LLaVA-NeXT [N, P, C, S, S]) are zero-padded along P to the largest P first.
at::Tensor concat_rows(std::span<const TrainBatch> rows, at::Tensor models::VlmInputs::*field,
                       const char* name) {
  std::vector<at::Tensor> parts;
  for (const auto& r : rows) {
    if ((r.inputs.*field).defined()) parts.push_back(r.inputs.*field);
  }
  if (parts.empty()) return {};
  const int64_t dim = parts.front().dim();
  int64_t max_p = 0;
  for (const auto& t : parts) {
    MLAB_CHECK(t.dim() == dim, "collate: ", name, " of the rows have ", dim, " and ", t.dim(),
               " dims");
    if (dim == 5) max_p = std::max(max_p, t.size(1));
  }
  if (dim == 5) {
    for (auto& t : parts) {
      if (t.size(1) < max_p) t = at::constant_pad_nd(t, {0, 0, 0, 0, 0, 0, 0, max_p - t.size(1)});
    }
  }
  return parts.size() == 1 ? parts.front() : at::cat(parts, 0);
}

}  // namespace

TrainBatch collate_train_batches(std::span<const TrainBatch> rows, int64_t pad_id) {
  MLAB_CHECK(!rows.empty(), "collate: no rows");
  int64_t L = 0;
  for (std::size_t b = 0; b < rows.size(); ++b) {
    const auto& r = rows[b];
    MLAB_CHECK(r.inputs.input_ids.dim() == 2 && r.inputs.input_ids.size(0) == 1 &&
                   r.labels.sizes() == r.inputs.input_ids.sizes(),
               "collate: row ", b, " must be one sequence: input_ids ", r.inputs.input_ids.sizes(),
               ", labels ", r.labels.sizes());
    MLAB_CHECK(!r.inputs.attention_mask.defined() || r.inputs.attention_mask.all().item<bool>(),
               "collate: row ", b, " is padded already");
    L = std::max(L, r.inputs.input_ids.size(1));
  }
  const auto B = static_cast<int64_t>(rows.size());
  const auto opts = rows.front().inputs.input_ids.options().dtype(at::kLong);
  TrainBatch out;
  out.inputs.input_ids = at::full({B, L}, pad_id, opts);
  out.labels = at::full({B, L}, kIgnoreIndex, opts);
  out.inputs.attention_mask = at::zeros({B, L}, opts);
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = rows[static_cast<std::size_t>(b)];
    const int64_t n = r.inputs.input_ids.size(1);  // right padding: the row starts at 0
    out.inputs.input_ids[b].narrow(0, 0, n).copy_(r.inputs.input_ids[0]);
    out.labels[b].narrow(0, 0, n).copy_(r.labels[0]);
    out.inputs.attention_mask[b].narrow(0, 0, n).fill_(1);
  }
  out.inputs.pixel_values = concat_rows(rows, &models::VlmInputs::pixel_values, "pixel_values");
  out.inputs.image_sizes = concat_rows(rows, &models::VlmInputs::image_sizes, "image_sizes");
  out.inputs.image_grid_thw =
      concat_rows(rows, &models::VlmInputs::image_grid_thw, "image_grid_thw");
  return out;
}

std::vector<TrainBatch> collate_in_groups(std::span<const TrainBatch> rows,
                                          int64_t rows_per_batch, int64_t pad_id) {
  MLAB_CHECK(rows_per_batch >= 1, "collate: rows per batch must be >= 1, got ", rows_per_batch);
  std::vector<TrainBatch> out;
  const auto n = static_cast<int64_t>(rows.size());
  for (int64_t from = 0; from < n; from += rows_per_batch) {
    const auto count = static_cast<std::size_t>(std::min(rows_per_batch, n - from));
    out.push_back(collate_train_batches(rows.subspan(static_cast<std::size_t>(from), count), pad_id));
  }
  return out;
}

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
