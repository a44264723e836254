// Held-out loss of `mla-bench mha2mla` (see evaluate_loss.hpp): the trainer's batches and loss,
// forward only.
#include "training/evaluate_loss.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "core/error.hpp"
#include "training/train_batch.hpp"

namespace mlab::training {

HeldOutLoss evaluate_loss(const models::Vlm& model, std::span<const TrainRecord> records,
                          const TrainDataOptions& options) {
  const at::NoGradGuard no_grad;
  const c10::Device device = model.options().device;
  HeldOutLoss out;
  double sum = 0;  // cross entropy summed over the supervised tokens
  for (const auto& rec : records) {
    TrainBatch b;
    try {
      b = make_train_batch(model, rec, options);
    } catch (const Error& e) {
      out.skipped.push_back({rec.id, e.what()});
      continue;
    }
    auto to_device = [&](at::Tensor& t) {
      if (t.defined()) t = t.to(device);
    };
    to_device(b.inputs.input_ids);
    to_device(b.inputs.attention_mask);
    to_device(b.inputs.pixel_values);
    to_device(b.inputs.image_sizes);
    to_device(b.inputs.image_grid_thw);
    const at::Tensor logits = model.train_logits(b.inputs);  // f32 [1, L, V]
    // denominator 1: the summed cross entropy of the record (causal_lm_loss's reduction "sum").
    sum += causal_lm_loss(logits, b.labels, 1.0).item<double>();
    out.supervised += supervised_tokens(b.labels);
    out.tokens += b.inputs.input_ids.numel();
    ++out.records;
  }
  MLAB_CHECK(out.records > 0, "held-out loss: none of the ", records.size(),
             " records could be encoded",
             out.skipped.empty()
                 ? std::string()
                 : " (first: " + out.skipped.front().id + ": " + out.skipped.front().reason + ")");
  out.loss = out.supervised > 0 ? sum / static_cast<double>(out.supervised) : 0.0;
  return out;
}

}  // namespace mlab::training
