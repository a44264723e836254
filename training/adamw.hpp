#pragma once
// AdamW with decoupled weight decay, step for step as PyTorch's torch.optim.AdamW (2.x,
// _single_tensor_adamw, the CPU default; _multi_tensor_adamw (foreach), its default when every
// parameter is on CUDA, likewise here; the two differ only in rounding), written on ATen
// so that the state is ours to save and no C++ frontend header is needed (STYLE.md, header cost):
//   p *= 1 - lr * wd
//   m.lerp_(g, 1 - beta1);  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Parameters without a gradient (undefined grad) are skipped, their step count untouched.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mlab::training {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // the authors' cfgs (HF's default is 0 too)
};

class AdamW {
 public:
  // params: leaf tensors that require grad (fp32 master weights), updated in place.
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  // One update with learning rate `lr` from each parameter's .grad().
  void step(double lr);
  // Sets every parameter's gradient to undefined (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();

  const std::vector<at::Tensor>& params() const { return params_; }
  const AdamWOptions& options() const { return options_; }
  // Optimizer state per parameter, for checkpoints: exp_avg, exp_avg_sq any [param shape], step.
  struct State {
    at::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  const std::vector<State>& state() const { return state_; }
  // Restores a saved state (a resumed run): one entry per parameter, moments of its shape.
  // Throws mlab::Error for a count or shape that does not fit.
  void load_state(std::vector<State> state);

 private:
  void step_foreach(double lr);  // every parameter on CUDA: torch's multi-tensor path

  std::vector<at::Tensor> params_;
  AdamWOptions options_;
  std::vector<State> state_;
};

}  // namespace mlab::training
