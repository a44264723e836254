#include "models/runtime/activation_checkpoint.hpp"

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <utility>

namespace mlab::models {

namespace {

// The piece to rerun, kept in the autograd context (saved_data holds IValues: a capsule of a
// CustomClassHolder carries an arbitrary object).
struct Rerun : torch::CustomClassHolder {
  explicit Rerun(CheckpointedFn f) : fn(std::move(f)) {}
  CheckpointedFn fn;
};

// torch.utils.checkpoint's CheckpointFunction (use_reentrant=True) in C++: forward(x, params)
// without a graph, backward = rerun + torch.autograd.grad.
struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  // Inputs as apply() numbers them: 0 = x, 1 = rerun (not a tensor), 2.. = params.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            c10::intrusive_ptr<Rerun> rerun, at::TensorList params) {
    // x and the params (the model's own leaves) are inputs, not outputs: saving them keeps the
    // tensors themselves, so grad() below reaches the params' own accumulators.
    std::vector<at::Tensor> saved{x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    at::Tensor y;
    {
      at::NoGradGuard no_grad;  // apply() already runs forward without a graph; said here
      y = rerun->fn(x, /*recompute=*/false);
    }
    ctx->saved_data["rerun"] = c10::IValue::make_capsule(std::move(rerun));
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const auto rerun =
        c10::static_intrusive_pointer_cast<Rerun>(ctx->saved_data.at("rerun").toCapsule());
    const bool x_grad = ctx->needs_input_grad(0);
    at::Tensor x, y;
    {
      at::AutoGradMode grad(true);
      x = saved[0].detach().requires_grad_(x_grad);
      y = rerun->fn(x, /*recompute=*/true);
    }
    std::vector<at::Tensor> wrt;
    if (x_grad) wrt.push_back(x);
    wrt.insert(wrt.end(), saved.begin() + 1, saved.end());
    torch::autograd::variable_list grads(wrt.size());
    if (y.requires_grad() && !wrt.empty()) {
      // allow_unused: a param the output does not depend on gets no gradient (undefined).
      grads = torch::autograd::grad({y}, wrt, {grad_outputs.at(0)}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    }
    torch::autograd::variable_list out;
    std::size_t k = 0;
    out.push_back(x_grad ? grads[k++] : at::Tensor());  // x
    out.emplace_back();                                  // rerun
    while (k < grads.size()) out.push_back(grads[k++]);  // params
    return out;
  }
};

}  // namespace

at::Tensor checkpointed(const at::Tensor& x, const std::vector<at::Tensor>& params,
                        CheckpointedFn fn) {
  bool any = x.requires_grad();
  for (const auto& p : params) any = any || p.requires_grad();
  if (!any || !at::GradMode::is_enabled()) return fn(x, false);
  return CheckpointFunction::apply(x, c10::make_intrusive<Rerun>(std::move(fn)),
                                   at::TensorList(params));
}

}  // namespace mlab::models
