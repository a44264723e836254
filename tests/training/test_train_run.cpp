// `mla-bench train` through the binary (issue F8, acceptance 2) on the tiny stage-1 LLaVA
// (tests/data/authors/llava/stage1_mkl, the authors' stage-1 dir) and a tiny LLaVA-format dataset
// written here from tests/data/images: 2N steps in one run equal N steps, a kill -9 and --resume
// to 2N (the same losses and final weights, bit for bit, CPU fp32); a non-finite loss stops the run
// naming the step with the last checkpoint intact; bad records are skipped and counted, or fatal
// under --strict; the tiny Qwen2.5-VL trains from the CLI (the merger, not the ViT).
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/training/train_cli_support.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModel = test::data_dir() / "authors" / "llava" / "stage1_mkl";

// A LLaVA-format dataset of six records over the test images (copied beside the JSON), one in
// swift's format, then the extra records given.
fs::path write_dataset(const fs::path& dir, const std::vector<json>& extra = {}) {
  std::vector<json> more = {json{{"messages",
                                  {{{"role", "user"}, {"content", "<image>What is this?"}},
                                   {{"role", "assistant"}, {"content", "An image."}}}},
                                 {"images", {"img/tiny.png"}}}};
  more.insert(more.end(), extra.begin(), extra.end());
  return test::write_llava_dataset(dir,
                                   {{"What is in the picture?", "A small square."},
                                    {"Describe the colours.", "Grey, mostly."},
                                    {"Is it transparent?", "Partly, yes."},
                                    {"How tall is it?", "Taller than it is wide."},
                                    {"Name a shape you see.", "A rectangle."},
                                    {"What would you call it?", "A test image."}},
                                   more);
}

std::string train_args(const fs::path& data, const fs::path& out, int64_t steps) {
  return test::train_command(1, kModel, data, out) + " --steps " + std::to_string(steps) +
         " --lr 1e-3 --grad-accum 2 --seed 7";
}

}  // namespace

TEST_CASE("train: 2N steps == N steps, kill -9, --resume to 2N (bitwise, CPU fp32)",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_resume");
  const fs::path data = write_dataset(dir / "data");
  constexpr int64_t kN = 6;  // 12 steps: the WSD schedule of T >= 10 (T < 10 squares the LR)

  // Uninterrupted: 2N steps.
  const fs::path full = dir / "full";
  auto r = test::run_mla_bench(train_args(data, full, 2 * kN));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("step 1/12 loss") != std::string::npos);
  CHECK(r.out.find("tokens/s") != std::string::npos);
  const auto full_log = test::read_train_log(full);
  REQUIRE(full_log.size() == 2 * kN);
  REQUIRE(fs::exists(full / ("checkpoint-" + std::to_string(2 * kN)) / "model.safetensors"));

  // Interrupted at step N (--stop-after: the schedule still spans 2N), then resumed.
  const fs::path part = dir / "part";
  r = test::run_mla_bench(train_args(data, part, 2 * kN) + " --save-every " + std::to_string(kN) +
                          " --stop-after " + std::to_string(kN));
  REQUIRE(r.code == 0);
  REQUIRE(test::read_train_log(part).size() == kN);
  r = test::run_mla_bench(train_args(data, part, 2 * kN) + " --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("resumed from") != std::string::npos);
  const auto part_log = test::read_train_log(part);
  REQUIRE(part_log.size() == full_log.size());
  for (std::size_t i = 0; i < full_log.size(); ++i) {
    INFO("step " << i);
    CHECK(part_log[i].at("loss").get<double>() == full_log[i].at("loss").get<double>());
    CHECK(part_log[i].at("grad_norm").get<double>() == full_log[i].at("grad_norm").get<double>());
  }
  test::check_same_weights(full / "checkpoint-12", part / "checkpoint-12");

  // A real kill -9 somewhere after the first checkpoint (checkpoints every step), then --resume.
  const fs::path killed = dir / "killed";
  fs::create_directories(killed);
  const int pid =
      test::start_mla_bench(train_args(data, killed, 2 * kN) + " --save-every 1",
                            killed / "stdout.txt", killed / "pid", std::chrono::milliseconds(200));
  test::kill_when_exists(pid, killed / "checkpoint-1", 600, std::chrono::milliseconds(100));
  r = test::run_mla_bench(train_args(data, killed, 2 * kN) + " --save-every 1 --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto killed_log = test::read_train_log(killed);
  REQUIRE(killed_log.size() == full_log.size());
  for (std::size_t i = 0; i < full_log.size(); ++i) {
    CHECK(killed_log[i].at("loss").get<double>() == full_log[i].at("loss").get<double>());
  }
  test::check_same_weights(full / "checkpoint-12", killed / "checkpoint-12");

  // The checkpoint is a model dir Vlm::load reads.
  auto model = models::Vlm::load(full / "checkpoint-12");
  CHECK(model.dtype() == at::kFloat);
}

TEST_CASE("train: a non-finite loss stops the run naming the step and the last checkpoint is intact",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_nan");
  const fs::path data = write_dataset(dir / "data");
  const fs::path out = dir / "out";
  const auto r = test::run_mla_bench(test::train_command(1, kModel, data, out) +
                                     " --steps 20 --lr 1e30 --save-every 1");
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("training stopped: step ") != std::string::npos);
  CHECK(r.err.find("last checkpoint: ") != std::string::npos);
  const auto log = test::read_train_log(out);
  REQUIRE(!log.empty());
  REQUIRE(log.size() < 20);
  const fs::path last = out / ("checkpoint-" + std::to_string(log.size()));
  REQUIRE(fs::exists(last / "trainer_state.json"));
  CHECK_NOTHROW(models::Vlm::load(last));
}

