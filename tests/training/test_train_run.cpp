// `mla-bench train` through the binary (issue F8, acceptance 2) on the tiny stage-1 LLaVA
// (tests/data/authors/llava/stage1_mkl, the authors' stage-1 dir) and a tiny LLaVA-format dataset
// written here from tests/data/images: 2N steps in one run equal N steps, a kill -9 and --resume
// to 2N (the same losses and final weights, bit for bit, CPU fp32); a non-finite loss stops the run
// naming the step with the last checkpoint intact; bad records are skipped and counted, or fatal
// under --strict; the tiny Qwen2.5-VL trains from the CLI (the merger, not the ViT).
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModel = test::data_dir() / "authors" / "llava" / "stage1_mkl";

// A LLaVA-format dataset of `n` records over the test images (copied beside the JSON), plus the
// extra records given.
fs::path write_dataset(const fs::path& dir, const std::vector<json>& extra = {}) {
  fs::create_directories(dir / "img");
  const std::vector<std::string> images = {"tiny.png", "gray.png", "rgba.png", "tall.png"};
  for (const auto& name : images) {
    fs::copy_file(test::data_dir() / "images" / name, dir / "img" / name,
                  fs::copy_options::overwrite_existing);
  }
  const std::vector<std::pair<std::string, std::string>> qa = {
      {"What is in the picture?", "A small square."},
      {"Describe the colours.", "Grey, mostly."},
      {"Is it transparent?", "Partly, yes."},
      {"How tall is it?", "Taller than it is wide."},
      {"Name a shape you see.", "A rectangle."},
      {"What would you call it?", "A test image."}};
  json list = json::array();
  for (std::size_t i = 0; i < qa.size(); ++i) {
    list.push_back({{"id", "s" + std::to_string(i)},
                    {"image", "img/" + images[i % images.size()]},
                    {"conversations",
                     {{{"from", "human"}, {"value", "<image>\n" + qa[i].first}},
                      {{"from", "gpt"}, {"value", qa[i].second}}}}});
  }
  // One in swift's format.
  list.push_back({{"messages",
                   {{{"role", "user"}, {"content", "<image>What is this?"}},
                    {{"role", "assistant"}, {"content", "An image."}}}},
                  {"images", {"img/tiny.png"}}});
  for (const auto& e : extra) list.push_back(e);
  const fs::path path = dir / "data.json";
  std::ofstream(path) << list.dump(1);
  return path;
}

std::vector<json> read_log(const fs::path& out) {
  std::ifstream in(out / "train_log.jsonl");
  std::vector<json> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  return lines;
}

std::string train_args(const fs::path& data, const fs::path& out, int64_t steps) {
  return "train --stage 1 --model " + kModel.string() + " --data " + data.string() + " --out " +
         out.string() + " --steps " + std::to_string(steps) +
         " --lr 1e-3 --grad-accum 2 --seed 7";
}

