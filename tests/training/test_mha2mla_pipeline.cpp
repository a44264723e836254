// `mla-bench mha2mla` through the binary (issue F8, acceptance 5) on the tiny LLaVA
// (tests/data/tiny_vlms/llava, random weights) and a learnable LLaVA-format dataset written here
// from tests/data/images: the whole pipeline (partial RoPE -> stage 1 -> MD-SVD calibrated on the
// training data -> stage 2) completes, pipeline.json records the four steps, and on held-out
// records the stage-2 model's loss is below that of the converted model before stage 2 (fixed
// seeds, CPU fp32). The held-out loss is checked against the trainer's own logged loss of step 0
// (the trainer's loss is PyTorch's: test_trainer), and a run stopped after stage 1 and resumed
// skips the finished steps and ends with the uninterrupted run's weights, bit for bit.
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/support/test_files.hpp"
#include "tests/training/train_cli_support.hpp"
#include "training/evaluate_loss.hpp"
#include "training/train_data.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModel = test::data_dir() / "tiny_vlms" / "llava";

// A learnable pattern for a random model in a few steps: the answer repeats the colour the
// question names, in a fixed sentence. `held_out` takes the other half of the (object, colour)
// grid, so no held-out question appears in training. The image follows the colour, the same way
// in both halves (an image chosen by the grid's parity would teach the training half a pairing
// that the held-out half contradicts).
fs::path write_dataset(const fs::path& dir, bool held_out) {
  const auto& images = test::train_images();
  // 5 x 7: 17 training records (n = 17 has a torch.randperm reference), 18 held out.
  const std::vector<std::string> objects = {"square", "circle", "box", "star", "ring"};
  const std::vector<std::string> colours = {"red",   "green", "blue",  "yellow",
                                            "black", "white", "purple"};
  json list = json::array();
  for (std::size_t i = 0; i < objects.size(); ++i) {
    for (std::size_t j = 0; j < colours.size(); ++j) {
      if (((i + j) % 2 == 0) != held_out) continue;
      list.push_back(
          test::llava_record(objects[i] + "_" + colours[j], images[j % images.size()],
                             "The " + objects[i] + " is " + colours[j] + ". What colour?",
                             "The colour is " + colours[j] + "."));
    }
  }
  return test::write_train_json(dir, list);
}

std::string pipeline_args(const fs::path& data, const fs::path& eval, const fs::path& out) {
  return "mha2mla --model " + kModel.string() + " --data " + data.string() + " --eval-data " +
         eval.string() + " --out " + out.string() +
         " --rope mkl --rope-dims 4 --d-kv 4 --stage1-steps 12 --stage2-steps 12 --lr1 1e-3"
         " --lr2 1e-3 --batch-size 1 --grad-accum 4 --threads 1";
}

const json& step_record(const json& pipeline, const std::string& name) {
  for (const auto& s : pipeline.at("steps")) {
    if (s.at("name") == name) return s;
  }
  FAIL("pipeline.json has no step " << name);
  static const json none;
  return none;
}

double held_out_loss(const json& pipeline, const std::string& name) {
  return step_record(pipeline, name).at("eval").at("loss").get<double>();
}

}  // namespace