TEST_CASE("train: bad records are skipped and counted and --strict makes them fatal",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_bad");
  const fs::path data = write_dataset(
      dir / "data",
      {json{{"id", "no_image"},
            {"image", "img/missing.png"},
            {"conversations",
             {{{"from", "human"}, {"value", "<image>\nHi"}}, {{"from", "gpt"}, {"value", "Hi"}}}}},
       json{{"id", "no_answer"},
            {"image", "img/tiny.png"},
            {"conversations", {{{"from", "human"}, {"value", "<image>\nHi"}}}}}});
  auto r = test::run_mla_bench(test::train_command(1, kModel, data, dir / "out") + " --steps 1");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("skipping record no_image: missing image") != std::string::npos);
  CHECK(r.out.find("skipping record no_answer: no assistant turn") != std::string::npos);
  CHECK(r.out.find("(2 skipped while reading)") != std::string::npos);

  r = test::run_mla_bench(test::train_command(1, kModel, data, dir / "strict") +
                          " --steps 1 --strict");
  CHECK(r.code == 1);
  CHECK(r.err.find("record no_image: missing image") != std::string::npos);
}

TEST_CASE("train: a record longer than the model's positions or --max-length is skipped, named",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_long");
  std::string words;
  for (int i = 0; i < 400; ++i) words += " red blue";  // ~800 tokens > 512 positions
  const fs::path data = write_dataset(
      dir / "data", {json{{"id", "long"},
                          {"image", "img/tiny.png"},
                          {"conversations",
                           {{{"from", "human"}, {"value", "<image>\nName them:" + words}},
                            {{"from", "gpt"}, {"value", "Colours."}}}}}});
  // The fixture's config has max_position_embeddings 512.
  // 8 steps of one record: the whole shuffled epoch of 8 is encoded.
  auto r = test::run_mla_bench(test::train_command(1, kModel, data, dir / "out") + " --steps 8");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("skipping record long: ") != std::string::npos);
  CHECK(r.out.find("tokens, over the model's max_position_embeddings 512") != std::string::npos);
  r = test::run_mla_bench(test::train_command(1, kModel, data, dir / "out2") +
                          " --steps 8 --max-length 40 --strict");
  CHECK(r.code == 1);
  CHECK(r.err.find("record ") != std::string::npos);
  CHECK(r.err.find("tokens, over --max-length 40") != std::string::npos);
}

TEST_CASE("train: a model of another stage is refused", "[training][cli]") {
  const auto dir = test::scratch_dir("train_stage");
  const fs::path data = write_dataset(dir / "data");
  const auto r =
      test::run_mla_bench(test::train_command(2, kModel, data, dir / "out") + " --steps 1");
  CHECK(r.code == 1);
  CHECK(r.err.find("is a stage-1 model, not stage 2") != std::string::npos);
}

TEST_CASE("train: the tiny Qwen2.5-VL (stage 1) runs 2 steps: the merger moves and the ViT does not",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_qwen");
  const fs::path data = write_dataset(dir / "data");
  const fs::path model = test::data_dir() / "authors" / "qwen2_5_vl" / "stage1_mkl";
  const fs::path out = dir / "out";
  const auto r =
      test::run_mla_bench(test::train_command(1, model, data, out) + " --steps 2 --lr 1e-3");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("22 trainable tensors") != std::string::npos);  // merger 5 + LM v4 17
  REQUIRE(test::read_train_log(out).size() == 2);
  const auto before = models::Checkpoint::open(model);
  const auto after = models::Checkpoint::open(out / "checkpoint-2");
  CHECK(after.names() == before.names());
  CHECK_FALSE(at::equal(after.get("visual.merger.mlp.0.weight"),
                        before.get("visual.merger.mlp.0.weight")));
  CHECK(at::equal(after.get("visual.blocks.0.attn.qkv.weight"),
                  before.get("visual.blocks.0.attn.qkv.weight")));
  CHECK(at::equal(after.get("visual.patch_embed.proj.weight"),
                  before.get("visual.patch_embed.proj.weight")));
}
