#include "training/adamw.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

#include "core/error.hpp"

namespace mlab::training {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWOptions options)
    : params_(std::move(params)), options_(options), state_(params_.size()) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    MLAB_CHECK(params_[i].defined() && params_[i].requires_grad() && params_[i].is_leaf(),
               "AdamW: parameter ", i, " must be a leaf tensor that requires grad");
  }
  MLAB_CHECK(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 &&
                 options_.beta2 < 1 && options_.eps >= 0 && options_.weight_decay >= 0,
             "AdamW: betas must be in [0, 1), eps and weight decay >= 0; got (", options_.beta1,
             ", ", options_.beta2, "), ", options_.eps, ", ", options_.weight_decay);
}

void AdamW::step(double lr) {
  const at::NoGradGuard no_grad;
  // torch.optim.AdamW picks its multi-tensor (foreach) implementation when every parameter is on
  // CUDA and the single-tensor loop otherwise (_default_to_fused_or_foreach); so do we: the same
  // arithmetic in a few launches per step instead of ~10 per parameter.
  bool all_cuda = !params_.empty();
  for (const auto& p : params_) all_cuda = all_cuda && p.is_cuda();
  if (all_cuda) {
    step_foreach(lr);
    return;
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    State& s = state_[i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    ++s.step;
    p.mul_(1 - lr * options_.weight_decay);
    s.exp_avg.lerp_(g, 1 - options_.beta1);
    s.exp_avg_sq.mul_(options_.beta2).addcmul_(g, g, 1 - options_.beta2);
    const auto t = static_cast<double>(s.step);
    const double bias_correction1 = 1 - std::pow(options_.beta1, t);
    const double bias_correction2 = 1 - std::pow(options_.beta2, t);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    const at::Tensor denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options_.eps);
    p.addcdiv_(s.exp_avg, denom, -step_size);
  }
}

// torch.optim.adamw._multi_tensor_adamw (2.x, capturable false), grouped by dtype as its
// _group_tensors_by_device_and_dtype does.
void AdamW::step_foreach(double lr) {
  std::map<at::ScalarType, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].grad().defined()) groups[params_[i].scalar_type()].push_back(i);
  }
  for (const auto& [dtype, index] : groups) {
    std::vector<at::Tensor> p, g, m, v;
    std::vector<at::Scalar> step_size, bc2_sqrt;
    for (const std::size_t i : index) {
      State& s = state_[i];
      if (!s.exp_avg.defined()) {
        s.exp_avg = at::zeros_like(params_[i], at::MemoryFormat::Preserve);
        s.exp_avg_sq = at::zeros_like(params_[i], at::MemoryFormat::Preserve);
      }
      ++s.step;
      const auto t = static_cast<double>(s.step);
      p.push_back(params_[i]);
      g.push_back(params_[i].grad());
      m.push_back(s.exp_avg);
      v.push_back(s.exp_avg_sq);
      step_size.emplace_back(lr / (1 - std::pow(options_.beta1, t)) * -1);
      bc2_sqrt.emplace_back(std::sqrt(1 - std::pow(options_.beta2, t)));
    }
    if (options_.weight_decay != 0) at::_foreach_mul_(p, 1 - lr * options_.weight_decay);
    at::_foreach_lerp_(m, g, 1 - options_.beta1);
    at::_foreach_mul_(v, options_.beta2);
    at::_foreach_addcmul_(v, g, g, 1 - options_.beta2);
    std::vector<at::Tensor> denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, bc2_sqrt);
    at::_foreach_add_(denom, options_.eps);
    at::_foreach_addcdiv_(p, m, denom, step_size);
  }
}

void AdamW::load_state(std::vector<State> state) {
  MLAB_CHECK(state.size() == params_.size(), "AdamW::load_state: ", state.size(), " states for ",
             params_.size(), " parameters");
  for (std::size_t i = 0; i < state.size(); ++i) {
    const State& s = state[i];
    MLAB_CHECK(!s.exp_avg.defined() ||
                   (s.exp_avg.sizes() == params_[i].sizes() && s.exp_avg_sq.defined() &&
                    s.exp_avg_sq.sizes() == params_[i].sizes()),
               "AdamW::load_state: parameter ", i, ": moments of shape ", s.exp_avg.sizes(),
               ", parameter ", params_[i].sizes());
  }
  state_ = std::move(state);
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

}  // namespace mlab::training
