// Activation checkpointing (F8, `mla-bench train --activation-checkpointing`; HF's
// gradient_checkpointing): each decoder layer runs without keeping its activations and the
// backward reruns it (models/runtime/activation_checkpoint.hpp). The reference is the same
// model's plain autograd forward: on the tiny LLaVA stage-1 / stage-2 parity models and the tiny
// Qwen2.5-VL stage-1 dir, the loss and every trainable gradient with checkpointing equal those
// without, the frozen parameters get no gradient, and the graph holds one checkpoint node per
// layer. Then `mla-bench train --activation-checkpointing` against the same run without it.
// MLAB_TEST_REPORT=1 prints the figures.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/training/train_cli_support.hpp"
#include "tests/training/trainer_parity_support.hpp"
#include "tests/vlm/vlm_test_support.hpp"
#include "training/train_batch.hpp"
#include "training/trainer.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;

struct Graph {
  int64_t nodes = 0;        // autograd nodes reachable from the loss
  int64_t checkpoints = 0;  // of them, activation-checkpoint nodes
};

Graph walk(const at::Tensor& loss) {
  Graph g;
  std::unordered_set<const torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> todo{loss.grad_fn().get()};
  while (!todo.empty()) {
    torch::autograd::Node* n = todo.back();
    todo.pop_back();
    if (n == nullptr || !seen.insert(n).second) continue;
    ++g.nodes;
    if (n->name().find("CheckpointFunction") != std::string::npos) ++g.checkpoints;
    for (const auto& e : n->next_edges()) todo.push_back(e.function.get());
  }
  return g;
}

struct Backward {
  double loss = 0;
  Graph graph;
  std::map<std::string, at::Tensor> grads;  // trainable name -> its gradient (cloned)
};

// One forward + backward of `batch` (the trainer's loss: the plain mean of one micro-batch); the
// gradients are taken and cleared. Every non-trainable parameter must have none.
Backward run_backward(models::Vlm& model, const training::TrainBatch& batch,
                      const std::set<std::string>& trainable) {
  Backward r;
  const at::Tensor logits = model.train_logits(batch.inputs);
  const auto n = static_cast<double>(training::supervised_tokens(batch.labels));
  const at::Tensor loss = training::causal_lm_loss(logits, batch.labels, n);
  r.loss = loss.item<double>();
  r.graph = walk(loss);
  loss.backward();
  for (auto& [name, t] : model.named_parameters()) {
    INFO(name);
    if (trainable.count(name) == 0) {
      CHECK(!t.grad().defined());
      continue;
    }
    REQUIRE(t.grad().defined());
    r.grads[name] = t.grad().clone();
    t.mutable_grad() = at::Tensor();
  }
  return r;
}

// The samples of the parity run `prefix` (their trainable set), each through the plain forward
// and the checkpointed one.
void check_model(const fs::path& dir, const std::string& prefix, const std::string& samples_name,
                 const std::string& label) {
  const auto run = test::load_parity_run(prefix, samples_name);
  auto model = models::Vlm::load(dir);
  REQUIRE(model.dtype() == at::kFloat);
  const auto names = run.doc.at("trainable").get<std::vector<std::string>>();
  const std::set<std::string> trainable(names.begin(), names.end());
  training::Trainer trainer(model, names, [](int64_t) { return 1e-3; });  // sets requires_grad
  const auto layers = static_cast<int64_t>(model.config().text.num_hidden_layers);

  double max_loss_rel = 0, max_grad_rel = 0;
  int64_t bitwise = 0, compared = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(run.samples.size(), 2); ++i) {
    INFO(label << " sample " << i);
    const auto& batch = run.samples[i];
    model.decoder().set_activation_checkpointing(false, model.options().attention);
    const Backward plain = run_backward(model, batch, trainable);
    model.decoder().set_activation_checkpointing(true, model.options().attention);
    const Backward ckpt = run_backward(model, batch, trainable);
    model.decoder().set_activation_checkpointing(false, model.options().attention);

    CHECK(plain.graph.checkpoints == 0);
    CHECK(ckpt.graph.checkpoints == layers);  // one node per decoder layer
    CHECK(ckpt.graph.nodes < plain.graph.nodes);
    const double loss_rel = std::abs(ckpt.loss - plain.loss) / std::abs(plain.loss);
    max_loss_rel = std::max(max_loss_rel, loss_rel);
    CHECK(loss_rel <= 1e-6);
    REQUIRE(ckpt.grads.size() == trainable.size());
    for (const auto& [name, g] : plain.grads) {
      INFO(name);
      const at::Tensor& c = ckpt.grads.at(name);
      ++compared;
      if (at::equal(c, g)) {
        ++bitwise;
        continue;
      }
      const double rel = test::rel_diff(c, g);
      max_grad_rel = std::max(max_grad_rel, rel);
      CHECK(rel <= 1e-6);
    }
    test::report("activation checkpointing " + label + ": graph nodes plain",
                 static_cast<double>(plain.graph.nodes));
    test::report("activation checkpointing " + label + ": graph nodes checkpointed",
                 static_cast<double>(ckpt.graph.nodes));
  }
  test::report("activation checkpointing " + label + ": loss max rel diff", max_loss_rel);
  test::report("activation checkpointing " + label + ": grads max|d| / max|g|", max_grad_rel);
  test::report("activation checkpointing " + label + ": grads bitwise equal (of " +
                   std::to_string(compared) + ")",
               static_cast<double>(bitwise));
}

}  // namespace

