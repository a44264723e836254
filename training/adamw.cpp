#include "training/adamw.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

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

void AdamW::load_state(std::vector<State> state) {
  MLAB_CHECK(state.size() == params_.size(), "AdamW::load_state: ", state.size(),
             " states for ", params_.size(), " parameters");
  for (std::size_t i = 0; i < state.size(); ++i) {
    const State& s = state[i];
    MLAB_CHECK(!s.exp_avg.defined() ||
                   (s.exp_avg.sizes() == params_[i].sizes() &&
                    s.exp_avg_sq.defined() && s.exp_avg_sq.sizes() == params_[i].sizes()),
               "AdamW::load_state: parameter ", i, ": moments of shape ", s.exp_avg.sizes(),
               ", parameter ", params_[i].sizes());
  }
  state_ = std::move(state);
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

}  // namespace mlab::training
