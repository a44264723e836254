#pragma once
// Trainer: MHA2MLA-VLM fine-tuning steps (issue F8; specs/method.md §6) on the model `eval` runs:
// autograd through models::Vlm (Vlm::train_logits), the trainable subset chosen by canonical
// parameter name (Vlm::named_parameters; training/trainable.hpp computes the authors' per-stage
// sets), the causal-LM loss on swift's labels, gradient accumulation, clipping by global L2 norm
// and AdamW as torch.optim.AdamW, the learning rate of every step from a schedule function
// (training/lr_schedule.hpp: LrSchedule::lr). One optimizer step per step() call, as an HF Trainer
// optimizer step: the LR of 0-based step t is lr(t) (the authors' WSD gives 0 at t = 0).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "models/runtime/vlm.hpp"
#include "training/adamw.hpp"
#include "training/train_batch.hpp"

namespace mlab::training {

// The LR of 0-based optimizer step `step`.
using LrFunction = std::function<double(int64_t step)>;

struct TrainerOptions {
  AdamWOptions adamw;
  double max_grad_norm = 1.0;  // HF TrainingArguments.max_grad_norm; <= 0: no clipping
  // Data parallel (training/distributed.hpp): sums tensors over the ranks, in place
  // (DistributedContext::all_reduce_sum). When set, step() sums the window's supervised-token
  // count before the forward (each rank's loss is divided by the GLOBAL count), then the loss,
  // the token count and the gradients after the backward (DDP's all-reduce, but of sums, not
  // means), so N ranks each given their slice of a window take the step one process takes on the
  // whole window. Unset: one process.
  std::function<void(std::span<at::Tensor>)> all_reduce_sum;
};

// Mixed precision (F8 scope "bf16 ... with fp32 master weights"): when a trainable parameter is
// not f32 (the model loaded with --dtype bfloat16 / float16), the trainer keeps an f32 master copy
// of it, accumulates each micro-batch's gradient into an f32 buffer (Megatron-LM's main_grad),
// clips and runs AdamW on the masters and writes them back rounded to the parameter's dtype
// after every step. The forward and backward run in the model's dtype (frozen weights stay in
// it). f32 parameters are trained in place, as before.

// What one optimizer step did (the per-step record an HF Trainer logs).
struct StepLog {
  int64_t step = 0;        // 0-based optimizer step
  double loss = 0;         // mean cross entropy over the supervised tokens of all micro-batches
  double grad_norm = 0;    // global L2 norm of the gradients before clipping
  double lr = 0;           // the LR this step used
  int64_t tokens = 0;      // input tokens (B * L summed over the micro-batches)
  int64_t supervised = 0;  // tokens with a label (after the shift)
};

// torch.nn.utils.clip_grad_norm_(params, max_norm) (2.x): the L2 norm of the per-tensor L2 norms
// of the defined gradients; every gradient is multiplied by min(max_norm / (norm + 1e-6), 1).
// Returns the norm before clipping. max_norm <= 0: only the norm.
double clip_grad_norm(std::span<const at::Tensor> params, double max_norm);

class Trainer {
 public:
  // Makes the parameters of `model` named in `trainable` (canonical names, in the order given:
  // the optimizer's and the norm's order) require grad and every other parameter not. Throws
  // mlab::Error naming an unknown or repeated name, or a non floating-point parameter.
  // `model` must outlive the trainer.
  Trainer(models::Vlm& model, const std::vector<std::string>& trainable, LrFunction lr,
          TrainerOptions options = {});

  // One optimizer step over the micro-batches of an accumulation window: each forward + backward
  // with its loss summed over tokens and divided by the window's supervised tokens (HF
  // transformers' num_items_in_batch: the window's mean; one micro-batch: the plain mean), then
  // clipping, the AdamW update at lr(step) and zeroed gradients. Throws mlab::Error when the
  // window has no supervised token or the loss is not finite (naming the step; the weights are
  // then as before the step).
  StepLog step(std::span<const TrainBatch> micro_batches);

  // (canonical name, tensor) of the trainable parameters, in the optimizer's order.
  const std::vector<std::pair<std::string, at::Tensor>>& trainable_parameters() const {
    return trainable_;
  }
  int64_t steps_done() const { return step_; }
  const AdamW& optimizer() const { return *optimizer_; }
  // The f32 tensors the optimizer updates, in the optimizer's order: the master copies of
  // non-f32 parameters, else the parameters themselves (checkpoints store them: a resumed
  // mixed-precision run continues from the masters, not from their rounded copies).
  const std::vector<at::Tensor>& master_parameters() const { return optimizer_->params(); }
  bool mixed_precision() const { return mixed_; }
  // A resumed run: the optimizer state and the steps already done (training/train_checkpoint).
  AdamW& optimizer() { return *optimizer_; }
  void set_steps_done(int64_t steps) { step_ = steps; }
  // A resumed mixed-precision run: the saved f32 masters (master_parameters() order and shapes)
  // replace the current ones and are copied into the parameters. Throws mlab::Error on a
  // count or shape that does not fit.
  void load_master_parameters(const std::vector<at::Tensor>& masters);

 private:
  models::Vlm* model_;
  std::vector<std::pair<std::string, at::Tensor>> trainable_;
  LrFunction lr_;
  TrainerOptions options_;
  std::unique_ptr<AdamW> optimizer_;
  bool mixed_ = false;  // some trainable parameter is not f32: masters in optimizer_->params()
  int64_t step_ = 0;

  // Mixed precision: adds the parameters' gradients into the masters' f32 gradients and clears
  // them (called after each micro-batch's backward); copies the masters back after a step.
  void accumulate_master_gradients();
  void copy_masters_to_parameters();
};

}  // namespace mlab::training
