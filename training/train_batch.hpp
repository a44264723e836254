#pragma once
// TrainBatch: one micro-batch of supervised fine-tuning (issue F8): the model inputs and the
// labels ms-swift's training template gives (models/prompt/train_template.hpp: -100 on the
// prompt, system and image tokens), the collation of several records into one right-padded
// batch (ms-swift 3.4 Template._data_collator), and the causal-LM loss transformers computes.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <vector>

#include "models/runtime/vlm.hpp"

namespace mlab::training {

// -100: no loss on this position (transformers' / torch's ignore_index).
inline constexpr int64_t kIgnoreIndex = -100;

struct TrainBatch {
  models::VlmInputs inputs;  // as Vlm::prepare returns them (train mode), or read from a file
  at::Tensor labels;         // i64 [B, L]: the target of position i is predicted at i - 1
};

// One B-row micro-batch from B unpadded records (each a one-row TrainBatch, as make_train_batch
// gives), as ms-swift 3.4's Template._data_collator builds it in training
// (swift/llm/template/base.py; TemplateArguments.padding_side 'right'):
//   input_ids      i64 [B, L]  each row, then `pad_id` on the RIGHT up to the longest row L;
//   labels         i64 [B, L]  -100 on the padding;
//   attention_mask i64 [B, L]  1 on the row's tokens, 0 on the padding;
//   pixel_values   the rows' images concatenated along dim 0 in row order (LLaVA-NeXT
//                  [N, P, C, S, S]: the patch dim zero-padded to the largest P, as the image
//                  processor pads a batch; the unpadded patches are selected from image_sizes);
//   image_sizes / image_grid_thw concatenated along dim 0 (undefined when no row has images).
// Positions come from Vlm::positions: on right-padded rows the real tokens get 0.. (Llama:
// transformers' arange, swift passes no position_ids) and Qwen2.5-VL's get_rope_index over the
// unpadded tokens, 1 on the padding (swift's position_ids). Throws mlab::Error for no rows, a row
// that is not one unpadded sequence, or rows whose images disagree in layout.
TrainBatch collate_train_batches(std::span<const TrainBatch> rows, int64_t pad_id);

// `mla-bench train --batch-size B`: the rows in consecutive groups of `rows_per_batch` (the last
// group may be shorter), each collated by collate_train_batches: the micro-batches of a window.
std::vector<TrainBatch> collate_in_groups(std::span<const TrainBatch> rows,
                                          int64_t rows_per_batch, int64_t pad_id);

// The supervised tokens of `labels` (i64 [B, L]) after the shift by one: positions 1..L-1 whose
// label is not -100.
int64_t supervised_tokens(const at::Tensor& labels);

// transformers' ForCausalLMLoss: logits f32 [B, L, V] at positions 0..L-2 predict labels i64
// [B, L] at 1..L-1; -100 ignored; cross entropy summed in f32 and divided by `denominator` (the
// supervised tokens of the micro-batch: reduction "mean"; of the whole accumulation window:
// HF's num_items_in_batch). Returns f32 []. Throws for shapes that disagree or a denominator <= 0.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels, double denominator);

}  // namespace mlab::training
