// `mla-bench regress`: the nightly gate. Compares every metric of a baseline run with the same
// metric of a candidate run (same database) and every measured KV-memory row; a metric that got
// worse by more than the tolerance (in the metric's own units; direction from the task config's
// higher_is_better), a metric the candidate lacks, or KV bytes per token that grew by more than
// the tolerance (relative) is a regression: the command lists everything and exits 1. Speed and
// the other measured "perf:" metrics (results/perf_metrics.hpp) are listed for information only:
// timings vary from machine to machine and run to run, so they never fail the gate.
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>

#include "core/error.hpp"
#include "datasets/task_config.hpp"
#include "harness/commands.hpp"
#include "results/perf_metrics.hpp"
#include "results/results_store.hpp"

namespace mlab::harness {
namespace {

// metric -> +1 when higher is better, -1 when lower is, per the task config (empty when the task
// has no readable config), each task's file read once.
class Directions {
 public:
  explicit Directions(std::filesystem::path configs) : configs_(std::move(configs)) {}
  // 0 when the task config does not say.
  int operator()(const std::string& task, const std::string& metric) {
    auto it = by_task_.find(task);
    if (it == by_task_.end()) {
      std::map<std::string, int> directions;
      try {
        for (const auto& m : datasets::TaskConfig::load(configs_, task).metrics)
          directions.emplace(m.metric, m.higher_is_better ? 1 : -1);
      } catch (const Error&) {
      }
      it = by_task_.emplace(task, std::move(directions)).first;
    }
    const auto d = it->second.find(metric);
    return d == it->second.end() ? 0 : d->second;
  }

 private:
  std::filesystem::path configs_;
  std::map<std::string, std::map<std::string, int>> by_task_;
};

}  // namespace

int run_regress(const RegressOptions& o, std::ostream& out) {
  MLAB_CHECK(o.tolerance >= 0, "regress: --tolerance must be >= 0, got ", o.tolerance);
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(o.db, ro);
  const int64_t base = store.require_run(o.baseline), cand = store.require_run(o.candidate);
  Directions direction(o.configs_dir);
  std::map<std::pair<std::string, std::string>, double> now;
  for (const auto& m : store.metrics(cand)) now[{m.task, m.metric}] = m.value;
  int regressions = 0, compared = 0;
  char line[256];
  out << "task         metric                       baseline    candidate       change  status\n";
  for (const auto& m : store.metrics(base)) {
    const auto it = now.find({m.task, m.metric});
    std::string status;
    double delta = NAN, value = NAN;
    if (it == now.end()) {
      status = "MISSING";
      ++regressions;
    } else {
      value = it->second;
      delta = value - m.value;
      const int dir = results::is_perf_metric(m.metric) ? 0 : direction(m.task, m.metric);
      const double worse = dir == 0 ? 0.0 : -dir * delta;
      status = dir == 0 ? "info" : worse > o.tolerance ? "REGRESSION" : "ok";
      regressions += status == "REGRESSION";
      compared += dir != 0;
    }
    if (status == "MISSING" && results::is_perf_metric(m.metric)) {
      status = "info";  // a run without timings (e.g. migrated from schema version 1)
      --regressions;
    }
    std::snprintf(line, sizeof line, "%-12s %-26s %11.4f  %11.4f  %+11.4f  %s\n", m.task.c_str(),
                  m.metric.c_str(), m.value, value, delta, status.c_str());
    out << line;
  }
  std::map<std::string, double> kv_now;
  for (const auto& k : store.kv_memory(cand)) kv_now[k.method] = k.bytes_per_token_layer_measured;
  for (const auto& k : store.kv_memory(base)) {
    const auto it = kv_now.find(k.method);
    if (it == kv_now.end() || k.bytes_per_token_layer_measured <= 0) continue;
    const double growth = it->second / k.bytes_per_token_layer_measured - 1;
    const bool bad = growth > o.tolerance;
    regressions += bad;
    std::snprintf(line, sizeof line, "KV memory    %-26s %11.1f  %11.1f  %+10.2f%%  %s\n",
                  k.method.c_str(), k.bytes_per_token_layer_measured, it->second, 100 * growth,
                  bad ? "REGRESSION" : "ok");
    out << line;
  }
  out << compared << " metric(s) compared, " << regressions << " regression(s) beyond tolerance "
      << o.tolerance << " (" << o.baseline << " -> " << o.candidate << ")\n";
  return regressions > 0 ? 1 : 0;
}

}  // namespace mlab::harness
