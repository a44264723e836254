// The trainer (issue F8, acceptance 1) on LLaVA-NeXT against PyTorch running the authors'
// llavanext/ code: tests/data/train_parity/next_stage{1,2}_* (tools/fixtures/
// make_train_parity_fixtures.py --stage next1 | next2) hold 50 steps of their stage-1 and stage-2
// fine-tuning of the tiny LLaVA-NeXT (their dirs llava_next/stage1_mkl, v4, and stage2_md, v2 with
// the modality-decoupled latent; lm_head + vision tower frozen, projector and image_newline
// trained, swift's llama3_llava_next_hf train-mode samples with anyres patches,
// torch.optim.AdamW, clip_grad_norm_ 1.0, their WSD schedule). MLAB_TEST_REPORT=1 prints the
// figures.
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
using test::contains;

std::filesystem::path next_dir() {
  return test::data_dir() / "authors" / "llava_next" / "stage1_mkl";
}

std::filesystem::path next2_dir() {
  return test::data_dir() / "authors" / "llava_next" / "stage2_md";
}

}  // namespace

TEST_CASE(
    "Trainer: 50 stage-1 steps of the tiny LLaVA-NeXT (image_newline trained) equal PyTorch "
    "running the authors' code",
    "[training]") {
  const auto run = test::load_parity_run("next_stage1_", "next_samples.safetensors");
  const auto& doc = run.doc;
  REQUIRE(doc.at("stage") == 1);
  auto model = models::Vlm::load(next_dir());
  REQUIRE(model.dtype() == at::kFloat);

  const auto trainable = doc.at("trainable").get<std::vector<std::string>>();
  // The trainable set the authors' stage 1 gives (training/trainable.hpp, v4; r = 8), with
  // image_newline (in no swift group: trained in both stages).
  const auto ours = test::trainable_names(training::TrainableSet::build(
      model.config(), {.stage = 1, .peft = std::nullopt, .rope_dim = 8}));
  CHECK(ours == std::set<std::string>(trainable.begin(), trainable.end()));
  CHECK(ours.count("image_newline") == 1);

  const auto schedule = test::parity_schedule(doc);
  const training::TrainerOptions options = test::trainer_options(doc);
  training::Trainer trainer(
      model, trainable, [&](int64_t t) { return schedule.lr(t); }, options);

  const auto initial = test::snapshot(trainer);

  // Step 0's gradients against theirs (image_newline's included, non-zero).
  test::check_step0_gradients(model, trainer, run.samples[0], run.grad0, "stage 1 llava_next",
                              [](const std::string& name) { return name == "image_newline"; });
  test::check_steps_and_weights(trainer, run.samples, doc.at("log"), run.expected, initial,
                                "stage 1 llava_next", true);
}

TEST_CASE(
    "Trainer: 50 stage-2 steps of the tiny LLaVA-NeXT (MLA, decoupled latent, image_newline "
    "trained) equal PyTorch running the authors' code",
    "[training]") {
  const auto run = test::load_parity_run("next_stage2_", "next_samples.safetensors");
  const auto& doc = run.doc;
  REQUIRE(doc.at("stage") == 2);
  REQUIRE(doc.at("samples") == "next_samples.safetensors");
  auto model = models::Vlm::load(next2_dir());
  REQUIRE(model.dtype() == at::kFloat);

  const auto trainable = doc.at("trainable").get<std::vector<std::string>>();
  // The authors' stage-2 set (training/trainable.hpp, v2; r = 8, low_rank 8), image_newline in it.
  const auto set = training::TrainableSet::build(
      model.config(), {.stage = 2, .peft = std::nullopt, .rope_dim = 8, .d_kv = 8});
  REQUIRE(set.options().peft == training::PeftVersion::kV2);
  const auto ours = test::trainable_names(set);
  CHECK(ours == std::set<std::string>(trainable.begin(), trainable.end()));
  CHECK(ours.count("image_newline") == 1);

  const auto schedule = test::parity_schedule(doc);
  training::Trainer trainer(
      model, trainable, [&](int64_t t) { return schedule.lr(t); }, test::trainer_options(doc));
  const auto initial = test::snapshot(trainer);

  // Step 0's gradients: both latent branches (image rows through kv_proj_img, text through
  // kv_proj_text) and image_newline non-zero.
  test::check_step0_gradients(model, trainer, run.samples[0], run.grad0, "stage 2 llava_next",
                              [](const std::string& name) {
                                return name == "image_newline" || contains(name, "kv_proj_");
                              });
  test::check_steps_and_weights(trainer, run.samples, doc.at("log"), run.expected, initial,
                                "stage 2 llava_next", true);
}
