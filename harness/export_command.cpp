// `mla-bench export`: a stored run in lmms-eval's output layout, so the tools that read
// lmms-eval's results (and `mla-bench score --predictions`) read ours. For every task of the run
// the stored predictions are joined with their docs from the run's dataset dirs (in dataset
// order, key order kept), rescored by the same lmms-eval pipeline as `mla-bench score`, and
// written as one results.json plus samples_<task>.jsonl. Failed samples are left out (and
// counted); a run still in progress is exported with what it has, and says so.
#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "datasets/task_config.hpp"
#include "evaluators/lmms_output.hpp"
#include "evaluators/task_scoring.hpp"
#include "harness/commands.hpp"
#include "harness/score_files.hpp"
#include "results/results_store.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;
using evaluators::OrderedJson;

// Writes <tmp> with one {"doc_id", "prediction", "doc"} line per stored, unfailed sample of the
// task in dataset order; returns how many lines.
int64_t join_predictions(const fs::path& dataset_dir,
                         const std::map<std::string, std::string>& by_id, const fs::path& tmp) {
  const fs::path samples = dataset_dir / "samples.jsonl";
  std::ifstream in(samples);
  MLAB_CHECK(in.good(), samples.string(),
             ": cannot read the run's dataset (the run's config names this dir; export needs "
             "its docs)");
  std::ofstream out(tmp, std::ios::binary);
  MLAB_CHECK(out.good(), tmp.string(), ": cannot write");
  int64_t position = 0, lines = 0, number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    OrderedJson record;
    try {
      record = OrderedJson::parse(line);
    } catch (const std::exception& e) {
      MLAB_FAIL(samples.string(), ":", number, ": malformed JSON (", e.what(), ")");
    }
    const int64_t doc_id = position++;
    MLAB_CHECK(record.contains("id") && record.contains("doc"), samples.string(), ":", number,
               ": a sample needs 'id' and 'doc'");
    const auto& id = record.at("id");
    const std::string key = id.is_string() ? id.get<std::string>() : id.dump();
    const auto it = by_id.find(key);
    if (it == by_id.end()) continue;
    OrderedJson out_line = OrderedJson::object();
    out_line["doc_id"] = doc_id;
    out_line["prediction"] = it->second;
    out_line["doc"] = record.at("doc");
    out << out_line.dump() << "\n";
    ++lines;
  }
  MLAB_CHECK(out.good(), tmp.string(), ": write failed");
  return lines;
}

}  // namespace

int run_export(const ExportOptions& o, std::ostream& out) {
  MLAB_CHECK(fs::exists(o.db), o.db.string(), ": no such results database");
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(o.db, ro);
  const int64_t id = store.require_run(o.run);
  const auto run = store.run(id);
  const auto& config = run.info.config;
  for (const char* key : {"datasets", "family", "tasks", "model"}) {
    MLAB_CHECK(config.contains(key), o.db.string(), ": run '", o.run, "' has no '", key,
               "' in its config; only runs of `mla-bench eval` can be exported");
  }
  const fs::path datasets = config.at("datasets").get<std::string>();
  const std::string family = config.at("family").get<std::string>();
  fs::create_directories(o.out_dir);
  std::vector<evaluators::LmmsTaskOutput> outputs;
  std::string model_name;
  double start_time = 0;
  for (const auto& task_json : config.at("tasks")) {
    const std::string task = evaluators::canonical_task(task_json.get<std::string>());
    std::map<std::string, std::string> by_id;
    int64_t failed = 0;
    for (const auto& row : store.samples(id, task)) {
      if (!row.error.empty()) {
        ++failed;
        continue;
      }
      by_id[row.sample_id] = row.prediction;
    }
    if (by_id.empty()) {
      out << task << ": no scored samples stored, left out\n";
      continue;
    }
    const fs::path tmp = o.out_dir / (".export_" + task + ".jsonl");
    const int64_t joined = join_predictions(datasets / task, by_id, tmp);
    MLAB_CHECK(joined == static_cast<int64_t>(by_id.size()), (datasets / task).string(), ": ",
               static_cast<int64_t>(by_id.size()) - joined,
               " stored sample id(s) of the run are not in the dataset; was it changed?");
    ScoreOptions so;
    so.task = task;
    so.input = tmp;
    so.family = family;
    so.configs_dir = o.configs_dir;
    so.model_args = "pretrained=" + config.at("model").get<std::string>();
    std::ostringstream per_line;  // the per-sample scores: already in the samples file
    ScoredTask scored;
    try {
      scored = score_task_file(so, true, per_line);
    } catch (...) {
      fs::remove(tmp);
      throw;
    }
    fs::remove(tmp);
    model_name = scored.model_name;
    if (outputs.empty()) start_time = scored.start_time;
    outputs.push_back(*scored.lmms);
    out << task << ": " << joined << " samples exported";
    if (failed > 0) out << ", " << failed << " failed left out";
    out << "\n";
  }
  MLAB_CHECK(!outputs.empty(), o.db.string(), ": run '", o.run, "' has no scored samples");
  evaluators::LmmsRunInfo info{.model = model_name,
                               .model_args = "pretrained=" + config.at("model").get<std::string>(),
                               .batch_size = std::to_string(config.value("batch_size", 1)),
                               .date = format_now("%Y%m%d_%H%M%S", false),
                               .start_time = start_time,
                               .end_time = start_time};
  if (!run.info.git_sha.empty()) info.git_hash = run.info.git_sha;
  write_lmms_logs(o.out_dir, outputs, info);
  out << "wrote " << (o.out_dir / "results.json").string() << " and " << outputs.size()
      << " samples_<task>.jsonl";
  if (run.finished_at.empty()) out << " (the run is not finished: partial results)";
  out << "\n";
  return 0;
}

}  // namespace mlab::harness
