#pragma once
// Shared by the trainer parity tests (test_trainer, test_trainer_stage2, test_trainer_llava_next,
// test_trainer_qwen): run the steps of a PyTorch log (tools/fixtures/make_train_parity_fixtures.py)
// through our Trainer and compare loss / grad norm / lr per step and the final trainable weights.
// Include after the project headers (it pulls the test prelude).
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/vlm/vlm_test_support.hpp"
#include "training/lr_schedule.hpp"
#include "training/train_batch.hpp"
#include "training/trainable.hpp"
#include "training/trainer.hpp"

namespace mlab::test {

// tests/data/train_parity (tools/fixtures/make_train_parity_fixtures.py).
inline std::filesystem::path parity_dir() { return data_dir() / "train_parity"; }

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// The generator's samples "<i>.{input_ids, attention_mask, pixel_values, labels[, image_sizes |
// image_grid_thw]}". LLaVA-NeXT's (with image_sizes): swift's collator concatenates the patches of
// the batch's images, [P, C, S, S] for the one image -> [1, P, C, S, S]. Qwen2.5-VL's (with
// image_grid_thw i64 [1, 3]): pixel_values [P, C*T*14*14] as the processor gives it.
inline std::vector<training::TrainBatch> read_samples(const models::Checkpoint& file, int64_t n) {
  std::vector<training::TrainBatch> out;
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = std::to_string(i) + ".";
    training::TrainBatch b;
    b.inputs.input_ids = file.get(p + "input_ids").clone();
    b.inputs.attention_mask = file.get(p + "attention_mask").clone();
    b.inputs.pixel_values = file.get(p + "pixel_values").clone();
    if (file.contains(p + "image_sizes")) {
      b.inputs.pixel_values = b.inputs.pixel_values.unsqueeze(0);
      b.inputs.image_sizes = file.get(p + "image_sizes").clone();
    }
    if (file.contains(p + "image_grid_thw")) {
      b.inputs.image_grid_thw = file.get(p + "image_grid_thw").clone();
    }
    b.labels = file.get(p + "labels").clone();
    out.push_back(std::move(b));
  }
  return out;
}

// One generator run: its log `prefix`steps.json, the samples it trained on (`samples_name`, read
// as `samples`), its final trainable weights `prefix`final.safetensors and step 0's gradients
// `prefix`grad0.safetensors.
struct ParityRun {
  nlohmann::json doc;
  models::Checkpoint samples_file;
  models::Checkpoint expected;
  models::Checkpoint grad0;
  std::vector<training::TrainBatch> samples;
};

inline ParityRun load_parity_run(const std::string& prefix, const std::string& samples_name) {
  auto doc = read_json(parity_dir() / (prefix + "steps.json"));
  auto samples_file = models::Checkpoint::open(parity_dir() / samples_name);
  auto expected = models::Checkpoint::open(parity_dir() / (prefix + "final.safetensors"));
  auto grad0 = models::Checkpoint::open(parity_dir() / (prefix + "grad0.safetensors"));
  auto samples = read_samples(samples_file, doc.at("num_samples").get<int64_t>());
  return {std::move(doc), std::move(samples_file), std::move(expected), std::move(grad0),
          std::move(samples)};
}

// The names `set` marks trainable.
inline std::set<std::string> trainable_names(const training::TrainableSet& set) {
  std::set<std::string> names;
  for (const auto& p : set.parameters()) {
    if (p.trainable) names.insert(p.name);
  }
  return names;
}

// The generator's schedule: their WSD (training/lr_schedule.hpp) at the log's learning_rate over
// its steps.
inline training::LrSchedule parity_schedule(const nlohmann::json& doc) {
  return training::LrSchedule::wsd(doc.at("learning_rate").get<double>(), training::WsdSpec{},
                                   doc.at("steps").get<int64_t>());
}

inline bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

// The optimiser settings of a generator log (torch.optim.AdamW's and clip_grad_norm_'s).
inline training::TrainerOptions trainer_options(const nlohmann::json& doc) {
  training::TrainerOptions options;
  options.adamw.beta1 = doc.at("betas")[0];
  options.adamw.beta2 = doc.at("betas")[1];
  options.adamw.eps = doc.at("eps");
  options.adamw.weight_decay = doc.at("weight_decay");
  options.max_grad_norm = doc.at("max_grad_norm");
  return options;
}

// One forward + backward of `batch` with the trainer's loss (the plain mean of one micro-batch).
inline void backward(const models::Vlm& model, const training::TrainBatch& batch) {
  const at::Tensor logits = model.train_logits(batch.inputs);
  const auto n = static_cast<double>(training::supervised_tokens(batch.labels));
  training::causal_lm_loss(logits, batch.labels, n).backward();
}

