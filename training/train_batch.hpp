#pragma once
// TrainBatch: one micro-batch of supervised fine-tuning (issue F8): the model inputs and the
// labels ms-swift's training template gives (models/prompt/train_template.hpp: -100 on the
// prompt, system and image tokens), and the causal-LM loss transformers computes from them.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "models/runtime/vlm.hpp"

namespace mlab::training {

// -100: no loss on this position (transformers' / torch's ignore_index).
inline constexpr int64_t kIgnoreIndex = -100;

struct TrainBatch {
  models::VlmInputs inputs;  // as Vlm::prepare returns them (train mode), or read from a file
  at::Tensor labels;         // i64 [B, L]: the target of position i is predicted at i - 1
};

// The supervised tokens of `labels` (i64 [B, L]) after the shift by one: positions 1..L-1 whose
// label is not -100.
int64_t supervised_tokens(const at::Tensor& labels);

// transformers' ForCausalLMLoss: logits f32 [B, L, V] at positions 0..L-2 predict labels i64
// [B, L] at 1..L-1; -100 ignored; cross entropy summed in f32 and divided by `denominator` (the
// supervised tokens of the micro-batch: reduction "mean"; of the whole accumulation window:
// HF's num_items_in_batch). Returns f32 []. Throws for shapes that disagree or a denominator <= 0.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, double denominator);

}  // namespace mlab::training