TEST_CASE("mha2mla: the whole pipeline on the tiny LLaVA, stage 2 lowers the held-out loss",
          "[training][cli][mha2mla]") {
  // One intra-op thread in the children (`train` has no --threads): its figures then match the
  // pipeline's --threads 1 run, and on a loaded 2-core machine it does not spin OpenMP workers
  // (measured: the case took 30 s instead of 6 s under a load of 5).
  ::setenv("OMP_NUM_THREADS", "1", 1);
  const auto dir = test::scratch_dir("mha2mla_pipeline");
  const fs::path data = write_dataset(dir / "train", false);
  const fs::path eval = write_dataset(dir / "eval", true);
  const fs::path out = dir / "out";

  auto r = test::run_mla_bench(pipeline_args(data, eval, out));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("mha2mla [1/4] stage1_init: convert --stage 1") != std::string::npos);
  CHECK(r.out.find("mha2mla [4/4] stage2 done in") != std::string::npos);
  CHECK(r.out.find("eta") != std::string::npos);

  const json p = test::read_json(out / "pipeline.json");
  std::vector<std::string> names;
  for (const auto& s : p.at("steps")) {
    names.push_back(s.at("name"));
    CHECK(s.at("status") == "done");
    CHECK(s.at("seconds").get<double>() >= 0);
  }
  CHECK(names == std::vector<std::string>{"stage1_init", "stage1", "stage2_init", "stage2"});
  CHECK(p.contains("finished_at"));
  const fs::path final_model = step_record(p, "stage2").at("checkpoint").get<std::string>();
  CHECK(final_model == out / "stage2" / "checkpoint-12");
  CHECK(step_record(p, "stage2_init").at("input").get<std::string>() ==
        (out / "stage1" / "checkpoint-12").string());

  // MD-SVD calibrated on the training file: all 17 records in the order of
  // torch.randperm(17, generator=manual_seed(42)) (tests/data/train_template/randperm.json, made
  // by tools/fixtures/make_train_template_fixtures.py).
  const json report = test::read_json(out / "stage2_init_report.json");
  CHECK(report.at("calibration").at("data") == data.string());
  const json file = test::read_json(data);
  std::vector<int64_t> perm;
  const json refs = test::read_json(test::data_dir() / "train_template" / "randperm.json");
  for (const auto& c : refs.at("cases")) {
    if (c.at("n") == 17 && c.at("seed") == 42) perm = c.at("perm").get<std::vector<int64_t>>();
  }
  REQUIRE(file.size() == 17);
  REQUIRE(perm.size() == 17);
  std::vector<std::string> expected;
  for (const auto k : perm) expected.push_back(file.at(static_cast<std::size_t>(k)).at("id"));
  CHECK(report.at("calibration").at("ids").get<std::vector<std::string>>() == expected);
  CHECK(report.at("theorem_2_1_holds") == true);
  CHECK(report.at("image_tokens").get<int64_t>() == 17 * 4);  // 4 image tokens per record

  // Acceptance 5: the stage-2 model beats the converted model before fine-tuning on held-out data.
  const double source = p.at("source").at("eval").at("loss").get<double>();
  const double s1_init = held_out_loss(p, "stage1_init"), s1 = held_out_loss(p, "stage1");
  const double s2_init = held_out_loss(p, "stage2_init"), s2 = held_out_loss(p, "stage2");
  WARN("held-out loss (18 records): source " << source << ", stage1_init " << s1_init
                                             << " -> stage1 " << s1 << ", stage2_init " << s2_init
                                             << " -> stage2 " << s2);
  CHECK(step_record(p, "stage1").at("eval").at("records") == 18);
  CHECK(s2 < s2_init);
  CHECK(s1 < s1_init);

  // The held-out loss is the trainer's loss: step 0 of stage 1 (before any update) scored the
  // records of its accumulation window on the stage1_init model.
  const auto log = test::read_train_log(out / "stage1");
  REQUIRE(log.size() == 12);
  const auto records = training::read_train_data(data, {}).records;
  std::vector<training::TrainRecord> window;
  for (int64_t k = 0; k < 4; ++k) {
    window.push_back(records[static_cast<std::size_t>(
        training::stream_index(k, static_cast<int64_t>(records.size()), 42))]);
  }
  const auto model = models::Vlm::load(out / "stage1_init");
  const auto step0 = training::evaluate_loss(model, window, {});
  CHECK(step0.records == 4);
  CHECK(step0.supervised == log[0].at("supervised").get<int64_t>());
  CHECK(step0.loss == Approx(log[0].at("loss").get<double>()).epsilon(1e-6));
  // and the pipeline's figure for stage1_init is evaluate_loss over the held-out file.
  const auto held = training::evaluate_loss(model, training::read_train_data(eval, {}).records, {});
  CHECK(held.loss == Approx(s1_init).epsilon(1e-6));  // this process: the default threads

  // `train --eval-data` prints the same held-out loss for the same stage-2 run.
  r = test::run_mla_bench("train --stage 2 --model " + (out / "stage2_init").string() + " --data " +
                          data.string() + " --eval-data " + eval.string() + " --out " +
                          (dir / "train2").string() +
                          " --steps 12 --lr 1e-3 --grad-accum 4 --seed 2025 --max-length 4096");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto at = r.out.find("held-out loss ");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 14)) == Approx(s2).epsilon(1e-5));  // printed to 6 digits
  CHECK(r.out.find("(18 records,", at) != std::string::npos);

  // The final model is an MLA model the runtime loads.
  CHECK_NOTHROW(models::Vlm::load(final_model));

  // A used --out without --resume is refused; bad usage exits 2.
  r = test::run_mla_bench(pipeline_args(data, eval, out));
  CHECK(r.code == 1);
  CHECK(r.err.find("already holds a pipeline run") != std::string::npos);
  r = test::run_mla_bench(pipeline_args(data, eval, dir / "bad") + " --stop-after-step stage3");
  CHECK(r.code == 2);
  r = test::run_mla_bench(pipeline_args(data, eval, dir / "bad") + " --stage1-epochs 1");
  CHECK(r.code == 2);

  // Stopped after stage 1, then --resume: stage1_init and stage1 are not redone, and the result
  // equals the uninterrupted run bit for bit (CPU fp32, one thread).
  const fs::path part = dir / "part";
  r = test::run_mla_bench(pipeline_args(data, eval, part) + " --stop-after-step stage1");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("stopped after stage1") != std::string::npos);
  CHECK(!fs::exists(part / "stage2_init"));
  CHECK(test::read_json(part / "pipeline.json").at("steps").size() == 2);
  const auto stage1_log = test::read_file(part / "stage1" / "train_log.jsonl");
  r = test::run_mla_bench(pipeline_args(data, eval, part) + " --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("stage1_init: done in an earlier run") != std::string::npos);
  CHECK(r.out.find("stage1: done in an earlier run") != std::string::npos);
  CHECK(r.out.find("train stage 1") == std::string::npos);
  CHECK(test::read_file(part / "stage1" / "train_log.jsonl") == stage1_log);
  const json q = test::read_json(part / "pipeline.json");
  CHECK(q.at("steps").size() == 4);
  CHECK(held_out_loss(q, "stage2") == held_out_loss(p, "stage2"));
  test::check_same_weights(final_model, part / "stage2" / "checkpoint-12");
}

