#pragma once
// Activation checkpointing (F8, `mla-bench train --activation-checkpointing`): a piece of the
// forward that keeps none of its activations; the backward reruns it with grad on and
// differentiates the rerun. torch.utils.checkpoint.checkpoint (use_reentrant=True), which HF's
// gradient_checkpointing_enable() wraps around each decoder layer, does the same.
#include <ATen/core/Tensor.h>

#include <functional>
#include <vector>

namespace mlab::models {

// The checkpointed piece: x -> y. `recompute` is false for the forward, true for the backward's
// rerun (a piece that writes state, like a layer appending to its KV cache, writes fresh state on
// the rerun, not the forward's a second time).
using CheckpointedFn = std::function<at::Tensor(const at::Tensor& x, bool recompute)>;

// Runs fn(x, false) under no-grad and returns its result with a backward that reruns
// fn(x', true) with grad on (x' = x detached, requiring grad) and returns the gradients of the
// rerun's output w.r.t. x' and `params`. params: the tensors fn reads that require grad (the
// trainable weights; frozen ones are left out and get no gradient). x must require grad or some
// params must, else fn runs plainly. fn must give the same result when rerun (no dropout here).
at::Tensor checkpointed(const at::Tensor& x, const std::vector<at::Tensor>& params,
                        CheckpointedFn fn);

}  // namespace mlab::models
