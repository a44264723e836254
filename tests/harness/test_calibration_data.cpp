// F14: the calibration data of `mla-bench convert` (harness/calibration_data.*): the sample order
// is torch.randperm(n, generator=manual_seed(seed)) (tests/data/train_template/randperm.json, from
// Python torch); --calib-format train builds swift-train-template requests whose ids through
// Vlm::prepare are swift's on the tiny models (<family>_tiny.json), with only the image
// placeholders in the image mask; samples without an answer are skipped or refused; and through
// the binary, train and eval calibrations give different factors.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "harness/calibration_data.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/support/test_files.hpp"

namespace {

namespace fs = std::filesystem;
using mlab::harness::CalibFormat;
using mlab::harness::CalibrationOptions;
using nlohmann::json;

fs::path fixture(const std::string& name) {
  return mlab::test::data_dir() / "train_template" / (name + ".json");
}

fs::path pope() { return mlab::test::data_dir() / "datasets" / "pope"; }

std::vector<int64_t> reference_perm(int64_t n, int64_t seed) {
  const json refs = mlab::test::read_json(fixture("randperm"));
  for (const auto& c : refs["cases"]) {
    if (c["n"] == n && c["seed"] == seed) return c["perm"].get<std::vector<int64_t>>();
  }
  FAIL("no randperm reference for n=" << n << " seed=" << seed);
  return {};
}

// A copy of the POPE fixture whose answers are `answers` (one per sample, "" = none).
fs::path pope_with_answers(const std::string& name, const std::vector<std::string>& answers) {
  const fs::path dir = mlab::test::scratch_dir(name);
  fs::copy(pope(), dir, fs::copy_options::recursive);
  std::ifstream in(pope() / "samples.jsonl");
  std::string lines;
  std::size_t k = 0;
  for (std::string line; std::getline(in, line); ++k) {
    json j = json::parse(line);
    j["doc"]["answer"] = answers.at(k);
    lines += j.dump() + "\n";
  }
  std::ofstream(dir / "samples.jsonl", std::ios::trunc) << lines;
  return dir;
}

}  // namespace

TEST_CASE("calibration: the sample order is torch.randperm with a seeded generator",
          "[harness][calibration]") {
  const json refs = mlab::test::read_json(fixture("randperm"));
  int checked = 0;
  for (const auto& c : refs["cases"]) {
    const auto n = c["n"].get<int64_t>();
    const auto seed = c["seed"].get<uint64_t>();
    INFO("n=" << n << " seed=" << seed);
    CHECK(mlab::harness::seeded_permutation(n, seed) == c["perm"].get<std::vector<int64_t>>());
    ++checked;
  }
  CHECK(checked >= 20);
  CHECK(mlab::harness::seeded_permutation(0, 42).empty());
  CHECK_THROWS_WITH(mlab::harness::seeded_permutation(-1, 42), Catch::Contains("n must be >= 0"));
}

TEST_CASE("calibration: train-template requests through Vlm::prepare give swift's ids",
          "[harness][calibration][vlm]") {
  for (const std::string family : {"llava", "llava_next", "qwen2_5_vl"}) {
    const json doc = mlab::test::read_json(fixture(family + "_tiny"));
    const fs::path model =
        mlab::test::data_dir().parent_path().parent_path() / doc["model"].get<std::string>();
    const auto vlm = mlab::models::Vlm::load(model);
    for (const auto& c : doc["cases"]) {
      INFO(family << " / " << c["name"].get<std::string>());
      mlab::models::VlmRequest r;
      for (const auto& t : c["turns"]) {
        r.turns.push_back({t["role"].get<std::string>(), t["text"].get<std::string>(),
                           t["images"].get<int64_t>()});
      }
      for (const auto& s : c["image_sizes"]) {
        r.images.push_back(mlab::image::filled_rgb8_image(s[0].get<int64_t>(), s[1].get<int64_t>(),
                                                          {90, 140, 200}));
      }
      r.mode = mlab::prompt::PromptMode::kTrain;
      const auto inputs = vlm.prepare({&r, 1});
      const at::Tensor ids = inputs.input_ids[0].contiguous();
      const std::vector<int64_t> ours(ids.data_ptr<int64_t>(),
                                      ids.data_ptr<int64_t>() + ids.numel());
      CHECK(ours == c["input_ids"].get<std::vector<int64_t>>());
      // The image modality is the placeholders only (+ <|vision_start|>/<|vision_end|> on
      // Qwen2.5-VL): the answer and the closing suffix count as text, as the authors' ~image_mask.
      int64_t image_tokens = 0;
      for (const auto& n : c["image_tokens"]) image_tokens += n.get<int64_t>();
      if (family == "qwen2_5_vl") image_tokens += 2 * static_cast<int64_t>(r.images.size());
      CHECK(vlm.image_token_mask(inputs.input_ids).sum().item<int64_t>() == image_tokens);
      // The eval prompt of the same turns is another sequence (no answer, generation prompt).
      r.mode = mlab::prompt::PromptMode::kEval;
      if (c["turns"].back()["role"] == "assistant") {
        CHECK(vlm.prepare({&r, 1}).input_ids.size(1) != ids.numel());
      }
    }
  }
}