TEST_CASE("convert --calib-data: training records as calibration, bad ones skipped and named",
          "[training][cli][mha2mla][calibration]") {
  const auto dir = test::scratch_dir("convert_calib_data");
  const fs::path data = write_dataset(dir / "train", false);
  // Two unusable records at the end: a missing image and no answer.
  json list = test::read_json(data);
  list.push_back(
      {{"id", "no_image"},
       {"image", "img/missing.png"},
       {"conversations",
        {{{"from", "human"}, {"value", "<image>\nHi"}}, {{"from", "gpt"}, {"value", "Hi"}}}}});
  list.push_back({{"id", "no_answer"}, {"conversations", {{{"from", "human"}, {"value", "Hi"}}}}});
  std::ofstream(data) << list.dump(1);
  const std::string convert = "convert --model " + kModel.string() +
                              " --rope 2norm --rope-dims 4 --d-kv 4 --svd md --threads 1 ";
  auto r = test::run_mla_bench(convert + "--out " + (dir / "out").string() + " --calib-data " +
                               data.string() + " --calib-samples 7 --report " +
                               (dir / "report.json").string());
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("7 calibration samples (train format, seed 42, of 19 training records)") !=
        std::string::npos);
  CHECK(r.err.find("skipping record no_image: missing image") != std::string::npos);
  CHECK(r.err.find("skipping record no_answer: no assistant turn") != std::string::npos);
  // The first 7 of torch.randperm(17, manual_seed(42)) over the 17 usable records.
  const json refs = test::read_json(test::data_dir() / "train_template" / "randperm.json");
  std::vector<int64_t> perm;
  for (const auto& c : refs.at("cases")) {
    if (c.at("n") == 17 && c.at("seed") == 42) perm = c.at("perm").get<std::vector<int64_t>>();
  }
  REQUIRE(perm.size() == 17);
  std::vector<std::string> expected;
  for (std::size_t k = 0; k < 7; ++k) {
    expected.push_back(list.at(static_cast<std::size_t>(perm[k])).at("id"));
  }
  const json report = test::read_json(dir / "report.json");
  CHECK(report.at("calibration").at("ids").get<std::vector<std::string>>() == expected);
  CHECK(report.at("calibration").at("skipped") == json::array({"no_image", "no_answer"}));
  CHECK(report.at("image_tokens").get<int64_t>() == 7 * 4);

  // --calib and --calib-data exclude each other (usage, exit 2); --calib-data is training
  // template only (exit 1).
  r = test::run_mla_bench(convert + "--out " + (dir / "both").string() + " --calib-data " +
                          data.string() + " --calib " +
                          (test::data_dir() / "datasets" / "pope").string());
  CHECK(r.code == 2);
  CHECK(r.err.find("not both") != std::string::npos);
  r = test::run_mla_bench(convert + "--out " + (dir / "eval").string() + " --calib-data " +
                          data.string() + " --calib-format eval");
  CHECK(r.code == 1);
  CHECK(r.err.find("training template only") != std::string::npos);
}