TEST_CASE("activation checkpointing: the tiny LLaVA stage 1 (GQA), same loss and gradients",
          "[training]") {
  check_model(test::data_dir() / "authors" / "llava" / "stage1_mkl", "", "samples.safetensors",
              "llava stage 1");
}

TEST_CASE("activation checkpointing: the tiny LLaVA stage 2 (MLA), same loss and gradients",
          "[training]") {
  check_model(test::data_dir() / "authors" / "llava" / "stage2_md", "stage2_",
              "samples.safetensors", "llava stage 2");
}

TEST_CASE("activation checkpointing: the tiny Qwen2.5-VL stage 1, same loss and gradients",
          "[training]") {
  check_model(test::data_dir() / "authors" / "qwen2_5_vl" / "stage1_mkl", "qwen_stage1_",
              "qwen_samples.safetensors", "qwen2_5_vl stage 1");
}

TEST_CASE("activation checkpointing: without grad mode the forward is the plain one",
          "[training]") {
  auto model = models::Vlm::load(test::data_dir() / "authors" / "llava" / "stage1_mkl");
  const auto run = test::load_parity_run("", "samples.safetensors");
  at::NoGradGuard no_grad;
  const at::Tensor plain = model.train_logits(run.samples[0].inputs);
  model.decoder().set_activation_checkpointing(true, model.options().attention);
  CHECK(at::equal(model.train_logits(run.samples[0].inputs), plain));
}

TEST_CASE("train --activation-checkpointing: 2 steps log the losses of the plain run",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_activation_checkpointing");
  const fs::path data = test::write_llava_dataset(
      dir / "data", {{"What is in the picture?", "A small square."},
                     {"Describe the colours.", "Grey, mostly."},
                     {"Is it transparent?", "Partly, yes."},
                     {"How tall is it?", "Taller than it is wide."}});
  const fs::path model = test::data_dir() / "authors" / "llava" / "stage1_mkl";
  const std::string args = " --steps 2 --lr 1e-3 --seed 7";
  auto r = test::run_mla_bench(test::train_command(1, model, data, dir / "plain") + args);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  r = test::run_mla_bench(test::train_command(1, model, data, dir / "ckpt") + args +
                          " --activation-checkpointing");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto plain = test::read_train_log(dir / "plain");
  const auto ckpt = test::read_train_log(dir / "ckpt");
  REQUIRE(plain.size() == 2);
  REQUIRE(ckpt.size() == 2);
  double max_rel = 0;
  for (std::size_t s = 0; s < 2; ++s) {
    const double a = plain[s].at("loss"), b = ckpt[s].at("loss");
    INFO("step " << s << ": " << b << " vs " << a);
    max_rel = std::max(max_rel, std::abs(a - b) / std::abs(a));
    CHECK(std::abs(a - b) <= 1e-6 * std::abs(a));
    CHECK(plain[s].at("grad_norm").get<double>() ==
          Approx(ckpt[s].at("grad_norm").get<double>()).epsilon(1e-6));
  }
  test::report("train --activation-checkpointing: 2-step loss max rel diff", max_rel);
}
