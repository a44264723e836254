#pragma once
// The interchange format (docs/formats.md, DESIGN.md §3): a dataset dir holds
//   dataset.json   {"format": "mla-bench-dataset", "version": 1, "task", "source", "samples"}
//   samples.jsonl  one sample a line: {"id": "...", "images": ["images/..."], "doc": {...}}
//   images/        the image files the samples name
// where "doc" is the record in the lmms-eval dataset schema of the task without its image
// columns (what prompts and metrics read). DatasetReader streams the samples of one dir and
// validates each with its benchmark's loader (datasets/sample_loaders.hpp).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "datasets/image.hpp"
#include "datasets/jsonl_reader.hpp"

namespace mlab::datasets {

// One benchmark sample: the lmms-eval record plus the typed fields its task needs.
struct Sample {
  std::int64_t row = 0;  // 0-based position among the samples (lmms-eval's doc_id)
  std::string id;        // unique within the dataset
  std::vector<std::filesystem::path> images;  // absolute paths (SEED video docs: all frames)
  std::vector<Image> pixels;  // decoded RGB, only when DatasetOptions::decode_images
  nlohmann::json doc;         // the lmms-eval record

  // Typed view, filled by the task's loader.
  std::string question;
  std::vector<std::string> options;  // AI2D options, SEED choice_a..d, MMBench A..E present
  std::vector<std::string> answers;  // gold: AI2D/SEED/MMBench letter, DocVQA all answers, ...
  std::string category;  // POPE category, ChartQA type (human_test|augmented_test), SEED
                         // data_type (image|video), MMBench category
  std::int64_t circular_group = -1;  // MMBench: index % 1'000'000 (the main question's index)
  std::int64_t circular_copy = 0;    // MMBench: index / 1'000'000 (0 = the main question)

  // Non-empty: the sample could not be read ("file:line: reason"); only with skip_bad. The row
  // still counts, so a run records it as a failed sample instead of dropping it.
  std::string error;
  bool failed() const { return !error.empty(); }
};

struct DatasetOptions {
  bool skip_bad = false;       // per-sample problems become failed samples instead of throwing
  bool decode_images = false;  // decode every image into Sample::pixels (else header check only)
  bool check_images = true;    // read each image's header (detects missing/corrupt files)
};

struct DatasetInfo {
  std::string task;          // canonical lmms-eval task name
  nlohmann::json source;     // where it came from, e.g. {"hf_path", "hf_config", "split"}
  std::int64_t samples = 0;  // number of lines samples.jsonl must hold
};

class DatasetReader {
 public:
  // Opens the dataset dir for `task` (lmms-eval name or alias). Throws mlab::Error naming the
  // path for a missing dir, a missing/malformed dataset.json, or a task mismatch.
  DatasetReader(std::filesystem::path dir, std::string_view task, DatasetOptions options = {});
  ~DatasetReader();

  // Reads the next sample; false after the last one. Throws mlab::Error "samples.jsonl:line:
  // reason" for malformed lines, missing fields and missing/corrupt images (unless skip_bad), and
  // at the end when the number of samples differs from dataset.json's.
  bool next(Sample& sample);

  // Counts samples.jsonl's records without reading any sample (a separate pass over the lines)
  // and applies next()'s end-of-file check: throws mlab::Error naming samples.jsonl, the records
  // found and dataset.json's count when they differ. eval calls it before a run, since a --limit
  // or a count smaller than the file never lets next() reach the end (F11 D6).
  void check_count() const;

  const DatasetInfo& info() const { return info_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::int64_t failed() const { return failed_; }  // failed samples so far (skip_bad)

 private:
  void read_sample(const nlohmann::json& line, Sample& sample);
  void check_sample_count(std::int64_t found) const;

  std::filesystem::path dir_;
  DatasetOptions options_;
  DatasetInfo info_;
  std::unique_ptr<JsonlReader> reader_;
  std::unordered_set<std::string> ids_;
  std::int64_t rows_ = 0;
  std::int64_t failed_ = 0;
};

// Reads a whole dataset dir (tests, small sets); same errors as DatasetReader.
std::vector<Sample> read_dataset(const std::filesystem::path& dir, std::string_view task,
                                 DatasetOptions options = {});

}  // namespace mlab::datasets
