#pragma once
// `mla-bench synth` (issue F9, docs/synth.md): the synthetic eight-task suite written as dataset
// dirs in the interchange format (docs/formats.md), plus LLaVA-format training data from
// disjoint seed streams, all a deterministic function of the arguments.
//
//   DIR/<task>/{dataset.json, samples.jsonl, images/}   one per task
//   DIR/train/train.jsonl, DIR/train/images/<task>/     when train_n > 0
//   DIR/synth.json                                      what was generated (the cache key)
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "synth/task_generators.hpp"

namespace mlab::synth {

struct SynthOptions {
  std::filesystem::path out;          // the suite dir (created; a previous suite is replaced)
  std::uint64_t seed = 1;             // every stream's seed derives from it
  std::int64_t n = 50;                // eval samples per task (POPE: per category; MMBench:
                                      // questions, each with 3 circular copies)
  std::int64_t train_n = 0;           // training records per task (0: no train/)
  int image_size = 112;               // square images, pixels (56..1024)
  std::vector<std::string> tasks;     // lmms-eval names; empty: all eight
  std::filesystem::path configs_dir;  // configs/tasks (the prompts of the training records)
  std::ostream* log = nullptr;        // progress lines (nullptr: quiet)
  bool tty = false;                   // redraw progress on one line
};

struct SynthReport {
  nlohmann::json manifest;       // what synth.json holds
  std::int64_t eval_images = 0;  // files written
  std::int64_t train_images = 0;
  std::int64_t train_redrawn = 0;  // train samples redrawn because an image equalled an eval one
  double seconds = 0.0;
};

// Checks `options` (mlab::UsageError for n < 1, train_n < 0, an image size out of range, an
// unknown task, an `out` that is a file or a non-empty dir without synth.json) and writes the
// suite. Throws mlab::Error for I/O failures.
SynthReport generate_suite(const SynthOptions& options);

// The eval samples of one task as generate_suite draws them (pictures described, not rendered):
// what the blind-bound tests inspect without writing files.
std::vector<SynthSample> generate_eval_samples(const TaskGenerator& generator, std::uint64_t seed,
                                               std::int64_t n, int image_size);

// The suite's task order (all eight).
std::vector<std::string> synth_task_names();

}  // namespace mlab::synth