TEST_CASE("calibration: read_calibration formats, order, samples and answers",
          "[harness][calibration]") {
  const auto perm = reference_perm(3, 42);
  const std::vector<std::string> answers = {"yes", "no", "yes"};  // POPE fixture, ids "1".."3"
  CalibrationOptions o;
  const auto train = mlab::harness::read_calibration(pope(), o);
  REQUIRE(train.requests.size() == 3);
  CHECK(train.dataset_samples == 3);
  CHECK(train.skipped.empty());
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(train.ids[k] == std::to_string(perm[k] + 1));
    const auto& r = train.requests[k];
    CHECK(r.mode == mlab::prompt::PromptMode::kTrain);
    REQUIRE(r.turns.size() == 2);
    CHECK(r.turns[0].role == "user");
    CHECK(r.turns[0].images == 1);
    CHECK(r.images.size() == 1);
    CHECK(r.turns[1].role == "assistant");
    CHECK(r.turns[1].text == answers[static_cast<std::size_t>(perm[k])]);
  }
  o.format = CalibFormat::kEval;
  o.samples = 2;
  const auto eval = mlab::harness::read_calibration(pope(), o);
  REQUIRE(eval.requests.size() == 2);
  CHECK(eval.ids == std::vector<std::string>(train.ids.begin(), train.ids.begin() + 2));
  CHECK(eval.requests[0].mode == mlab::prompt::PromptMode::kEval);
  CHECK(eval.requests[0].turns.size() == 1);
  o.seed = 7;
  o.samples = 0;
  const auto seven = mlab::harness::read_calibration(pope(), o);
  const auto perm7 = mlab::harness::seeded_permutation(3, 7);
  for (std::size_t k = 0; k < 3; ++k) CHECK(seven.ids[k] == std::to_string(perm7[k] + 1));

  // Without an answer: skipped under train (named), kept under eval; none left: refused.
  const auto some = pope_with_answers("calib_some_answers", {"yes", "", "no"});
  o = {};
  const auto skipped = mlab::harness::read_calibration(some, o);
  CHECK(skipped.skipped == std::vector<std::string>{"2"});
  CHECK(skipped.requests.size() == 2);
  CHECK(skipped.dataset_samples == 3);
  o.format = CalibFormat::kEval;
  CHECK(mlab::harness::read_calibration(some, o).requests.size() == 3);
  const auto none = pope_with_answers("calib_no_answers", {"", "", ""});
  o.format = CalibFormat::kTrain;
  CHECK_THROWS_WITH(mlab::harness::read_calibration(none, o),
                    Catch::Contains("none of its 3 samples has an answer"));
  CHECK_THROWS_WITH(mlab::harness::parse_calib_format("training"),
                    Catch::Contains("did you mean 'train'"));
}

TEST_CASE("convert --calib-format train vs eval: different factors, seeded order in the report",
          "[harness][calibration][convert]") {
  const auto dir = mlab::test::scratch_dir("convert_calib_format");
  const auto llava = mlab::test::data_dir() / "tiny_vlms" / "llava";
  auto convert = [&](const std::string& name, const std::string& extra) {
    const auto r = mlab::test::run_mla_bench(
        "convert --model " + llava.string() + " --out " + (dir / name).string() +
        " --rope 2norm --rope-dims 4 --d-kv 16 --svd md --threads 1 --calib " + pope().string() +
        " --report " + (dir / (name + ".json")).string() + " " + extra);
    INFO(name << "\n" << r.out << r.err);
    REQUIRE(r.code == 0);
    return std::make_pair(r, mlab::test::read_json(dir / (name + ".json")));
  };
  const auto [train_run, train] = convert("train", "");  // the default format
  const auto [eval_run, eval] = convert("eval", "--calib-format eval");
  CHECK_THAT(train_run.out, Catch::Contains("3 calibration samples (train format, seed 42, of 3)"));
  CHECK(train["calibration"]["format"] == "train");
  CHECK(eval["calibration"]["format"] == "eval");
  const auto perm = reference_perm(3, 42);
  std::vector<std::string> ids;
  for (const auto p : perm) ids.push_back(std::to_string(p + 1));
  CHECK(train["calibration"]["ids"].get<std::vector<std::string>>() == ids);
  CHECK(eval["calibration"]["ids"].get<std::vector<std::string>>() == ids);
  // Same images, so the same image tokens; the train template adds the answers, the closing
  // suffix and its own wording to the text tokens.
  CHECK(train["image_tokens"] == eval["image_tokens"]);
  CHECK(train["text_tokens"].get<int64_t>() != eval["text_tokens"].get<int64_t>());
  CHECK(mlab::test::read_file(dir / "train" / "model.safetensors") !=
        mlab::test::read_file(dir / "eval" / "model.safetensors"));

  // --calib-samples takes the first N of the order; a bad format is a usage error.
  const auto [two_run, two] = convert("two", "--calib-samples 2");
  CHECK(two["calibration"]["ids"].get<std::vector<std::string>>() ==
        std::vector<std::string>(ids.begin(), ids.begin() + 2));
  const auto bad = mlab::test::run_mla_bench("convert --model " + llava.string() + " --out " +
                                             (dir / "bad").string() + " --calib-format training");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--calib-format"));
  // Samples without an answer are named in a warning.
  const auto some = pope_with_answers("convert_some_answers", {"yes", "", "no"});
  const auto warned = mlab::test::run_mla_bench(
      "convert --model " + llava.string() + " --out " + (dir / "warned").string() +
      " --rope 2norm --rope-dims 4 --d-kv 16 --svd md --threads 1 --calib " + some.string());
  INFO(warned.out << warned.err);
  CHECK(warned.code == 0);
  CHECK_THAT(warned.err, Catch::Contains("1 sample(s) of " + some.string() +
                                         " have no answer and were skipped: 2"));
}
