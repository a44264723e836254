// `mla-bench check-dataset`: streams a dataset dir (docs/formats.md) through datasets::
// DatasetReader, which validates every sample (fields through the task's loader, image files
// exist and have a readable header or, with --decode-images, decode), with a progress reporter
// on stderr, then prints a summary: samples read, ok, failed, and each failure. The reader's
// skip_bad option turns a bad sample into a failed sample (recorded, never dropped).
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "datasets/dataset_reader.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {
namespace {

struct Failure {
  std::int64_t row = 0;
  std::string id;     // the sample's id, or "line N" when the line was not JSON
  std::string error;  // "<dir>/samples.jsonl:N: reason"
};

}  // namespace

int run_check_dataset(const CheckDatasetOptions& options, std::ostream& out) {
  const std::string task = evaluators::canonical_task(options.task);
  datasets::DatasetReader reader(
      options.dataset, task,
      {.skip_bad = options.skip_bad, .decode_images = options.decode_images, .check_images = true});
  const bool tty = Progress::is_terminal(2);
  Progress progress(std::cerr, reader.info().samples,
                    {.label = "check-dataset " + task, .unit = "samples", .tty = tty});
  std::int64_t read = 0;
  std::vector<Failure> failures;
  datasets::Sample sample;
  // Without skip_bad the first bad sample throws "samples.jsonl:N: reason" out of next().
  while (reader.next(sample)) {
    ++read;
    if (sample.failed()) failures.push_back({sample.row, sample.id, sample.error});
    progress.advance();
  }
  progress.finish();

  const std::int64_t ok = read - static_cast<std::int64_t>(failures.size());
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const Failure& f : failures) {
      list.push_back({{"row", f.row}, {"id", f.id}, {"error", f.error}});
    }
    out << nlohmann::json{{"task", task},
                          {"dataset", reader.dir().string()},
                          {"samples", read},
                          {"ok", ok},
                          {"failed", static_cast<std::int64_t>(failures.size())},
                          {"failures", list}}
               .dump()
        << "\n";
    return 0;
  }
  out << "dataset: " << reader.dir().string() << "\n"
      << "task:    " << task << "\n"
      << "samples: " << read << " read, " << ok << " ok, " << failures.size() << " failed\n";
  for (const Failure& f : failures) {
    out << "  failed row " << f.row << " (id '" << f.id << "'): " << f.error << "\n";
  }
  return 0;
}

}  // namespace mlab::harness
