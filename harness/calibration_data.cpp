// Calibration data of `mla-bench convert` (see calibration_data.hpp): the authors' run_svd_init.py
// recipe (swift train template, shuffled order, total_num samples) on a dataset dir.
#include "harness/calibration_data.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "core/strings.hpp"
#include "datasets/dataset_reader.hpp"
#include "datasets/image.hpp"
#include "models/image/rgb8_image.hpp"
#include "training/train_data.hpp"

namespace mlab::harness {
namespace {

// What a calibration request needs of a sample, read without decoding its images.
struct CalibrationSample {
  std::string id;
  std::string question;
  std::string answer;  // first gold answer; empty when there is none
  std::vector<std::filesystem::path> images;
};

std::string task_of(const std::filesystem::path& dir) {
  const auto meta_path = dir / "dataset.json";
  std::ifstream in(meta_path);
  MLAB_CHECK(in.good(), "--calib ", dir.string(), ": no dataset.json (expected a dataset dir, ",
             "docs/formats.md)");
  nlohmann::json meta;
  try {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_json_depth(text, meta_path.string());  // F11 D1
    meta = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MLAB_FAIL(meta_path.string(), ": invalid JSON (", e.what(), ")");
  }
  MLAB_CHECK(meta.contains("task") && meta["task"].is_string(), meta_path.string(),
             ": no \"task\" string");
  return meta["task"].get<std::string>();
}

}  // namespace

CalibFormat parse_calib_format(std::string_view name) {
  if (name == "train") return CalibFormat::kTrain;
  if (name == "eval") return CalibFormat::kEval;
  throw Error(unknown_name_message("calibration format", name, {"train", "eval"}));
}

std::string_view calib_format_name(CalibFormat format) {
  return format == CalibFormat::kTrain ? "train" : "eval";
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  MLAB_CHECK(n >= 0, "seeded_permutation: n must be >= 0, got ", n);
  // torch.Generator() is a CPUGeneratorImpl; manual_seed(seed) is its set_current_seed.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor perm = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  const auto* p = perm.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + n);
}

CalibrationData read_calibration(const std::filesystem::path& dir,
                                 const CalibrationOptions& options) {
  const bool train = options.format == CalibFormat::kTrain;
  datasets::DatasetReader reader(dir, task_of(dir));
  CalibrationData out;
  std::vector<CalibrationSample> usable;
  datasets::Sample sample;
  while (reader.next(sample)) {
    ++out.dataset_samples;
    CalibrationSample s{sample.id, sample.question,
                        sample.answers.empty() ? std::string() : sample.answers.front(),
                        sample.images};
    if (train && s.answer.empty()) {
      out.skipped.push_back(std::move(s.id));
      continue;
    }
    usable.push_back(std::move(s));
  }
  MLAB_CHECK(!train || !usable.empty(), "--calib ", dir.string(), ": none of its ",
             out.dataset_samples,
             " samples has an answer, which --calib-format train puts in the assistant turn (use "
             "--calib-format eval for question-only calibration)");
  const auto order = seeded_permutation(static_cast<int64_t>(usable.size()), options.seed);
  std::size_t take = order.size();
  if (options.samples > 0) take = std::min(take, static_cast<std::size_t>(options.samples));
  for (std::size_t k = 0; k < take; ++k) {
    CalibrationSample& s = usable[static_cast<std::size_t>(order[k])];
    std::vector<image::Rgb8Image> images;
    for (const auto& path : s.images) {
      datasets::Image decoded = datasets::decode_image(path);
      images.push_back(
          image::make_rgb8_image(decoded.width, decoded.height, std::move(decoded.rgb)));
    }
    models::VlmRequest request =
        models::VlmRequest::single(std::move(s.question), std::move(images));
    if (train) {
      request.turns.push_back({"assistant", std::move(s.answer), 0});
      request.mode = prompt::PromptMode::kTrain;
    }
    out.requests.push_back(std::move(request));
    out.ids.push_back(std::move(s.id));
  }
  return out;
}

CalibrationData read_calibration_train_data(const std::filesystem::path& file,
                                            const CalibrationOptions& options,
                                            const std::filesystem::path& image_root) {
  MLAB_CHECK(options.format == CalibFormat::kTrain, "--calib-data ", file.string(),
             ": training data calibrates in the training template only (--calib-format train; ",
             "eval applies to a --calib dataset dir)");
  training::TrainData data = training::read_train_data(file, {.image_root = image_root});
  CalibrationData out;
  out.dataset_samples = static_cast<int64_t>(data.records.size() + data.skipped.size());
  for (auto& s : data.skipped) {
    out.skipped.push_back(std::move(s.id));
    out.skip_reasons.push_back(std::move(s.reason));
  }
  MLAB_CHECK(!data.records.empty(), "--calib-data ", file.string(), ": none of its ",
             out.dataset_samples, " records is usable (each needs an assistant answer and its ",
             "images)");
  const auto order = seeded_permutation(static_cast<int64_t>(data.records.size()), options.seed);
  std::size_t take = order.size();
  if (options.samples > 0) take = std::min(take, static_cast<std::size_t>(options.samples));
  for (std::size_t k = 0; k < take; ++k) {
    training::TrainRecord& rec = data.records[static_cast<std::size_t>(order[k])];
    // As training/train_data.cpp make_train_batch builds its request.
    models::VlmRequest request;
    request.turns = std::move(rec.turns);
    request.mode = prompt::PromptMode::kTrain;
    for (const auto& path : rec.images) {
      datasets::Image decoded = datasets::decode_image(path);
      request.images.push_back(
          image::make_rgb8_image(decoded.width, decoded.height, std::move(decoded.rgb)));
    }
    out.requests.push_back(std::move(request));
    out.ids.push_back(std::move(rec.id));
  }
  return out;
}

}  // namespace mlab::harness