// Step 0's gradients of `batch` against the generator's `grad0`, each within 1e-4 of max|g|;
// those `must_move` names non-zero. Tensors `zero` names have a gradient that is zero in exact
// arithmetic (e.g. the bias of RoPE-free key rows: softmax ignores a shift shared by every key);
// theirs and ours must then be rounding, <= 1e-6 of the largest gradient of the step. The
// gradients are cleared afterwards; the figures reported.
inline void check_step0_gradients(const models::Vlm& model, const training::Trainer& trainer,
                                  const training::TrainBatch& batch,
                                  const models::Checkpoint& grad0, const std::string& label,
                                  const std::function<bool(const std::string&)>& must_move,
                                  const std::function<bool(const std::string&)>& zero = {}) {
  double max_rel = 0, global = 0, max_zero = 0;
  for (const auto& [name, t] : trainer.trainable_parameters()) {
    global = std::max(global, grad0.get(name).abs().max().item<double>());
  }
  backward(model, batch);
  for (const auto& [name, t] : trainer.trainable_parameters()) {
    INFO(name);
    REQUIRE(t.grad().defined());
    if (zero && zero(name)) {
      // Zero in exact arithmetic: what both sides hold is rounding, next to the largest gradient.
      const double ours = t.grad().abs().max().item<double>();
      const double theirs = grad0.get(name).abs().max().item<double>();
      max_zero = std::max({max_zero, ours / global, theirs / global});
      CHECK(ours <= 1e-6 * global);
      CHECK(theirs <= 1e-6 * global);
      continue;
    }
    // The runtime's own layout (CLIP's patch kernel is [C, 3*P*P]; the file's [C, 3, P, P]).
    const double rel = rel_diff(t.grad(), grad0.get(name).reshape(t.sizes()));
    max_rel = std::max(max_rel, rel);
    CHECK(rel <= 1e-4);
    if (must_move(name)) CHECK(t.grad().abs().max().item<double>() > 0);
  }
  for (const auto& [name, t] : trainer.trainable_parameters()) {
    const_cast<at::Tensor&>(t).mutable_grad() = at::Tensor();
  }
  report("train parity " + label + ": step-0 gradients max|d| / max|g|", max_rel);
  if (zero) report("train parity " + label + ": zero-gradient tensors max|g| / global", max_zero);
}

// A copy of the trainer's trainable tensors (the update size of each is measured against it).
inline std::map<std::string, at::Tensor> snapshot(const training::Trainer& trainer) {
  std::map<std::string, at::Tensor> m;
  for (const auto& [name, t] : trainer.trainable_parameters()) m[name] = t.detach().clone();
  return m;
}

// Runs the steps of `log` (sample t % n at step t, batch 1) and checks each step's loss within
// 1e-4 relative, then lr within 1e-12 and grad norm within 1e-4 over all steps, then the final
// trainable weights against `expected` within 1e-4 of max|w| (and, with `all_move`, that every
// trainable tensor changed). `tolerance`, when given, sets another bound for the tensors it
// names (a value > 0; infinity: not compared); their figure is reported apart. Reports the
// figures under `label`.
inline void check_steps_and_weights(
    training::Trainer& trainer, const std::vector<training::TrainBatch>& samples,
    const nlohmann::json& log, const models::Checkpoint& expected,
    const std::map<std::string, at::Tensor>& initial, const std::string& label, bool all_move,
    const std::function<double(const std::string&)>& tolerance = {}) {
  const auto steps = static_cast<int64_t>(log.size());
  double max_loss_rel = 0, max_norm_rel = 0, max_lr_rel = 0;
  for (int64_t t = 0; t < steps; ++t) {
    const auto& want = log[t];
    const auto got = trainer.step({&samples[t % samples.size()], 1});
    const double loss = want.at("loss"), norm = want.at("grad_norm"), lr = want.at("lr");
    max_loss_rel = std::max(max_loss_rel, std::abs(got.loss - loss) / std::abs(loss));
    max_norm_rel = std::max(max_norm_rel, std::abs(got.grad_norm - norm) / std::abs(norm));
    max_lr_rel = std::max(max_lr_rel, lr == 0 ? std::abs(got.lr) : std::abs(got.lr - lr) / lr);
    INFO("step " << t << ": loss " << got.loss << " vs " << loss << ", grad norm " << got.grad_norm
                 << " vs " << norm << ", lr " << got.lr << " vs " << lr);
    CHECK(std::abs(got.loss - loss) <= 1e-4 * std::abs(loss));
  }
  CHECK(max_lr_rel <= 1e-12);
  CHECK(max_norm_rel <= 1e-4);

  double max_weight_rel = 0, max_update_rel = 0, max_other_rel = 0;
  for (const auto& [name, t] : trainer.trainable_parameters()) {
    INFO(name);
    const double bound = tolerance ? tolerance(name) : 1e-4;
    const at::Tensor want = expected.get(name).reshape(t.sizes());
    const double rel = rel_diff(t.detach(), want);
    // The same difference against the size of the update the steps made.
    const double update =
        (want.to(at::kDouble) - initial.at(name).to(at::kDouble)).abs().max().item<double>();
    const double diff =
        (t.detach().to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
    if (all_move) CHECK(update > 0);
    if (bound != 1e-4) {
      max_other_rel = std::max(max_other_rel, rel);
      if (std::isfinite(bound)) CHECK(rel <= bound);
      continue;
    }
    max_weight_rel = std::max(max_weight_rel, rel);
    max_update_rel = std::max(max_update_rel, update > 0 ? diff / update : diff);
    CHECK(rel <= 1e-4);
  }
  const std::string p = "train parity " + label + ": ";
  report(p + "loss max rel diff (" + std::to_string(steps) + " steps)", max_loss_rel);
  report(p + "grad norm max rel diff", max_norm_rel);
  report(p + "lr max rel diff", max_lr_rel);
  report(p + "final weights max|d| / max|w|", max_weight_rel);
  report(p + "final weights max|d| / max|update|", max_update_rel);
  if (tolerance) report(p + "final weights, other bounds: max|d| / max|w|", max_other_rel);
  report(p + "first loss", log[0].at("loss").get<double>());
  report(p + "last loss", log[steps - 1].at("loss").get<double>());
}

}  // namespace mlab::test
