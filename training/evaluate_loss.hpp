#pragma once
// Held-out loss (issue F8, acceptance 5): the causal-LM loss of a model over fine-tuning records,
// with no gradient, each record encoded and labelled exactly as the trainer does it
// (training/train_data.hpp make_train_batch: swift's training template, loss on the answers and
// the closing suffix) and scored with the trainer's loss (train_batch.hpp causal_lm_loss:
// transformers' ForCausalLMLoss). The figure is the cross entropy summed over every supervised
// token of every record divided by the number of those tokens: the loss of one optimizer step
// whose accumulation window holds all the records (HF's num_items_in_batch), so it is comparable
// with the per-step losses of train_log.jsonl.
#include <cstdint>
#include <span>
#include <vector>

#include "models/runtime/vlm.hpp"
#include "training/train_data.hpp"

namespace mlab::training {

struct HeldOutLoss {
  double loss = 0;                     // mean cross entropy per supervised token (0 if none)
  int64_t records = 0;                 // records scored
  int64_t supervised = 0;              // supervised tokens (after the shift by one)
  int64_t tokens = 0;                  // input tokens
  std::vector<SkippedRecord> skipped;  // records make_train_batch refused, with the reason
};

// The held-out loss of `model` over `records` (one record per forward, on the model's device).
// Records that cannot be encoded (undecodable image, over options.max_length, no supervised
// token) are listed in `skipped` and left out. Throws mlab::Error when no record is scored or
// the forward fails.
HeldOutLoss evaluate_loss(const models::Vlm& model, std::span<const TrainRecord> records,
                          const TrainDataOptions& options);

}  // namespace mlab::training
