// `mla-bench train --stage 0` (issue F9: training the synth VLMs from scratch): every parameter of
// an unconverted model trainable, the vision tower, projector, embeddings and lm_head included.
// Against PyTorch: tests/data/train_parity/full_{llava,qwen}_* (tools/fixtures/
// make_train_full_fixtures.py: transformers 4.51 on the tiny fixtures' hub dirs, swift's samples,
// torch AdamW + clip_grad_norm_ + the authors' WSD, 10 steps): step 0's loss and every gradient,
// then every step's loss and the final weights. Through the binary: 3 steps of the tiny LLaVA and
// Qwen2.5-VL move every tensor the forward reads. MLAB_TEST_REPORT=1 prints the figures.
#include <ATen/ATen.h>

#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/training/train_cli_support.hpp"
#include "tests/training/trainer_parity_support.hpp"
#include "tests/vlm/vlm_test_support.hpp"
#include "training/trainable.hpp"
#include "training/trainer.hpp"

namespace {

using namespace mlab;
using test::contains;
namespace fs = std::filesystem;

fs::path tiny(const std::string& family) { return test::data_dir() / "tiny_vlms" / family; }

// CLIP's key bias: softmax ignores a shift shared by every key, so its gradient is zero in exact
// arithmetic (rounding on both sides) and AdamW's per-element normalisation turns that rounding
// into lr-sized steps: compared at step 0 as zero, not compared after the steps.
bool clip_key_bias(const std::string& name) {
  return contains(name, "vision_tower.") && contains(name, "self_attn.k_proj.bias");
}

void check_full_parity(const std::string& family, const std::string& prefix,
                       const std::string& samples_name) {
  const auto run = test::load_parity_run(prefix, samples_name);
  const auto& doc = run.doc;
  REQUIRE(doc.at("stage") == 0);
  auto model = models::Vlm::load(tiny(family));
  REQUIRE(model.dtype() == at::kFloat);
  // Stage 0's set (training/trainable.hpp) is every parameter; the oracle trains all but the
  // CLIP tensors the forward never reads, which our Vlm does not load.
  const auto trainable = doc.at("trainable").get<std::vector<std::string>>();
  const auto not_trained = doc.at("not_trained").get<std::vector<std::string>>();
  const training::TrainableOptions topt{
      .stage = 0,
      .peft = std::nullopt,
      .freeze_vit = training::freeze_vit_for_stage(0, false, false)};
  const auto set = training::TrainableSet::build(model.config(), topt);
  CHECK(set.trainable_parameters() == set.total_parameters());
  std::set<std::string> all = test::trainable_names(set), theirs(trainable.begin(), trainable.end());
  theirs.insert(not_trained.begin(), not_trained.end());
  CHECK(all == theirs);
  std::set<std::string> loaded;
  for (const auto& [name, t] : model.named_parameters()) loaded.insert(name);
  CHECK(loaded == std::set<std::string>(trainable.begin(), trainable.end()));

  const auto schedule = test::parity_schedule(doc);
  training::Trainer trainer(
      model, trainable, [&](int64_t t) { return schedule.lr(t); }, test::trainer_options(doc));
  for (const auto& [name, t] : model.named_parameters()) {
    INFO(name);
    CHECK(t.requires_grad());
  }
  const auto initial = test::snapshot(trainer);
  // Step 0: the loss (first log entry, checked in check_steps_and_weights) and every gradient.
  test::check_step0_gradients(
      model, trainer, run.samples[0], run.grad0, "stage 0 " + family,
      [](const std::string& name) { return !clip_key_bias(name); }, clip_key_bias);
  test::check_steps_and_weights(trainer, run.samples, doc.at("log"), run.expected, initial,
                                "stage 0 " + family, true, [](const std::string& name) {
                                  return clip_key_bias(name)
                                             ? std::numeric_limits<double>::infinity()
                                             : 1e-4;
                                });
}

}  // namespace

TEST_CASE("Trainer stage 0: every parameter of the tiny LLaVA equals PyTorch (10 steps)",
          "[training]") {
  check_full_parity("llava", "full_llava_", "samples.safetensors");
}

TEST_CASE("Trainer stage 0: every parameter of the tiny Qwen2.5-VL equals PyTorch (10 steps)",
          "[training]") {
  check_full_parity("qwen2_5_vl", "full_qwen_", "qwen_samples.safetensors");
}

TEST_CASE("train --stage 0: 3 CPU steps move every tensor the forward reads", "[training][cli]") {
  const auto dir = test::scratch_dir("train_full");
  const fs::path data = test::write_llava_dataset(dir / "data", {{"What is it?", "A square."},
                                                                 {"Which colour?", "Grey."},
                                                                 {"Is it clear?", "Partly."},
                                                                 {"How tall?", "Very tall."}});
  for (const std::string family : {"llava", "qwen2_5_vl"}) {
    INFO(family);
    const fs::path out = dir / family;
    const auto r = test::run_mla_bench(test::train_command(0, tiny(family), data, out) +
                                       " --steps 3 --lr 1e-2 --lr-schedule cosine "
                                       "--warmup-ratio 0 --weight-decay 0.1 --seed 3");
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("train stage 0: "));
    auto model = models::Vlm::load(tiny(family));
    std::set<std::string> read;
    for (const auto& [name, t] : model.named_parameters()) read.insert(name);
    const auto before = models::Checkpoint::open(tiny(family));
    const auto after = models::Checkpoint::open(out / "checkpoint-3");
    REQUIRE(before.names() == after.names());
    int64_t moved = 0, kept = 0;
    for (const auto& name : before.names()) {
      INFO(name);
      const bool same = at::equal(before.get(name), after.get(name));
      if (read.count(models::canonical_weight_name(model.config().family, name)) == 1) {
        CHECK(!same);  // trained
        moved += !same;
      } else {
        CHECK(same);  // CLIP past vision_feature_layer: stays as loaded
        kept += same;
      }
    }
    CHECK(moved == static_cast<int64_t>(read.size()));
    test::report("train --stage 0 " + family + ": tensors moved", static_cast<double>(moved));
    test::report("train --stage 0 " + family + ": unread tensors kept", static_cast<double>(kept));
  }
}
