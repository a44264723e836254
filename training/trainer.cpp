#include "training/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>
#include <set>

#include "core/error.hpp"

namespace mlab::training {

double clip_grad_norm(std::span<const at::Tensor> params, double max_norm) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  const at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads) norms.push_back(at::linalg_vector_norm(g, 2));
  const at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2);
  if (max_norm > 0) {
    const at::Tensor coef = at::clamp_max(max_norm / (total + 1e-6), 1.0);
    for (auto& g : grads) g.mul_(coef);
  }
  return total.item<double>();
}

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
    trainable_.emplace_back(name, by_name.at(name));
    params.push_back(by_name.at(name));
  }
  optimizer_ = std::make_unique<AdamW>(std::move(params), options_.adamw);
}

StepLog Trainer::step(std::span<const TrainBatch> micro_batches) {
  MLAB_CHECK(!micro_batches.empty(), "Trainer::step: no micro-batches");
  StepLog log;
  log.step = step_;
  log.lr = lr_(step_);
  for (const auto& b : micro_batches) log.supervised += supervised_tokens(b.labels);
  MLAB_CHECK(log.supervised > 0, "step ", step_,
             ": no supervised token in the micro-batches (every label is -100)");
  const at::AutoGradMode grad_mode(true);
  double loss = 0;
  for (const auto& b : micro_batches) {
    const at::Tensor logits = model_->train_logits(b.inputs);  // f32 [B, L, V]
    const at::Tensor l = causal_lm_loss(logits, b.labels, static_cast<double>(log.supervised));
    l.backward();
    loss += l.item<double>();
    log.tokens += b.inputs.input_ids.numel();
  }
  log.loss = loss;
  if (!std::isfinite(loss)) {
    optimizer_->zero_grad();
    MLAB_FAIL("step ", step_, ": the loss is ", loss, "; the weights are left as before the step");
  }
  std::vector<at::Tensor> params;
  for (const auto& [name, t] : trainable_) params.push_back(t);
  log.grad_norm = clip_grad_norm(params, options_.max_grad_norm);
  optimizer_->step(log.lr);
  optimizer_->zero_grad();
  ++step_;
  return log;
}

}  // namespace mlab::training
