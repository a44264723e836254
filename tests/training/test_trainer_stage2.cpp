// The trainer (issue F8, acceptance 1, stage 2 of the tiny LLaVA) against PyTorch running the
// authors' code: tests/data/train_parity/stage2_* (tools/fixtures/make_train_parity_fixtures.py
// --stage 2) holds 50 steps of their stage-2 fine-tuning of the MLA model with the
// modality-decoupled latent (their stage-2 dir llava/stage2_md, peft v2 + lm_head + vision tower
// frozen, the projector trained, the stage-1 samples, torch.optim.AdamW, clip_grad_norm_ 1.0, their
// WSD schedule). Our trainer runs the same steps through models::Vlm, whose MlaAttention sends
// image tokens through kv_proj_img and text tokens through kv_proj_text as at inference.
// MLAB_TEST_REPORT=1 prints the figures.
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
using test::backward;
using test::contains;

std::filesystem::path stage2_dir() { return test::data_dir() / "authors" / "llava" / "stage2_md"; }

}  // namespace

TEST_CASE(
    "Trainer: 50 stage-2 steps of the tiny LLaVA (MLA, decoupled latent) equal PyTorch "
    "running the authors' code",
    "[training]") {
  const auto run = test::load_parity_run("stage2_", "samples.safetensors");
  const auto& doc = run.doc;
  REQUIRE(doc.at("stage") == 2);
  auto model = models::Vlm::load(stage2_dir());
  REQUIRE(model.dtype() == at::kFloat);

  const auto trainable = doc.at("trainable").get<std::vector<std::string>>();
  // The trainable set the authors' stage 2 gives (training/trainable.hpp, v2; r = 8, low_rank 8).
  const auto set = training::TrainableSet::build(
      model.config(), {.stage = 2, .peft = std::nullopt, .rope_dim = 8, .d_kv = 8});
  REQUIRE(set.options().peft == training::PeftVersion::kV2);
  const auto ours = test::trainable_names(set);
  CHECK(ours == std::set<std::string>(trainable.begin(), trainable.end()));

  // Both latent branches of every layer are model parameters (MlaAttention::for_each_parameter).
  const int64_t layers = model.config().text.num_hidden_layers;
  std::set<std::string> listed;
  for (const auto& [name, t] : model.named_parameters()) listed.insert(name);
  for (int64_t l = 0; l < layers; ++l) {
    for (const char* branch : {"kv_proj_img", "kv_proj_text"}) {
      for (const char* w : {"down_kv", "up_k", "up_v"}) {
        const std::string name = "language_model.model.layers." + std::to_string(l) +
                                 ".self_attn." + branch + "." + w + ".weight";
        INFO(name);
        CHECK(listed.count(name) == 1);
        CHECK(std::find(trainable.begin(), trainable.end(), name) != trainable.end());
      }
    }
  }

  const auto schedule = test::parity_schedule(doc);
  const training::TrainerOptions options = test::trainer_options(doc);
  training::Trainer trainer(
      model, trainable, [&](int64_t t) { return schedule.lr(t); }, options);

  const auto initial = test::snapshot(trainer);

  // Step 0's gradients against theirs, branch by branch: image tokens train kv_proj_img, text
  // tokens kv_proj_text, both non-zero.
  test::check_step0_gradients(model, trainer, run.samples[0], run.grad0, "stage 2 llava",
                              [](const std::string& name) { return contains(name, "kv_proj_"); });
  test::check_steps_and_weights(trainer, run.samples, doc.at("log"), run.expected, initial,
                                "stage 2 llava", true);
}

TEST_CASE("Trainer stage 2: a text-only batch trains kv_proj_text and leaves kv_proj_img alone",
          "[training]") {
  auto model = models::Vlm::load(stage2_dir());
  std::vector<std::string> names;
  for (const auto& [name, t] : model.named_parameters()) {
    if (contains(name, "kv_proj_")) names.push_back(name);
  }
  REQUIRE(names.size() == 6 * static_cast<size_t>(model.config().text.num_hidden_layers));
  training::Trainer trainer(model, names, [](int64_t) { return 1e-3; });
  training::TrainBatch batch;
  batch.inputs.input_ids = at::tensor({1, 5, 7, 9, 11}, at::kLong).view({1, 5});
  batch.inputs.attention_mask = at::ones({1, 5}, at::kLong);
  batch.labels = at::tensor({-100, 5, 7, 9, 11}, at::kLong).view({1, 5});
  backward(model, batch);
  for (const auto& [name, t] : trainer.trainable_parameters()) {
    INFO(name);
    const bool img = contains(name, "kv_proj_img");
    const bool moved = t.grad().defined() && t.grad().abs().max().item<double>() > 0;
    CHECK(moved == !img);
  }
}
