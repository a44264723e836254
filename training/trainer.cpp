#include "training/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "core/error.hpp"

namespace mlab::training {
namespace {

// Data parallel (TrainerOptions::all_reduce_sum): the step's loss and token count and the
// gradients of `params`, summed over the ranks. A gradient undefined on some rank (its parameter
// unused by that rank's micro-batches, e.g. kv_proj_img on text-only rows) counts as zeros there;
// one undefined on every rank stays undefined (AdamW then skips it, as one process would).
void all_reduce_step(const std::function<void(std::span<at::Tensor>)>& sum,
                     const std::vector<at::Tensor>& params, double& loss, int64_t& tokens) {
  const at::NoGradGuard no_grad;
  std::vector<double> head = {loss, static_cast<double>(tokens)};
  for (const auto& p : params) head.push_back(p.grad().defined() ? 1.0 : 0.0);
  at::Tensor h = at::tensor(head, at::kDouble);  // f64 [2 + P]: loss, tokens, gradient defined
  sum(std::span<at::Tensor>(&h, 1));
  const double* v = h.data_ptr<double>();
  loss = v[0];
  tokens = static_cast<int64_t>(v[1]);
  std::vector<at::Tensor> grads;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (v[2 + i] == 0) continue;
    at::Tensor& g = const_cast<at::Tensor&>(params[i]).mutable_grad();
    if (!g.defined()) g = at::zeros_like(params[i]);
    grads.push_back(g);
  }
  if (!grads.empty()) sum(grads);
}

}  // namespace

double clip_grad_norm(std::span<const at::Tensor> params, double max_norm) {
  std::vector<at::Tensor> grads;
  bool all_cuda = true;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    grads.push_back(p.grad());
    all_cuda = all_cuda && p.is_cuda();
  }
  if (grads.empty()) return 0.0;
  const at::NoGradGuard no_grad;
  // clip_grad_norm_(foreach=None) takes torch._foreach_norm / _foreach_mul_ on CUDA.
  std::vector<at::Tensor> norms;
  if (all_cuda) {
    norms = at::_foreach_norm(grads, 2);
  } else {
    norms.reserve(grads.size());
    for (const auto& g : grads) norms.push_back(at::linalg_vector_norm(g, 2));
  }
  const at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2);
  if (max_norm > 0) {
    const at::Tensor coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
    if (all_cuda) {
      at::_foreach_mul_(grads, coef);
    } else {
      for (auto& g : grads) g.mul_(coef);
    }
  }
  return total.item<double>();
}

namespace {

// MLAB_TRAIN_PHASES=1: the seconds of each phase of a step on stderr (the device synchronised at
// every lap, so the figures are the phases' own; off, it costs nothing).
class PhaseTimer {
 public:
  explicit PhaseTimer(c10::Device device) : device_(device) {
    static const bool on = [] {
      const char* v = std::getenv("MLAB_TRAIN_PHASES");
      return v != nullptr && std::string(v) == "1";
    }();
    on_ = on;
    if (on_) last_ = now();
  }
  void lap(const char* phase) {
    if (!on_) return;
    const auto t = now();
    seconds_[phase] += std::chrono::duration<double>(t - last_).count();
    last_ = t;
  }
  void report(int64_t step) const {
    if (!on_) return;
    std::string line = "[phases] step " + std::to_string(step);
    for (const auto& [phase, s] : seconds_)
      line += " " + phase + " " + std::to_string(s * 1e3) + "ms";
    std::cerr << line << "\n";
  }

 private:
  std::chrono::steady_clock::time_point now() const {
    if (device_.is_cuda()) {
      at::detail::getCUDAHooks().deviceSynchronize(device_.has_index() ? device_.index() : 0);
    }
    return std::chrono::steady_clock::now();
  }
  c10::Device device_;
  bool on_ = false;
  std::chrono::steady_clock::time_point last_;
  std::map<std::string, double> seconds_;
};

}  // namespace

Trainer::Trainer(models::Vlm& model, const std::vector<std::string>& trainable, LrFunction lr,
                 TrainerOptions options)
    : model_(&model), lr_(std::move(lr)), options_(options) {
  MLAB_CHECK(static_cast<bool>(lr_), "Trainer: no learning-rate schedule");
  std::map<std::string, at::Tensor> by_name;
  for (auto& [name, tensor] : model.named_parameters()) {
    MLAB_CHECK(by_name.emplace(name, tensor).second, "Trainer: the model lists parameter '", name,
               "' twice");
  }
  std::set<std::string> wanted;
  for (const auto& name : trainable) {
    MLAB_CHECK(wanted.insert(name).second, "Trainer: trainable parameter '", name,
               "' is named twice");
    MLAB_CHECK(by_name.count(name) != 0, "Trainer: the model has no parameter '", name, "' (",
               by_name.size(), " parameters, e.g. '", by_name.begin()->first, "')");
  }
  for (auto& [name, tensor] : by_name) {
    const bool train = wanted.count(name) != 0;
    MLAB_CHECK(!train || at::isFloatingType(tensor.scalar_type()), "Trainer: parameter '", name,
               "' is ", tensor.scalar_type(), ", not floating point");
    // Weights::take gives tensors without history: leaves, whose flag can be set.
    if (tensor.requires_grad() != train) tensor.set_requires_grad(train);
  }
  std::vector<at::Tensor> params;
  for (const auto& name : trainable) {
    const at::Tensor& p = by_name.at(name);
    trainable_.emplace_back(name, p);
    mixed_ = mixed_ || p.scalar_type() != at::kFloat;
  }
  for (const auto& [name, p] : trainable_) {
    if (!mixed_ || p.scalar_type() == at::kFloat) {
      params.push_back(p);
      continue;
    }
    const at::NoGradGuard no_grad;
    params.push_back(p.detach().to(at::kFloat).set_requires_grad(true));
  }
  optimizer_ = std::make_unique<AdamW>(std::move(params), options_.adamw);
}

