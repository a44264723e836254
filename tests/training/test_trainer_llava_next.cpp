// The trainer (issue F8, acceptance 1) on LLaVA-NeXT, stage 1, against PyTorch running the authors'
// llavanext/ code: tests/data/train_parity/next_* (tools/fixtures/make_train_parity_fixtures.py
// --stage next1) holds 50 steps of their stage-1 fine-tuning of the tiny LLaVA-NeXT (their dir
// llava_next/stage1_mkl, v4 + lm_head + vision tower frozen, projector and image_newline trained,
// swift's llama3_llava_next_hf train-mode samples with anyres patches, torch.optim.AdamW,
// clip_grad_norm_ 1.0, their WSD schedule). MLAB_TEST_REPORT=1 prints the figures.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/training/trainer_parity_support.hpp"
#include "tests/vlm/vlm_test_support.hpp"
#include "training/lr_schedule.hpp"
#include "training/train_batch.hpp"
#include "training/trainable.hpp"
#include "training/trainer.hpp"

namespace {

using namespace mlab;

std::filesystem::path parity_dir() { return test::data_dir() / "train_parity"; }
std::filesystem::path next_dir() {
  return test::data_dir() / "authors" / "llava_next" / "stage1_mkl";
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::vector<training::TrainBatch> read_samples(const models::Checkpoint& file, int64_t n) {
  std::vector<training::TrainBatch> out;
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = std::to_string(i) + ".";
    training::TrainBatch b;
    b.inputs.input_ids = file.get(p + "input_ids").clone();
    b.inputs.attention_mask = file.get(p + "attention_mask").clone();
    // swift's collator concatenates the patches of the batch's images: [P, C, S, S]; one image.
    const at::Tensor pixels = file.get(p + "pixel_values");
    b.inputs.pixel_values = pixels.unsqueeze(0).clone();  // [1, P, C, S, S]
    b.inputs.image_sizes = file.get(p + "image_sizes").clone();
    b.labels = file.get(p + "labels").clone();
    out.push_back(std::move(b));
  }
  return out;
}

// One forward + backward of `batch` with the trainer's loss (the plain mean of one micro-batch).
void backward(const models::Vlm& model, const training::TrainBatch& batch) {
  const at::Tensor logits = model.train_logits(batch.inputs);
  const auto n = static_cast<double>(training::supervised_tokens(batch.labels));
  training::causal_lm_loss(logits, batch.labels, n).backward();
}

}  // namespace

TEST_CASE(
    "Trainer: 50 stage-1 steps of the tiny LLaVA-NeXT (image_newline trained) equal PyTorch "
    "running the authors' code",
    "[training]") {
  const auto doc = read_json(parity_dir() / "next_stage1_steps.json");
  REQUIRE(doc.at("stage") == 1);
  const auto samples_file = models::Checkpoint::open(parity_dir() / "next_samples.safetensors");
  const auto expected = models::Checkpoint::open(parity_dir() / "next_stage1_final.safetensors");
  const auto grad0 = models::Checkpoint::open(parity_dir() / "next_stage1_grad0.safetensors");
  const auto samples = read_samples(samples_file, doc.at("num_samples").get<int64_t>());
  auto model = models::Vlm::load(next_dir());
  REQUIRE(model.dtype() == at::kFloat);

  const auto trainable = doc.at("trainable").get<std::vector<std::string>>();
  // The trainable set the authors' stage 1 gives (training/trainable.hpp, v4; r = 8), with
  // image_newline (in no swift group: trained in both stages).
  const auto set = training::TrainableSet::build(model.config(),
                                                 {.stage = 1, .peft = std::nullopt, .rope_dim = 8});
  std::set<std::string> ours;
  for (const auto& p : set.parameters()) {
    if (p.trainable) ours.insert(p.name);
  }
  CHECK(ours == std::set<std::string>(trainable.begin(), trainable.end()));
  CHECK(ours.count("image_newline") == 1);

  const auto schedule = training::LrSchedule::wsd(
      doc.at("learning_rate").get<double>(), training::WsdSpec{}, doc.at("steps").get<int64_t>());
  training::TrainerOptions options;
  options.adamw.beta1 = doc.at("betas")[0];
  options.adamw.beta2 = doc.at("betas")[1];
  options.adamw.eps = doc.at("eps");
  options.adamw.weight_decay = doc.at("weight_decay");
  options.max_grad_norm = doc.at("max_grad_norm");
  training::Trainer trainer(
      model, trainable, [&](int64_t t) { return schedule.lr(t); }, options);

  const auto initial = test::snapshot(trainer);

  // Step 0's gradients against theirs (image_newline's included, non-zero).
  double max_grad0_rel = 0;
  {
    backward(model, samples[0]);
    for (const auto& [name, t] : trainer.trainable_parameters()) {
      INFO(name);
      REQUIRE(t.grad().defined());
      const at::Tensor want = grad0.get(name);
      const double rel = test::rel_diff(t.grad(), want);
      max_grad0_rel = std::max(max_grad0_rel, rel);
      CHECK(rel <= 1e-4);
      if (name == "image_newline") CHECK(t.grad().abs().max().item<double>() > 0);
    }
    for (const auto& [name, t] : trainer.trainable_parameters()) {
      const_cast<at::Tensor&>(t).mutable_grad() = at::Tensor();
    }
  }

  test::report("train parity stage 1 llava_next: step-0 gradients max|d| / max|g|", max_grad0_rel);
  test::check_steps_and_weights(trainer, samples, doc.at("log"), expected, initial,
                                "stage 1 llava_next", true);
}