void check_same_weights(const fs::path& a, const fs::path& b) {
  const auto x = models::Checkpoint::open(a), y = models::Checkpoint::open(b);
  REQUIRE(x.names() == y.names());
  int64_t differ = 0;
  for (const auto& name : x.names()) {
    INFO(name);
    differ += !at::equal(x.get(name), y.get(name));
  }
  CHECK(differ == 0);
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
  const auto full_log = read_log(full);
  REQUIRE(full_log.size() == 2 * kN);
  REQUIRE(fs::exists(full / ("checkpoint-" + std::to_string(2 * kN)) / "model.safetensors"));

  // Interrupted at step N (--stop-after: the schedule still spans 2N), then resumed.
  const fs::path part = dir / "part";
  r = test::run_mla_bench(train_args(data, part, 2 * kN) + " --save-every " + std::to_string(kN) +
                          " --stop-after " + std::to_string(kN));
  REQUIRE(r.code == 0);
  REQUIRE(read_log(part).size() == kN);
  r = test::run_mla_bench(train_args(data, part, 2 * kN) + " --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("resumed from") != std::string::npos);
  const auto part_log = read_log(part);
  REQUIRE(part_log.size() == full_log.size());
  for (std::size_t i = 0; i < full_log.size(); ++i) {
    INFO("step " << i);
    CHECK(part_log[i].at("loss").get<double>() == full_log[i].at("loss").get<double>());
    CHECK(part_log[i].at("grad_norm").get<double>() == full_log[i].at("grad_norm").get<double>());
  }
  check_same_weights(full / "checkpoint-12", part / "checkpoint-12");

  // A real kill -9 somewhere after the first checkpoint (checkpoints every step), then --resume.
  const fs::path killed = dir / "killed";
  fs::create_directories(killed);
  const std::string cmd = std::string(MLAB_BINARY_DIR) + "/mla-bench " +
                          train_args(data, killed, 2 * kN) + " --save-every 1 >" +
                          (killed / "stdout.txt").string() + " 2>&1 & echo $! >" +
                          (killed / "pid").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int pid = 0;
  std::ifstream(killed / "pid") >> pid;
  REQUIRE(pid > 0);
  for (int i = 0; i < 600 && !fs::exists(killed / "checkpoint-1"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  r = test::run_mla_bench(train_args(data, killed, 2 * kN) + " --save-every 1 --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto killed_log = read_log(killed);
  REQUIRE(killed_log.size() == full_log.size());
  for (std::size_t i = 0; i < full_log.size(); ++i) {
    CHECK(killed_log[i].at("loss").get<double>() == full_log[i].at("loss").get<double>());
  }
  check_same_weights(full / "checkpoint-12", killed / "checkpoint-12");

  // The checkpoint is a model dir Vlm::load reads.
  auto model = models::Vlm::load(full / "checkpoint-12");
  CHECK(model.dtype() == at::kFloat);
}

TEST_CASE("train: a non-finite loss stops the run naming the step; the last checkpoint is intact",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_nan");
  const fs::path data = write_dataset(dir / "data");
  const fs::path out = dir / "out";
  const auto r = test::run_mla_bench("train --stage 1 --model " + kModel.string() + " --data " +
                                     data.string() + " --out " + out.string() +
                                     " --steps 20 --lr 1e30 --save-every 1");
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.err.find("training stopped: step ") != std::string::npos);
  CHECK(r.err.find("last checkpoint: ") != std::string::npos);
  const auto log = read_log(out);
  REQUIRE(!log.empty());
  REQUIRE(log.size() < 20);
  const fs::path last = out / ("checkpoint-" + std::to_string(log.size()));
  REQUIRE(fs::exists(last / "trainer_state.json"));
  CHECK_NOTHROW(models::Vlm::load(last));
}

TEST_CASE("train: bad records are skipped and counted; --strict makes them fatal",
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
  auto r = test::run_mla_bench("train --stage 1 --model " + kModel.string() + " --data " +
                               data.string() + " --out " + (dir / "out").string() + " --steps 1");
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("skipping record no_image: missing image") != std::string::npos);
  CHECK(r.out.find("skipping record no_answer: no assistant turn") != std::string::npos);
  CHECK(r.out.find("(2 skipped while reading)") != std::string::npos);

  r = test::run_mla_bench("train --stage 1 --model " + kModel.string() + " --data " +
                          data.string() + " --out " + (dir / "strict").string() +
                          " --steps 1 --strict");
  CHECK(r.code == 1);
  CHECK(r.err.find("record no_image: missing image") != std::string::npos);
}

TEST_CASE("train: a model of another stage is refused", "[training][cli]") {
  const auto dir = test::scratch_dir("train_stage");
  const fs::path data = write_dataset(dir / "data");
  const auto r = test::run_mla_bench("train --stage 2 --model " + kModel.string() + " --data " +
                                     data.string() + " --out " + (dir / "out").string() +
                                     " --steps 1");
  CHECK(r.code == 1);
  CHECK(r.err.find("is a stage-1 model, not stage 2") != std::string::npos);
}

TEST_CASE("train: the tiny Qwen2.5-VL (stage 1) runs 2 steps; the merger moves, the ViT does not",
          "[training][cli]") {
  const auto dir = test::scratch_dir("train_qwen");
  const fs::path data = write_dataset(dir / "data");
  const fs::path model = test::data_dir() / "authors" / "qwen2_5_vl" / "stage1_mkl";
  const fs::path out = dir / "out";
  const auto r = test::run_mla_bench("train --stage 1 --model " + model.string() + " --data " +
                                     data.string() + " --out " + out.string() +
                                     " --steps 2 --lr 1e-3");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("22 trainable tensors") != std::string::npos);  // merger 5 + LM v4 17
  REQUIRE(read_log(out).size() == 2);
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