void Trainer::accumulate_master_gradients() {
  if (!mixed_) return;
  const at::NoGradGuard no_grad;
  const auto& masters = optimizer_->params();
  for (std::size_t i = 0; i < trainable_.size(); ++i) {
    at::Tensor& p = trainable_[i].second;
    const at::Tensor& master = masters[i];
    if (p.is_same(master) || !p.grad().defined()) continue;
    at::Tensor& g = const_cast<at::Tensor&>(master).mutable_grad();
    if (g.defined()) {
      g.add_(p.grad());
    } else {
      g = p.grad().to(at::kFloat);
    }
    p.mutable_grad() = at::Tensor();
  }
}

void Trainer::copy_masters_to_parameters() {
  if (!mixed_) return;
  const at::NoGradGuard no_grad;
  const auto& masters = optimizer_->params();
  for (std::size_t i = 0; i < trainable_.size(); ++i) {
    at::Tensor& p = trainable_[i].second;
    if (!p.is_same(masters[i])) p.copy_(masters[i]);
  }
}

void Trainer::load_master_parameters(const std::vector<at::Tensor>& masters) {
  const at::NoGradGuard no_grad;
  const auto& params = optimizer_->params();
  MLAB_CHECK(masters.size() == params.size(), "Trainer: ", masters.size(), " master tensors for ",
             params.size(), " trainable parameters");
  for (std::size_t i = 0; i < params.size(); ++i) {
    MLAB_CHECK(masters[i].sizes() == params[i].sizes(), "Trainer: master weight of '",
               trainable_[i].first, "' has shape ", masters[i].sizes(), ", the parameter ",
               params[i].sizes());
    const_cast<at::Tensor&>(params[i]).copy_(masters[i]);
  }
  copy_masters_to_parameters();
}

StepLog Trainer::step(std::span<const TrainBatch> micro_batches) {
  MLAB_CHECK(!micro_batches.empty(), "Trainer::step: no micro-batches");
  StepLog log;
  log.step = step_;
  log.lr = lr_(step_);
  for (const auto& b : micro_batches) log.supervised += supervised_tokens(b.labels);
  if (options_.all_reduce_sum) {  // data parallel: the count of the whole window, all ranks
    at::Tensor n = at::tensor(std::vector<int64_t>{log.supervised}, at::kLong);
    options_.all_reduce_sum(std::span<at::Tensor>(&n, 1));
    log.supervised = n.item<int64_t>();
  }
  MLAB_CHECK(log.supervised > 0, "step ", step_,
             ": no supervised token in the micro-batches (every label is -100)");
  const at::AutoGradMode grad_mode(true);
  PhaseTimer timer(micro_batches.front().labels.device());
  double loss = 0;
  for (const auto& b : micro_batches) {
    const at::Tensor logits = model_->train_logits(b.inputs);  // f32 [B, L, V]
    timer.lap("forward");
    const at::Tensor l = causal_lm_loss(logits, b.labels, static_cast<double>(log.supervised));
    timer.lap("loss");
    l.backward();
    timer.lap("backward");
    accumulate_master_gradients();
    loss += l.item<double>();
    log.tokens += b.inputs.input_ids.numel();
    timer.lap("accumulate");
  }
  if (options_.all_reduce_sum) {
    all_reduce_step(options_.all_reduce_sum, optimizer_->params(), loss, log.tokens);
  }
  log.loss = loss;
  if (!std::isfinite(loss)) {
    optimizer_->zero_grad();
    for (auto& [name, p] : trainable_) p.mutable_grad() = at::Tensor();
    MLAB_FAIL("step ", step_, ": the loss is ", loss, "; the weights are left as before the step");
  }
  log.grad_norm = clip_grad_norm(optimizer_->params(), options_.max_grad_norm);
  timer.lap("clip");
  optimizer_->step(log.lr);
  optimizer_->zero_grad();
  timer.lap("adamw");
  copy_masters_to_parameters();
  timer.lap("copy_masters");
  timer.report(step_);
  ++step_;
  return log;
}

}  // namespace mlab::training
