#pragma once
// mlab::results dashboard (DESIGN.md §1 `mla-bench dashboard`, issue F5): one self-contained
// static HTML page drawn from a results database. No scripts, no external resources: inline CSS
// and inline SVG charts drawn here. What it shows:
//   - regressions: a metric of a series that got worse than the previous run of the same series
//     by more than the tolerance (direction from the task config or results/perf_metrics.hpp);
//   - score vs KV memory (the paper's trade-off), one point per series (its latest run);
//   - per-benchmark grouped bars (primary metric of each task, latest run of each series);
//   - the latest run per series and every metric of it, every run (started/finished);
//   - trend small multiples of every metric of every series, regressions in red;
//   - runs/<id>.json: each run's info and resolved config, linked from the tables;
//   - training: one loss curve per `mla-bench train` run (train_steps), with its last step.
// Torch-free (STYLE.md rule 2), and independent of datasets/: what the page needs to know about a
// task's metrics (primary metric, scale, directions) is handed in by the caller.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "results/results_store.hpp"

namespace mlab::results {

// What the dashboard knows about one task's metrics (the caller reads configs/tasks/<task>.json).
struct DashboardTask {
  std::string primary_metric;             // the headline metric; "" = unknown
  double scale = 100;                     // factor to the paper's percentages (MMBench: 1)
  std::map<std::string, int> directions;  // metric -> +1 higher is better, -1 lower, 0 unknown
};

struct DashboardRenderOptions {
  std::string title = "MLA-Bench results";
  // A change for the worse beyond this between consecutive runs of a series is a regression.
  // Task metrics: in the metric's own units (as `mla-bench regress`); perf:* metrics and KV
  // memory: relative to the previous value (0.05 = 5%).
  double tolerance = 0.0;
  // Timing metrics (results::is_timing_metric: tokens/s, latency) are noisy: their regressions
  // are relative changes beyond this instead (0.10 = 10% slower).
  double speed_tolerance = 0.10;
  std::map<std::string, DashboardTask> tasks;  // by task name; tasks not here: direction unknown
  std::string generated_at;                    // shown in the footer when not empty
};

// One stored run with everything the page draws.
struct DashboardRun {
  RunRow row;
  std::string series;  // series_name(row.info)
  std::vector<MetricRow> metrics;
  std::vector<KvMemoryRow> kv_memory;
};

// One stored training run (`mla-bench train`) and its steps.
struct DashboardTrainRun {
  RunRow row;
  std::vector<TrainStepRow> steps;  // by step
};

struct DashboardData {
  std::string source;              // the database path, shown in the header
  std::vector<DashboardRun> runs;  // ordered by run id
  std::vector<DashboardTrainRun> train_runs;  // ordered by training run id

  // Every run of the store with its metrics and KV memory, every training run with its steps.
  static DashboardData load(const ResultsStore& store);
  // Opens `db` read-only. Throws mlab::Error naming the file when it does not exist (it is never
  // created) or is not a results database.
  static DashboardData load(const std::filesystem::path& db);
};

// A point of a trend that is worse than the previous run of its series beyond the tolerance.
struct DashboardRegression {
  std::string series;
  std::string task;    // "KV memory" for a kv_memory row
  std::string metric;  // the metric, or the KV method for a kv_memory row
  int64_t previous_run = 0;
  int64_t run = 0;
  double previous = 0;
  double value = 0;
  double worse_by = 0;  // in the units the tolerance is compared in (absolute or relative)
  bool relative = false;
  bool unfinished = false;  // the run has no finished_at
};

// The series a run belongs to: config "series" when it is a string, else
// "<model> / <methods> / <dtype>" (model: the last path component, or the "name" of an object).
std::string series_name(const RunInfo& info);

// +1 higher is better, -1 lower is better, 0 unknown: perf:* from results/perf_metrics.hpp, the
// rest from options.tasks.
int metric_direction(const DashboardRenderOptions& options, const std::string& task,
                     const std::string& metric);

// Every regression of every series, in series order then run id.
std::vector<DashboardRegression> find_regressions(const DashboardData& data,
                                                  const DashboardRenderOptions& options);

// The page: a complete, well-formed (XHTML-compatible) HTML document. All text from the database
// is escaped. An empty database yields a page saying there are no runs.
std::string render_dashboard(const DashboardData& data, const DashboardRenderOptions& options);

// Distinct series of the data.
std::size_t series_count(const DashboardData& data);

struct DashboardSummary {
  std::filesystem::path index;  // <dir>/index.html
  std::size_t runs = 0;
  std::size_t series = 0;
  std::size_t regressions = 0;
};

// Writes <dir>/index.html (temporary file + rename, so a reader never sees half a page) and
// <dir>/runs/<id>.json (run info, resolved config, metrics, KV memory) for every run, creating
// the directories. Throws mlab::Error naming the file that could not be written.
DashboardSummary write_dashboard(const DashboardData& data, const DashboardRenderOptions& options,
                                 const std::filesystem::path& dir);

// Helpers exposed for tests.

// "512 B", "1.5 KiB", "2.25 MiB" (binary units, at most 3 significant decimals).
std::string format_bytes(double bytes);
// Tick values covering [lo, hi] at "nice" steps (1, 2, 2.5 or 5 times a power of ten), about
// `target` of them; the first <= lo and the last >= hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace mlab::results