TEST_CASE("mha2mla: kill -9 during stage 2, --resume continues it from its checkpoint",
          "[training][cli][mha2mla]") {
  const auto dir = test::scratch_dir("mha2mla_kill");
  const fs::path data = write_dataset(dir / "train", false);
  const fs::path eval = write_dataset(dir / "eval", true);
  const std::string args = " --save-every 1";
  auto r = test::run_mla_bench(pipeline_args(data, eval, dir / "full") + args);
  REQUIRE(r.code == 0);

  // Killed once stage 2 has written its third checkpoint.
  const fs::path killed = dir / "killed";
  fs::create_directories(killed);
  const int pid =
      test::start_mla_bench(pipeline_args(data, eval, killed) + args, dir / "stdout.txt",
                            dir / "pid", std::chrono::milliseconds(100));
  test::kill_when_exists(pid, killed / "stage2" / "checkpoint-3", 1200,
                         std::chrono::milliseconds(50));
  REQUIRE(fs::exists(killed / "stage2" / "checkpoint-3"));
  const bool finished = test::read_json(killed / "pipeline.json").at("steps").size() == 4;
  r = test::run_mla_bench(pipeline_args(data, eval, killed) + args + " --resume");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("stage2_init: done in an earlier run") != std::string::npos);
  if (finished) {
    WARN("the killed run had finished stage 2 before the kill; resume only checked as a no-op");
  } else {
    CHECK(r.out.find("resumed from " + (killed / "stage2").string() + "/checkpoint-") !=
          std::string::npos);
  }
  CHECK(test::read_file(killed / "stage2" / "checkpoint-12" / "model.safetensors") ==
        test::read_file(dir / "full" / "stage2" / "checkpoint-12" / "model.safetensors"));
  const json p = test::read_json(killed / "pipeline.json");
  CHECK(held_out_loss(p, "stage2") ==
        held_out_loss(test::read_json(dir / "full" / "pipeline.json"), "stage2"));
}
