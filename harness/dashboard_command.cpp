// `mla-bench dashboard`: the static HTML dashboard of a results database (results/dashboard.hpp).
// The database is opened read-only and never created; what the page needs to know about each
// task's metrics (primary metric, scale, higher_is_better) comes from configs/tasks/<task>.json.
// Writes <out>/index.html and <out>/runs/<id>.json.
#include <ostream>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "datasets/task_config.hpp"
#include "harness/commands.hpp"
#include "results/dashboard.hpp"

namespace mlab::harness {
namespace {

// What the task configs say about the tasks of the stored runs; a task without a config is left
// out (its metrics are drawn, but with no direction no regression can be decided).
std::map<std::string, results::DashboardTask> task_infos(const results::DashboardData& data,
                                                         const std::filesystem::path& configs,
                                                         std::ostream& out) {
  std::set<std::string> tasks;
  for (const auto& r : data.runs) {
    for (const auto& m : r.metrics) tasks.insert(m.task);
  }
  std::map<std::string, results::DashboardTask> infos;
  for (const auto& task : tasks) {
    try {
      const auto config = datasets::TaskConfig::load(configs, task);
      results::DashboardTask info;
      info.primary_metric = config.headline.substr(0, config.headline.find(','));
      info.scale = config.scale;
      for (const auto& m : config.metrics) info.directions[m.metric] = m.higher_is_better ? 1 : -1;
      infos[task] = std::move(info);
    } catch (const std::exception& e) {
      out << "note: no task config for '" << task << "' in " << configs.string()
          << " (its metrics have no direction): " << e.what() << "\n";
    }
  }
  return infos;
}

}  // namespace

int run_dashboard(const DashboardOptions& o, std::ostream& out) {
  MLAB_CHECK(o.tolerance >= 0, "dashboard: --tolerance must be >= 0, got ", o.tolerance);
  const auto data = results::DashboardData::load(o.db);
  results::DashboardRenderOptions ro;
  ro.title = o.title;
  ro.tolerance = o.tolerance;
  MLAB_CHECK(o.speed_tolerance >= 0, "dashboard: --speed-tolerance must be >= 0, got ",
             o.speed_tolerance);
  ro.speed_tolerance = o.speed_tolerance;
  ro.tasks = task_infos(data, o.configs_dir, out);
  ro.generated_at = format_now("%Y-%m-%dT%H:%M:%SZ", true);
  const auto summary = results::write_dashboard(data, ro, o.out);
  out << summary.index.string() << "\n";
  out << summary.runs << " run(s), " << summary.series << " series, " << summary.regressions
      << " regression(s) beyond tolerance " << o.tolerance << "\n";
  return 0;
}

}  // namespace mlab::harness
