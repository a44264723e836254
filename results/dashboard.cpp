// The static results dashboard (dashboard.hpp). Everything is drawn here as text: the page is
// XHTML-compatible HTML5 (void elements self-closed) so that an XML checker can read it, with
// inline SVG charts whose scales use "nice" ticks (Heckbert, Graphics Gems I, "Nice numbers for
// graph labels") and bytes in binary units.
#include "results/dashboard.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "results/perf_metrics.hpp"

namespace mlab::results {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Series colours (no red: red marks regressions).
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                                    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
                                    "#637939", "#8c6d31", "#7b4173", "#3182bd"};
constexpr std::size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
constexpr const char* kRed = "#d62728";
constexpr const char* kKvTask = "KV memory";

const char* colour(std::size_t i) { return kPalette[i % kPaletteSize]; }

std::string printf_str(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A coordinate in an SVG attribute.
std::string xy(double v) { return printf_str("%.1f", v); }

std::string trim_zeros(std::string s) {
  if (s.find('.') == std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// A measured value with about four significant digits.
std::string format_number(double v) {
  if (!std::isfinite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 1000) return printf_str("%.0f", v);
  if (a >= 100) return trim_zeros(printf_str("%.1f", v));
  if (a >= 10) return trim_zeros(printf_str("%.2f", v));
  if (a >= 1) return trim_zeros(printf_str("%.3f", v));
  return trim_zeros(printf_str("%.4f", v));
}

// Decimals needed to print multiples of `step` exactly.
int decimals_for(double step) {
  for (int d = 0; d < 8; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * std::max(1.0, scaled)) return d;
  }
  return 8;
}

std::string tick_label(double v, double step) {
  return printf_str(("%." + std::to_string(decimals_for(step)) + "f").c_str(), v);
}

double nice_number(double x, bool round) {
  const double e = std::floor(std::log10(x));
  const double f = x / std::pow(10.0, e);
  double nf;
  if (round) {
    nf = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
  } else {
    nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  }
  return nf * std::pow(10.0, e);
}

// A byte axis: values are divided by `div` and labelled with `unit`.
struct ByteUnit {
  double div = 1;
  const char* unit = "B";
};

ByteUnit byte_unit(double max_bytes) {
  if (max_bytes >= 1024.0 * 1024 * 1024) return {1024.0 * 1024 * 1024, "GiB"};
  if (max_bytes >= 1024.0 * 1024) return {1024.0 * 1024, "MiB"};
  if (max_bytes >= 1024.0) return {1024.0, "KiB"};
  return {};
}

// ISO 8601 "YYYY-MM-DDTHH:MM:SS(.fff)Z" to seconds since the epoch.
std::optional<double> parse_iso(const std::string& s) {
  int y, mo, d, h, mi;
  double sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%lf", &y, &mo, &d, &h, &mi, &sec) != 6) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return static_cast<double>(timegm(&tm)) + sec;
}

std::string format_duration(double s) {
  if (s < 0) return "";
  if (s < 60) return trim_zeros(printf_str("%.1f", s)) + " s";
  const auto total = static_cast<long long>(std::llround(s));
  char buf[64];
  if (total < 3600) {
    std::snprintf(buf, sizeof buf, "%lld m %lld s", total / 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld h %lld m", total / 3600, (total % 3600) / 60);
  }
  return buf;
}

std::string json_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string model_name(const json& config) {
  const auto it = config.find("model");
  if (it == config.end()) return "?";
  if (it->is_object()) {
    const auto n = it->find("name");
    return n != it->end() ? json_text(*n) : json_text(*it);
  }
  if (!it->is_string()) return json_text(*it);
  fs::path p(it->get<std::string>());
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() ? it->get<std::string>() : name;
}

std::string methods_name(const json& config) {
  for (const char* key : {"methods", "method"}) {
    const auto it = config.find(key);
    if (it == config.end()) continue;
    if (it->is_array()) {
      std::string out;
      for (const auto& m : *it) out += (out.empty() ? "" : ",") + json_text(m);
      return out;
    }
    return json_text(*it);
  }
  return "?";
}

std::string dtype_name(const json& config) {
  const auto it = config.find("dtype");
  return it == config.end() ? "" : json_text(*it);
}

// A trend: one metric of one task, or the measured KV bytes of one method.
struct Key {
  std::string task, metric;
  bool kv = false;
  bool operator<(const Key& o) const {
    return std::tie(kv, task, metric) < std::tie(o.kv, o.task, o.metric);
  }
  bool operator==(const Key& o) const { return kv == o.kv && task == o.task && metric == o.metric; }
};

// An axis-aligned rectangle in SVG pixels (label placement).
struct Box {
  double x, y, w, h;
  bool overlaps(const Box& o) const {
    return x < o.x + o.w && o.x < x + w && y < o.y + o.h && o.y < y + h;
  }
};

// Derived values of one run.
struct View {
  const DashboardRun* run = nullptr;
  std::string model, methods;
  std::map<Key, double> values;
  std::optional<double> score;  // mean over tasks of the primary metric x scale
  int score_tasks = 0;
  const KvMemoryRow* kv = nullptr;      // the row of the run's method (or its first)
  std::optional<double> kv_all_layers;  // mean perf:kv_bytes_per_token over tasks
  bool finished() const { return !run->row.finished_at.empty(); }
  int64_t id() const { return run->row.id; }
  bool has_data() const { return !values.empty(); }
};

struct Series {
  std::string name;
  std::size_t index = 0;          // colour
  std::vector<const View*> runs;  // by id
  const View* latest = nullptr;   // the run the charts and tables show (see Page's ctor)
  std::vector<Key> keys;          // every trend of the series, display order
};

// The mean of a perf metric over the run's tasks.
std::optional<double> perf_mean(const View& v, std::string_view metric) {
  double sum = 0;
  int n = 0;
  for (const auto& m : v.run->metrics) {
    if (m.metric == metric) {
      sum += m.value;
      ++n;
    }
  }
  if (n == 0) return std::nullopt;
  return sum / n;
}

class Page {
 public:
  Page(const DashboardData& data, const DashboardRenderOptions& options)
      : data_(data), options_(options) {
    views_.reserve(data.runs.size());
    for (const auto& r : data.runs) views_.push_back(make_view(r));
    std::map<std::string, std::size_t> index;
    for (const auto& v : views_) {
      const auto [it, inserted] = index.emplace(v.run->series, series_.size());
      if (inserted) {
        Series s;
        s.name = v.run->series;
        s.index = series_.size();
        series_.push_back(std::move(s));
      }
      series_[it->second].runs.push_back(&v);
    }
    for (auto& s : series_) {
      // The latest finished run with data: a run in progress (or one that stopped) holds only
      // some tasks. Failing that, the latest run with data, then the latest run.
      s.latest = s.runs.back();
      for (const bool need_finished : {true, false}) {
        const auto it = std::find_if(s.runs.rbegin(), s.runs.rend(), [&](const View* v) {
          return v->has_data() && (v->finished() || !need_finished);
        });
        if (it != s.runs.rend()) {
          s.latest = *it;
          break;
        }
      }
      std::set<Key> keys;
      for (const auto* v : s.runs) {
        for (const auto& [k, value] : v->values) keys.insert(k);
      }
      s.keys.assign(keys.begin(), keys.end());
      std::stable_sort(s.keys.begin(), s.keys.end(),
                       [&](const Key& a, const Key& b) { return rank(a) < rank(b); });
      find_regressions(s);
    }
  }

  const std::vector<DashboardRegression>& regressions() const { return regressions_; }
  std::size_t series_count() const { return series_.size(); }

  std::string render() const {
    std::string h;
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
    h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
    h += "<link rel=\"icon\" href=\"data:,\"/>\n";
    h += "<title>" + html_escape(options_.title) + "</title>\n";
    h += style();
    h += "</head>\n<body>\n<header>\n<h1>" + html_escape(options_.title) + "</h1>\n";
    h += "<p class=\"meta\">" + html_escape(data_.source) + " &#183; " +
         std::to_string(views_.size()) + " run(s) &#183; " + std::to_string(series_.size()) +
         " series &#183; <span class=\"" + (regressions_.empty() ? "okc" : "bad") + "\">" +
         std::to_string(regressions_.size()) + " regression(s)</span> &#183; tolerance " +
         html_escape(format_number(options_.tolerance)) + "</p>\n";
    if (views_.empty() && data_.train_runs.empty()) {
      h += "</header>\n<main>\n<section id=\"empty\">\n<p class=\"empty\">There are no runs in " +
           html_escape(data_.source) +
           " yet. Run <code>mla-bench eval --db ...</code> to add one, then draw the dashboard "
           "again.</p>\n</section>\n</main>\n";
      h += footer();
      h += "</body>\n</html>\n";
      return h;
    }
    if (views_.empty()) {  // training runs only
      h += "<nav><a href=\"#training\">Training</a></nav>\n</header>\n<main>\n";
      h += training_section();
      h += "</main>\n";
      h += footer();
      h += "</body>\n</html>\n";
      return h;
    }
    h += "<nav><a href=\"#regressions\">Regressions</a> <a href=\"#tradeoff\">Score vs KV "
         "memory</a> <a href=\"#benchmarks\">Benchmarks</a> <a href=\"#latest\">Latest runs</a> "
         "<a href=\"#trends\">Trends</a> <a href=\"#runs\">All runs</a>";
    if (!data_.train_runs.empty()) h += " <a href=\"#training\">Training</a>";
    h += "</nav>\n</header>\n<main>\n";
    h += regressions_section();
    h += tradeoff_section();
    h += benchmarks_section();
    h += latest_section();
    h += trends_section();
    h += runs_section();
    if (!data_.train_runs.empty()) h += training_section();
    h += "</main>\n";
    h += footer();
    h += "</body>\n</html>\n";
    return h;
  }

 private:
  // Display order within a series: tasks by name (primary metric first, then the other task
  // metrics, then perf:*), KV memory last.
  std::tuple<bool, std::string, int, std::string> rank(const Key& k) const {
    int group = 1;
    if (k.kv) {
      group = 0;
    } else if (is_perf_metric(k.metric)) {
      group = 2;
    } else if (const auto t = options_.tasks.find(k.task);
               t != options_.tasks.end() && t->second.primary_metric == k.metric) {
      group = 0;
    }
    return {k.kv, k.task, group, k.metric};
  }

  // The primary metric of `task` in run `v` and its scale; nullopt when it cannot be told.
  std::optional<std::pair<std::string, double>> primary(const View& v,
                                                        const std::string& task) const {
    const auto t = options_.tasks.find(task);
    if (t != options_.tasks.end() && !t->second.primary_metric.empty()) {
      if (v.values.count({task, t->second.primary_metric, false})) {
        return std::make_pair(t->second.primary_metric, t->second.scale);
      }
      return std::nullopt;
    }
    // Unknown task: its only non-perf metric, if it has exactly one.
    std::optional<std::string> only;
    for (const auto& m : v.run->metrics) {
      if (m.task != task || is_perf_metric(m.metric)) continue;
      if (only) return std::nullopt;
      only = m.metric;
    }
    if (!only) return std::nullopt;
    return std::make_pair(*only, t != options_.tasks.end() ? t->second.scale : 100.0);
  }

  std::optional<double> primary_score(const View& v, const std::string& task) const {
    const auto p = primary(v, task);
    if (!p) return std::nullopt;
    return v.values.at({task, p->first, false}) * p->second;
  }

  View make_view(const DashboardRun& r) const {
    View v;
    v.run = &r;
    v.model = model_name(r.row.info.config);
    v.methods = methods_name(r.row.info.config);
    for (const auto& m : r.metrics) v.values[{m.task, m.metric, false}] = m.value;
    for (const auto& k : r.kv_memory) {
      v.values[{kKvTask, k.method, true}] = k.bytes_per_token_layer_measured;
      if (v.kv == nullptr || k.method == v.methods) v.kv = &k;
    }
    std::set<std::string> tasks;
    for (const auto& m : r.metrics) tasks.insert(m.task);
    double sum = 0;
    for (const auto& task : tasks) {
      if (const auto s = primary_score(v, task)) {
        sum += *s;
        ++v.score_tasks;
      }
    }
    if (v.score_tasks > 0) v.score = sum / v.score_tasks;
    v.kv_all_layers = perf_mean(v, kKvBytesPerToken);
    return v;
  }

  int direction(const Key& k) const {
    return k.kv ? -1 : metric_direction(options_, k.task, k.metric);
  }

  static bool relative(const Key& k) { return k.kv || is_perf_metric(k.metric); }

  void find_regressions(const Series& s) {
    for (const auto& key : s.keys) {
      const int dir = direction(key);
      if (dir == 0) continue;
      const View* prev = nullptr;
      for (const auto* v : s.runs) {
        const auto it = v->values.find(key);
        if (it == v->values.end()) continue;
        if (prev != nullptr) {
          const double before = prev->values.at(key), now = it->second;
          const bool rel = relative(key) && before != 0;
          const double worse =
              rel ? -dir * (now - before) / std::fabs(before) : -dir * (now - before);
          const double tolerance =
              is_timing_metric(key.metric) ? options_.speed_tolerance : options_.tolerance;
          if (worse > tolerance + 1e-12) {
            DashboardRegression r;
            r.series = s.name;
            r.task = key.task;
            r.metric = key.metric;
            r.previous_run = prev->id();
            r.run = v->id();
            r.previous = before;
            r.value = now;
            r.worse_by = worse;
            r.relative = rel;
            r.unfinished = !v->finished();
            regressions_.push_back(r);
            regression_points_.insert({s.name, key, v->id()});
          }
        }
        prev = v;
      }
    }
  }

  bool is_regression(const Series& s, const Key& k, int64_t run) const {
    return regression_points_.count({s.name, k, run}) > 0;
  }

  // A value in its unit: bytes for KV figures, "tok/s" / "s" for speed.
  static std::string value_text(const Key& k, double v) {
    if (k.kv) return format_bytes(v);
    if (const auto* p = find_perf_metric(k.metric)) {
      if (p->unit == "B") return format_bytes(v);
      return format_number(v) + " " + std::string(p->unit);
    }
    return format_number(v);
  }

  static std::string run_link(const View& v) {
    return "<a href=\"runs/" + std::to_string(v.id()) + ".json\">" +
           html_escape(v.run->row.info.name) + "</a>";
  }

  std::string swatch(std::size_t index) const {
    return std::string("<span class=\"sw\" style=\"background:") + colour(index) + "\"></span>";
  }

  std::string series_legend() const {
    std::string h = "<div class=\"legend\">";
    for (const auto& s : series_) {
      h += "<span class=\"li\">" + swatch(s.index) + html_escape(s.name) + "</span>";
    }
    return h + "</div>\n";
  }

  static std::string style() {
    return R"css(<style>
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; margin: 0;
  color: #1b1f24; background: #f6f7f9; font-size: 14px; }
header { background: #24292f; color: #fff; padding: 14px 28px 10px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header .meta { margin: 0 0 6px 0; color: #c9d1d9; }
header .bad { color: #ff8a80; font-weight: bold; }
header .okc { color: #9be9a8; }
nav a { color: #9ecbff; margin-right: 14px; text-decoration: none; }
main { padding: 8px 28px 24px 28px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 14px 0;
  padding: 10px 18px 14px 18px; overflow-x: auto; }
h2 { font-size: 17px; margin: 6px 0 8px 0; }
h3 { font-size: 14px; margin: 14px 0 6px 0; }
p.note { color: #57606a; margin: 4px 0; font-size: 12px; }
p.empty { font-size: 16px; }
p.ok { color: #1a7f37; font-weight: bold; }
table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px 0; }
th, td { border: 1px solid #d8dee4; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: bold; }
tr.unfinished td { background: #fff8c5; }
span.flag { color: #9a6700; font-weight: bold; }
table.reg td { background: #ffebe9; }
table.reg td.worse { color: #cf222e; font-weight: bold; }
.legend { margin: 4px 0 6px 0; }
.li { display: inline-block; margin: 2px 14px 2px 0; font-size: 12px; }
.sw { display: inline-block; width: 11px; height: 11px; margin-right: 5px; vertical-align: -1px;
  border-radius: 2px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px; }
.tm { border: 1px solid #e1e4e8; border-radius: 4px; padding: 2px 4px; background: #fff; }
.tm.reg { border-color: #d62728; }
.tmh { font-size: 11px; color: #24292f; width: 250px; overflow: hidden; white-space: nowrap;
  text-overflow: ellipsis; }
.tmh.lc { width: 380px; }
svg text { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; }
svg { max-width: 100%; height: auto; }
code { background: #eff1f3; padding: 1px 4px; border-radius: 3px; }
footer { color: #57606a; font-size: 12px; padding: 0 28px 20px 28px; }
</style>
)css";
  }

  std::string footer() const {
    std::string h =
        "<footer>Drawn by <code>mla-bench dashboard</code> from " + html_escape(data_.source);
    if (!options_.generated_at.empty()) h += " at " + html_escape(options_.generated_at);
    return h + ". Self-contained: no scripts, no network.</footer>\n";
  }

  std::string regressions_section() const {
    std::string h = "<section id=\"regressions\">\n<h2>Regressions</h2>\n";
    if (regressions_.empty()) {
      h += "<p class=\"ok\">No metric of any series got worse than the previous run of its "
           "series by more than the tolerance (" +
           html_escape(format_number(options_.tolerance)) + ").</p>\n";
    } else {
      h += "<table class=\"reg\">\n<tr><th>Series</th><th>Task</th><th>Metric</th>"
           "<th>Previous run</th><th>Run</th><th>Previous</th><th>Now</th><th>Worse by</th></tr>\n";
      for (const auto& r : regressions_) {
        const Key k{r.task, r.metric, r.task == kKvTask};
        const View* prev = view(r.previous_run);
        const View* now = view(r.run);
        h += "<tr><td>" + html_escape(r.series) + "</td><td>" + html_escape(r.task) + "</td><td>" +
             html_escape(r.metric) + "</td><td>" + run_link(*prev) + "</td><td>" + run_link(*now) +
             (r.unfinished ? " <span class=\"flag\">(unfinished)</span>" : "") +
             "</td><td class=\"n\">" + html_escape(value_text(k, r.previous)) +
             "</td><td class=\"n\">" + html_escape(value_text(k, r.value)) +
             "</td><td class=\"n worse\">" +
             html_escape(r.relative ? format_number(100 * r.worse_by) + "%"
                                    : format_number(r.worse_by)) +
             "</td></tr>\n";
      }
      h += "</table>\n";
    }
    h += "<p class=\"note\">Each run is compared with the previous run of its series (runs in id "
         "order). Task metrics are compared in their own units, perf:* metrics and KV memory "
         "relative to the previous value, timings (tokens/s, latency) against the speed "
         "tolerance (" +
         html_escape(format_number(100 * options_.speed_tolerance)) +
         "%); the direction comes from the task configs "
         "(higher_is_better) and results/perf_metrics.hpp.</p>\n</section>\n";
    return h;
  }

  const View* view(int64_t id) const {
    for (const auto& v : views_) {
      if (v.id() == id) return &v;
    }
    return nullptr;
  }

  // y axis: horizontal grid lines and labels. `ticks` in data units, `to_y` maps them.
  template <class ToY>
  static std::string y_axis(const std::vector<double>& ticks, double x0, double x1, ToY to_y,
                            const std::string& suffix) {
    std::string h;
    const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : 1;
    for (double t : ticks) {
      const double y = to_y(t);
      h += "<line x1=\"" + xy(x0) + "\" y1=\"" + xy(y) + "\" x2=\"" + xy(x1) + "\" y2=\"" + xy(y) +
           "\" stroke=\"#e6e8eb\"/>";
      h += "<text x=\"" + xy(x0 - 5) + "\" y=\"" + xy(y + 3.5) +
           "\" text-anchor=\"end\" font-size=\"10\" fill=\"#57606a\">" +
           html_escape(tick_label(t, step) + suffix) + "</text>\n";
    }
    return h;
  }

  static std::string marker(int shape, double x, double y, const char* fill, double r) {
    switch (shape % 4) {
      case 1:
        return "<rect x=\"" + xy(x - r) + "\" y=\"" + xy(y - r) + "\" width=\"" + xy(2 * r) +
               "\" height=\"" + xy(2 * r) + "\" fill=\"" + fill + "\" stroke=\"#fff\"/>";
      case 2:
        return "<polygon points=\"" + xy(x) + "," + xy(y - 1.2 * r) + " " + xy(x + 1.1 * r) + "," +
               xy(y + 0.9 * r) + " " + xy(x - 1.1 * r) + "," + xy(y + 0.9 * r) + "\" fill=\"" +
               fill + "\" stroke=\"#fff\"/>";
      case 3:
        return "<polygon points=\"" + xy(x) + "," + xy(y - 1.3 * r) + " " + xy(x + 1.3 * r) + "," +
               xy(y) + " " + xy(x) + "," + xy(y + 1.3 * r) + " " + xy(x - 1.3 * r) + "," + xy(y) +
               "\" fill=\"" + fill + "\" stroke=\"#fff\"/>";
      default:
        return "<circle cx=\"" + xy(x) + "\" cy=\"" + xy(y) + "\" r=\"" + xy(r) + "\" fill=\"" +
               fill + "\" stroke=\"#fff\"/>";
    }
  }

  std::string tradeoff_section() const {
    std::string h =
        "<section id=\"tradeoff\">\n<h2>Score vs KV memory (latest finished run of each "
        "series)</h2>\n";
    struct Point {
      const Series* s;
      const View* v;
      double x, y;
    };
    std::vector<Point> per_layer, all_layers;
    std::vector<std::string> left_out;
    for (const auto& s : series_) {
      const View* v = s.latest;
      if (!v->score) {
        left_out.push_back(s.name + " (no primary score)");
        continue;
      }
      if (v->kv != nullptr) {
        per_layer.push_back({&s, v, v->kv->bytes_per_token_layer_measured, *v->score});
      } else if (v->kv_all_layers) {
        all_layers.push_back({&s, v, *v->kv_all_layers, *v->score});
      } else {
        left_out.push_back(s.name + " (no KV memory)");
      }
    }
    // One x unit per chart: per layer when any run has it; runs with only the all-layers figure
    // are then listed rather than mixed in.
    const bool layer_mode = !per_layer.empty();
    const auto& points = layer_mode ? per_layer : all_layers;
    if (layer_mode) {
      for (const auto& p : all_layers) left_out.push_back(p.s->name + " (no per-layer KV memory)");
    }
    if (points.empty()) {
      h += "<p class=\"note\">No series has both a primary score and a KV memory figure.</p>\n";
    } else {
      std::vector<std::string> models;
      for (const auto& p : points) {
        if (std::find(models.begin(), models.end(), p.v->model) == models.end()) {
          models.push_back(p.v->model);
        }
      }
      const double W = 900, H = 430, l = 64, r = 190, t = 16, b = 52;
      double xmax = 0, ymin = 1e300, ymax = -1e300;
      for (const auto& p : points) {
        xmax = std::max(xmax, p.x);
        ymin = std::min(ymin, p.y);
        ymax = std::max(ymax, p.y);
      }
      const ByteUnit unit = byte_unit(xmax);
      const auto xt = nice_ticks(0, xmax / unit.div, 6);
      const auto yt = nice_ticks(ymin, ymax, 6);
      const double x0 = l, x1 = W - r, y0 = H - b, y1 = t;
      const auto to_x = [&](double v) {
        return x0 + (v / unit.div - xt.front()) / (xt.back() - xt.front()) * (x1 - x0);
      };
      const auto to_y = [&](double v) {
        return y0 - (v - yt.front()) / (yt.back() - yt.front()) * (y0 - y1);
      };
      h += "<svg width=\"" + xy(W) + "\" height=\"" + xy(H) + "\" viewBox=\"0 0 " + xy(W) + " " +
           xy(H) + "\" role=\"img\" aria-label=\"score versus KV memory\">\n";
      h += y_axis(yt, x0, x1, to_y, "");
      const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
      for (double v : xt) {
        const double x = x0 + (v - xt.front()) / (xt.back() - xt.front()) * (x1 - x0);
        h += "<line x1=\"" + xy(x) + "\" y1=\"" + xy(y0) + "\" x2=\"" + xy(x) + "\" y2=\"" +
             xy(y1) + "\" stroke=\"#f0f1f3\"/>";
        h += "<text x=\"" + xy(x) + "\" y=\"" + xy(y0 + 15) +
             "\" text-anchor=\"middle\" font-size=\"10\" fill=\"#57606a\">" +
             html_escape(tick_label(v, xstep) + " " + unit.unit) + "</text>\n";
      }
      h += "<line x1=\"" + xy(x0) + "\" y1=\"" + xy(y0) + "\" x2=\"" + xy(x1) + "\" y2=\"" +
           xy(y0) + "\" stroke=\"#57606a\"/><line x1=\"" + xy(x0) + "\" y1=\"" + xy(y0) +
           "\" x2=\"" + xy(x0) + "\" y2=\"" + xy(y1) + "\" stroke=\"#57606a\"/>\n";
      h += "<text x=\"" + xy((x0 + x1) / 2) + "\" y=\"" + xy(H - 12) +
           "\" text-anchor=\"middle\" font-size=\"12\">" +
           (layer_mode ? "KV cache bytes per token per layer (measured)"
                       : "KV cache bytes per token, all layers (perf:kv_bytes_per_token)") +
           "</text>\n";
      h += "<text transform=\"translate(16," + xy((y0 + y1) / 2) +
           ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">mean primary score "
           "(x100)</text>\n";
      // Method labels are placed greedily: right of the marker, else left, above, below, then
      // further out, the first spot that overlaps no marker and no label placed before.
      std::vector<Box> taken;
      for (const auto& p : points) taken.push_back({to_x(p.x) - 7, to_y(p.y) - 7, 14, 14});
      for (const auto& p : points) {
        const auto m = static_cast<std::size_t>(
            std::find(models.begin(), models.end(), p.v->model) - models.begin());
        const double x = to_x(p.x), y = to_y(p.y);
        h += "<g><title>" +
             html_escape(p.s->name + "\nrun " + p.v->run->row.info.name + "\nscore " +
                         format_number(p.y) + " over " + std::to_string(p.v->score_tasks) +
                         " task(s)\nKV " + format_bytes(p.x)) +
             "</title>" + marker(static_cast<int>(m), x, y, colour(m), 6) + "</g>";
        const double w = 6.3 * static_cast<double>(p.v->methods.size()), th = 12;
        // (left edge, baseline) candidates.
        const std::vector<std::pair<double, double>> spots = {
            {x + 9, y + 4},  {x - 9 - w, y + 4}, {x - w / 2, y - 10}, {x - w / 2, y + 18},
            {x + 9, y - 9},  {x + 9, y + 17},    {x - 9 - w, y - 9},  {x - 9 - w, y + 17},
            {x + 9, y - 22}, {x + 9, y + 30},    {x - w / 2, y - 23}, {x - w / 2, y + 31}};
        auto chosen = spots.front();
        for (const auto& [sx, sy] : spots) {
          const Box box{sx, sy - th + 2, w, th};
          if (box.x < 2 || box.x + box.w > W - 2 || box.y < 0 || box.y + box.h > H) continue;
          if (std::none_of(taken.begin(), taken.end(),
                           [&](const Box& o) { return box.overlaps(o); })) {
            chosen = {sx, sy};
            break;
          }
        }
        taken.push_back({chosen.first, chosen.second - th + 2, w, th});
        h += "<text x=\"" + xy(chosen.first) + "\" y=\"" + xy(chosen.second) +
             "\" font-size=\"11\" fill=\"" + colour(m) + "\">" + html_escape(p.v->methods) +
             "</text>\n";
      }
      // Legend: one marker and colour per model.
      for (std::size_t i = 0; i < models.size(); ++i) {
        const double ly = t + 12 + 20.0 * static_cast<double>(i);
        h += marker(static_cast<int>(i), x1 + 22, ly, colour(i), 6);
        h += "<text x=\"" + xy(x1 + 34) + "\" y=\"" + xy(ly + 4) + "\" font-size=\"12\">" +
             html_escape(models[i]) + "</text>\n";
      }
      h += "</svg>\n";
      h += "<p class=\"note\">One point per series (its latest finished run), one colour and "
           "marker per model, labelled with the method. y: the mean over the run's tasks of "
           "each task's primary metric times the task's scale (the paper's percentages).</p>\n";
    }
    if (!left_out.empty()) {
      std::string list;
      for (const auto& s : left_out) list += (list.empty() ? "" : "; ") + s;
      h += "<p class=\"note\">Not plotted: " + html_escape(list) + ".</p>\n";
    }
    return h + "</section>\n";
  }

  std::string benchmarks_section() const {
    std::string h =
        "<section id=\"benchmarks\">\n<h2>Per benchmark (latest finished run of each "
        "series)</h2>\n";
    std::set<std::string> task_set;
    for (const auto& s : series_) {
      for (const auto& m : s.latest->run->metrics) {
        if (primary_score(*s.latest, m.task)) task_set.insert(m.task);
      }
    }
    if (task_set.empty()) {
      return h + "<p class=\"note\">No run has a primary score yet.</p>\n</section>\n";
    }
    const std::vector<std::string> tasks(task_set.begin(), task_set.end());
    double vmax = 0, vmin = 0;
    for (const auto& s : series_) {
      for (const auto& task : tasks) {
        if (const auto v = primary_score(*s.latest, task)) {
          vmax = std::max(vmax, *v);
          vmin = std::min(vmin, *v);
        }
      }
    }
    const auto yt = nice_ticks(vmin, vmax > vmin ? vmax : vmin + 1, 6);
    const double W = 1160, H = 340, l = 52, r = 12, t = 14, b = 40;
    const double x0 = l, x1 = W - r, y0 = H - b, y1 = t;
    const auto to_y = [&](double v) {
      return y0 - (v - yt.front()) / (yt.back() - yt.front()) * (y0 - y1);
    };
    const double group_w = (x1 - x0) / static_cast<double>(tasks.size());
    const double n = static_cast<double>(series_.size());
    const double bar_w = std::max(2.0, std::min(34.0, (group_w - 14) / n));
    h += "<svg width=\"" + xy(W) + "\" height=\"" + xy(H) + "\" viewBox=\"0 0 " + xy(W) + " " +
         xy(H) + "\" role=\"img\" aria-label=\"per-benchmark scores\">\n";
    h += y_axis(yt, x0, x1, to_y, "");
    for (std::size_t g = 0; g < tasks.size(); ++g) {
      const double gx = x0 + group_w * static_cast<double>(g);
      const double start = gx + (group_w - bar_w * n) / 2;
      for (const auto& s : series_) {
        const auto v = primary_score(*s.latest, tasks[g]);
        if (!v) continue;
        const double bx = start + bar_w * static_cast<double>(s.index);
        const double top = to_y(std::max(*v, 0.0)), base = to_y(std::min(*v, 0.0));
        h += "<rect x=\"" + xy(bx + 1) + "\" y=\"" + xy(top) + "\" width=\"" + xy(bar_w - 2) +
             "\" height=\"" + xy(std::max(0.5, base - top)) + "\" fill=\"" + colour(s.index) +
             "\"><title>" +
             html_escape(s.name + "\n" + tasks[g] + ": " + format_number(*v) + " (run " +
                         s.latest->run->row.info.name + ")") +
             "</title></rect>";
        if (bar_w >= 22) {
          h += "<text x=\"" + xy(bx + bar_w / 2) + "\" y=\"" + xy(top - 3) +
               "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#24292f\">" +
               html_escape(printf_str("%.1f", *v)) + "</text>";
        }
        h += "\n";
      }
      h += "<text x=\"" + xy(gx + group_w / 2) + "\" y=\"" + xy(y0 + 16) +
           "\" text-anchor=\"middle\" font-size=\"12\">" + html_escape(tasks[g]) + "</text>\n";
    }
    h += "<line x1=\"" + xy(x0) + "\" y1=\"" + xy(to_y(0)) + "\" x2=\"" + xy(x1) + "\" y2=\"" +
         xy(to_y(0)) + "\" stroke=\"#57606a\"/>\n";
    h += "<text transform=\"translate(14," + xy((y0 + y1) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">primary score (x100)</text>\n";
    h += "</svg>\n" + series_legend();
    h += "<p class=\"note\">Each task's primary metric (the paper's column) times its scale.</p>\n";
    return h + "</section>\n";
  }

  std::string latest_section() const {
    std::string h = "<section id=\"latest\">\n<h2>Latest run per series</h2>\n";
    h += "<table>\n<tr><th>Series</th><th>Run</th><th>Finished</th><th>Tasks</th>"
         "<th>Score</th><th>KV B/token/layer</th><th>analytic</th><th>vs original</th>"
         "<th>vs MHA</th><th>Prefill</th><th>Decode</th><th>Latency / sample</th></tr>\n";
    for (const auto& s : series_) {
      const View& v = *s.latest;
      const auto opt = [&](std::optional<double> x, const std::string& unit) {
        return x ? html_escape(format_number(*x) + unit) : std::string("&#8211;");
      };
      std::string finished = v.finished() ? html_escape(v.run->row.finished_at)
                                          : "<span class=\"flag\">unfinished</span>";
      if (s.runs.back() != &v && !s.runs.back()->finished()) {
        finished += "<br/><span class=\"flag\">newer unfinished run: " + run_link(*s.runs.back()) +
                    "</span>";
      }
      std::string tasks;
      for (const auto& t : v.run->row.info.config.value("tasks", json::array())) {
        tasks += (tasks.empty() ? "" : ", ") + json_text(t);
      }
      h += std::string(v.finished() ? "<tr>" : "<tr class=\"unfinished\">") + "<td>" +
           swatch(s.index) + html_escape(s.name) + "</td><td>" + run_link(v) + "</td><td>" +
           finished + "</td><td>" + html_escape(tasks) + "</td><td class=\"n\">" +
           (v.score ? html_escape(printf_str("%.2f", *v.score)) : "&#8211;") +
           "</td><td class=\"n\">" +
           (v.kv ? html_escape(format_bytes(v.kv->bytes_per_token_layer_measured)) : "&#8211;") +
           "</td><td class=\"n\">" +
           (v.kv ? html_escape(format_bytes(v.kv->analytic)) : "&#8211;") +
           "</td><td class=\"n\">" +
           (v.kv ? html_escape(printf_str("%.3f", v.kv->vs_original)) : "&#8211;") +
           "</td><td class=\"n\">" +
           (v.kv ? html_escape(printf_str("%.3f", v.kv->vs_mha_equivalent)) : "&#8211;") +
           "</td><td class=\"n\">" + opt(perf_mean(v, kPrefillTokensPerS), " tok/s") +
           "</td><td class=\"n\">" + opt(perf_mean(v, kDecodeTokensPerS), " tok/s") +
           "</td><td class=\"n\">" + opt(perf_mean(v, kLatencyS), " s") + "</td></tr>\n";
    }
    h += "</table>\n<p class=\"note\">The latest finished run of each series (a newer unfinished "
         "run is named). Score: mean primary metric over the run's tasks (x100). Speed and "
         "latency: mean over the run's tasks.</p>\n";
    // Every metric of the latest runs: one row per (task, metric), one column per series.
    std::set<Key> all;
    for (const auto& s : series_) {
      for (const auto& [k, value] : s.latest->values) all.insert(k);
    }
    std::vector<Key> keys(all.begin(), all.end());
    std::stable_sort(keys.begin(), keys.end(),
                     [&](const Key& a, const Key& b) { return rank(a) < rank(b); });
    h += "<h3>All metrics of the latest runs</h3>\n<table>\n<tr><th>Task</th><th>Metric</th>";
    for (const auto& s : series_) h += "<th>" + swatch(s.index) + html_escape(s.name) + "</th>";
    h += "</tr>\n";
    for (const auto& k : keys) {
      const int dir = direction(k);
      std::optional<double> best;
      int present = 0;
      for (const auto& s : series_) {
        const auto it = s.latest->values.find(k);
        if (it == s.latest->values.end()) continue;
        ++present;
        if (!best || dir * it->second > dir * *best) best = it->second;
      }
      const char* arrow = dir > 0 ? " &#8593;" : dir < 0 ? " &#8595;" : "";
      h += "<tr><td>" + html_escape(k.task) + "</td><td>" + html_escape(k.metric) + arrow + "</td>";
      for (const auto& s : series_) {
        const auto it = s.latest->values.find(k);
        if (it == s.latest->values.end()) {
          h += "<td class=\"n\">&#8211;</td>";
          continue;
        }
        const bool is_best = dir != 0 && present > 1 && it->second == *best;
        h += std::string("<td class=\"n") + (is_best ? " best" : "") + "\">" +
             html_escape(value_text(k, it->second)) + "</td>";
      }
      h += "</tr>\n";
    }
    h += "</table>\n<p class=\"note\">&#8593; higher is better, &#8595; lower is better; bold: "
         "the best of the series.</p>\n";
    return h + "</section>\n";
  }

  std::string trend_chart(const Series& s, const Key& k) const {
    const double W = 250, H = 128, l = 58, r = 8, t = 8, b = 20;
    const double x0 = l, x1 = W - r, y0 = H - b, y1 = t;
    std::vector<std::pair<std::size_t, const View*>> pts;
    double lo = 1e300, hi = -1e300;
    for (std::size_t i = 0; i < s.runs.size(); ++i) {
      const auto it = s.runs[i]->values.find(k);
      if (it == s.runs[i]->values.end()) continue;
      pts.emplace_back(i, s.runs[i]);
      lo = std::min(lo, it->second);
      hi = std::max(hi, it->second);
    }
    const bool bytes =
        k.kv || (find_perf_metric(k.metric) != nullptr && find_perf_metric(k.metric)->unit == "B");
    const ByteUnit unit = bytes ? byte_unit(std::max(std::fabs(lo), std::fabs(hi))) : ByteUnit{};
    const auto yt = nice_ticks(lo / unit.div, hi / unit.div, 4);
    const auto to_y = [&](double v) {
      return y0 - (v / unit.div - yt.front()) / (yt.back() - yt.front()) * (y0 - y1);
    };
    const double slots = static_cast<double>(std::max<std::size_t>(s.runs.size(), 2) - 1);
    const auto to_x = [&](std::size_t i) {
      return s.runs.size() == 1 ? (x0 + x1) / 2
                                : x0 + 8 + (x1 - x0 - 16) * static_cast<double>(i) / slots;
    };
    bool any_reg = false;
    for (const auto& [i, v] : pts) any_reg = any_reg || is_regression(s, k, v->id());
    const double last = pts.back().second->values.at(k);
    std::string h = std::string("<div class=\"tm") + (any_reg ? " reg" : "") +
                    "\"><div class=\"tmh\">" + html_escape(k.task + " / " + k.metric) + ": <b>" +
                    html_escape(value_text(k, last)) + "</b></div>";
    h += "<svg width=\"" + xy(W) + "\" height=\"" + xy(H) + "\" viewBox=\"0 0 " + xy(W) + " " +
         xy(H) + "\">";
    h += y_axis(
        yt, x0, x1, [&](double tick) { return to_y(tick * unit.div); },
        bytes ? std::string(" ") + unit.unit : "");
    // x labels: the run ids (all when few, else first and last).
    for (std::size_t i = 0; i < s.runs.size(); ++i) {
      if (s.runs.size() > 6 && i != 0 && i + 1 != s.runs.size()) continue;
      h += "<text x=\"" + xy(to_x(i)) + "\" y=\"" + xy(y0 + 13) +
           "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#57606a\">#" +
           std::to_string(s.runs[i]->id()) + "</text>";
    }
    if (pts.size() > 1) {
      h += "<polyline fill=\"none\" stroke=\"" + std::string(colour(s.index)) +
           "\" stroke-width=\"1.6\" points=\"";
      for (const auto& [i, v] : pts) h += xy(to_x(i)) + "," + xy(to_y(v->values.at(k))) + " ";
      h += "\"/>";
    }
    for (const auto& [i, v] : pts) {
      const double value = v->values.at(k);
      const bool reg = is_regression(s, k, v->id());
      const std::string fill = !v->finished() ? "#ffffff" : reg ? kRed : colour(s.index);
      h += "<circle cx=\"" + xy(to_x(i)) + "\" cy=\"" + xy(to_y(value)) + "\" r=\"" +
           (reg ? "4.5" : "3") + "\" fill=\"" + fill + "\" stroke=\"" +
           (reg ? kRed : colour(s.index)) + "\" stroke-width=\"" + (reg ? "2" : "1.2") +
           "\"><title>" +
           html_escape("run #" + std::to_string(v->id()) + " " + v->run->row.info.name + ": " +
                       value_text(k, value) + (reg ? " (regression)" : "") +
                       (v->finished() ? "" : " (unfinished)")) +
           "</title></circle>";
    }
    return h + "</svg></div>\n";
  }

  std::string trends_section() const {
    std::string h =
        "<section id=\"trends\">\n<h2>Trends (every metric of every series, runs in "
        "id order)</h2>\n<p class=\"note\">Red points: worse than the previous run of "
        "the series beyond the tolerance. Hollow points: unfinished runs.</p>\n";
    for (const auto& s : series_) {
      h += "<h3>" + swatch(s.index) + html_escape(s.name) + " <span class=\"note\">(" +
           std::to_string(s.runs.size()) + " run(s))</span></h3>\n";
      if (s.keys.empty()) {
        h += "<p class=\"note\">No metrics stored yet.</p>\n";
        continue;
      }
      h += "<div class=\"grid\">\n";
      for (const auto& k : s.keys) h += trend_chart(s, k);
      h += "</div>\n";
    }
    return h + "</section>\n";
  }

  std::string runs_section() const {
    std::string h =
        "<section id=\"runs\">\n<h2>All runs</h2>\n<table>\n<tr><th>#</th><th>Run</th>"
        "<th>Series</th><th>Started</th><th>Finished</th><th>Duration</th>"
        "<th>Device</th><th>Git</th><th>Score</th><th>Config</th></tr>\n";
    for (auto it = views_.rbegin(); it != views_.rend(); ++it) {
      const View& v = *it;
      const auto& row = v.run->row;
      std::string duration;
      if (v.finished()) {
        const auto a = parse_iso(row.started_at), b = parse_iso(row.finished_at);
        if (a && b) duration = format_duration(*b - *a);
      }
      h +=
          std::string(v.finished() ? "<tr>" : "<tr class=\"unfinished\">") + "<td class=\"n\">" +
          std::to_string(v.id()) + "</td><td>" + run_link(v) + "</td><td>" +
          html_escape(v.run->series) + "</td><td>" + html_escape(row.started_at) + "</td><td>" +
          (v.finished() ? html_escape(row.finished_at) : "<span class=\"flag\">unfinished</span>") +
          "</td><td class=\"n\">" + html_escape(duration) + "</td><td>" +
          html_escape(row.info.device) + "</td><td>" + html_escape(row.info.git_sha.substr(0, 10)) +
          "</td><td class=\"n\">" +
          (v.score ? html_escape(printf_str("%.2f", *v.score)) : "&#8211;") +
          "</td><td><a href=\"runs/" + std::to_string(v.id()) + ".json\">runs/" +
          std::to_string(v.id()) + ".json</a></td></tr>\n";
    }
    h += "</table>\n<p class=\"note\">Unfinished: no finished_at (still running, or it "
         "stopped; a rerun of the same name resumes it).</p>\n";
    return h + "</section>\n";
  }

  // The loss of every stored step of a training run against its step (one SVG, id
  // "loss-<run id>"); the last step's loss in the heading.
  std::string loss_chart(const DashboardTrainRun& r, std::size_t index) const {
    const auto& steps = r.steps;
    std::string h = "<div class=\"tm\"><div class=\"tmh lc\">" + html_escape(r.row.info.name);
    if (steps.empty()) return h + ": no steps stored yet</div></div>\n";
    const auto& last = steps.back();
    h += ": loss <b>" + html_escape(printf_str("%.4f", last.loss)) + "</b> at step " +
         std::to_string(last.step) + "</div>";
    const double W = 380, H = 210, l = 52, rm = 12, t = 10, b = 34;
    const double x0 = l, x1 = W - rm, y0 = H - b, y1 = t;
    double lo = 1e300, hi = -1e300;
    for (const auto& s : steps) {
      if (!std::isfinite(s.loss)) continue;
      lo = std::min(lo, s.loss);
      hi = std::max(hi, s.loss);
    }
    if (lo > hi) lo = hi = 0;
    const auto yt = nice_ticks(lo, hi, 5);
    const auto xt = nice_ticks(static_cast<double>(steps.front().step),
                               static_cast<double>(std::max(last.step, steps.front().step + 1)), 5);
    const auto to_y = [&](double v) {
      return y0 - (v - yt.front()) / (yt.back() - yt.front()) * (y0 - y1);
    };
    const auto to_x = [&](double v) {
      return x0 + (v - xt.front()) / (xt.back() - xt.front()) * (x1 - x0);
    };
    h += "<svg class=\"loss-curve\" id=\"loss-" + std::to_string(r.row.id) + "\" width=\"" +
         xy(W) + "\" height=\"" + xy(H) + "\" viewBox=\"0 0 " + xy(W) + " " + xy(H) + "\">";
    h += y_axis(yt, x0, x1, to_y, "");
    const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
    for (double v : xt) {
      h += "<text x=\"" + xy(to_x(v)) + "\" y=\"" + xy(y0 + 13) +
           "\" text-anchor=\"middle\" font-size=\"10\" fill=\"#57606a\">" +
           html_escape(tick_label(v, xstep)) + "</text>";
    }
    h += "<text x=\"" + xy((x0 + x1) / 2) + "\" y=\"" + xy(H - 4) +
         "\" text-anchor=\"middle\" font-size=\"10\" fill=\"#57606a\">step</text>";
    h += "<text x=\"12\" y=\"" + xy((y0 + y1) / 2) + "\" transform=\"rotate(-90 12 " +
         xy((y0 + y1) / 2) +
         ")\" text-anchor=\"middle\" font-size=\"10\" fill=\"#57606a\">loss</text>";
    h += "<polyline fill=\"none\" stroke=\"" + std::string(colour(index)) +
         "\" stroke-width=\"1.6\" points=\"";
    for (const auto& s : steps) {
      if (std::isfinite(s.loss)) {
        h += xy(to_x(static_cast<double>(s.step))) + "," + xy(to_y(s.loss)) + " ";
      }
    }
    h += "\"/>";
    if (std::isfinite(last.loss)) {
      h += "<circle cx=\"" + xy(to_x(static_cast<double>(last.step))) + "\" cy=\"" +
           xy(to_y(last.loss)) + "\" r=\"3\" fill=\"" + colour(index) + "\"><title>" +
           html_escape("step " + std::to_string(last.step) + ": loss " +
                       printf_str("%.6f", last.loss)) +
           "</title></circle>";
    }
    return h + "</svg></div>\n";
  }

  std::string training_section() const {
    std::string h =
        "<section id=\"training\">\n<h2>Training runs (loss per optimizer step)</h2>\n<p "
        "class=\"note\">From <code>mla-bench train</code>: the mean cross entropy over each "
        "step's supervised tokens. A resumed run rewrites the steps after its checkpoint.</p>\n"
        "<div class=\"grid\">\n";
    for (std::size_t i = 0; i < data_.train_runs.size(); ++i) {
      h += loss_chart(data_.train_runs[i], i);
    }
    h += "</div>\n<table>\n<tr><th>#</th><th>Training run</th><th>Steps</th><th>Last loss</th>"
         "<th>Last lr</th><th>Tokens/s</th><th>Started</th><th>Finished</th><th>Device</th>"
         "<th>Git</th></tr>\n";
    for (auto it = data_.train_runs.rbegin(); it != data_.train_runs.rend(); ++it) {
      const auto& row = it->row;
      const bool finished = !row.finished_at.empty();
      double tokens = 0, seconds = 0;
      for (const auto& s : it->steps) {
        tokens += static_cast<double>(s.tokens);
        if (s.tokens_per_s > 0) seconds += static_cast<double>(s.tokens) / s.tokens_per_s;
      }
      const auto* last = it->steps.empty() ? nullptr : &it->steps.back();
      h += std::string(finished ? "<tr>" : "<tr class=\"unfinished\">") + "<td class=\"n\">" +
           std::to_string(row.id) + "</td><td>" + html_escape(row.info.name) +
           "</td><td class=\"n\">" + std::to_string(it->steps.size()) + "</td><td class=\"n\">" +
           (last ? html_escape(printf_str("%.6f", last->loss)) : "&#8211;") +
           "</td><td class=\"n\">" + (last ? html_escape(printf_str("%.3e", last->lr)) : "&#8211;") +
           "</td><td class=\"n\">" +
           (seconds > 0 ? html_escape(printf_str("%.0f", tokens / seconds)) : "&#8211;") +
           "</td><td>" + html_escape(row.started_at) + "</td><td>" +
           (finished ? html_escape(row.finished_at) : "<span class=\"flag\">unfinished</span>") +
           "</td><td>" + html_escape(row.info.device) + "</td><td>" +
           html_escape(row.info.git_sha.substr(0, 10)) + "</td></tr>\n";
    }
    return h + "</table>\n</section>\n";
  }

  const DashboardData& data_;
  const DashboardRenderOptions& options_;
  std::vector<View> views_;  // by run id; Series point into it (never resized after the ctor)
  std::vector<Series> series_;
  std::vector<DashboardRegression> regressions_;
  std::set<std::tuple<std::string, Key, int64_t>> regression_points_;
};

json run_json(const DashboardRun& r) {
  json metrics = json::array();
  for (const auto& m : r.metrics) {
    metrics.push_back({{"task", m.task}, {"metric", m.metric}, {"value", m.value}, {"n", m.n}});
  }
  json kv = json::array();
  for (const auto& k : r.kv_memory) {
    kv.push_back({{"method", k.method},
                  {"bytes_per_token_layer_measured", k.bytes_per_token_layer_measured},
                  {"analytic", k.analytic},
                  {"vs_original", k.vs_original},
                  {"vs_mha_equivalent", k.vs_mha_equivalent}});
  }
  const auto& i = r.row.info;
  return {{"id", r.row.id},
          {"name", i.name},
          {"series", r.series},
          {"started_at", r.row.started_at},
          {"finished_at", r.row.finished_at.empty() ? json(nullptr) : json(r.row.finished_at)},
          {"git_sha", i.git_sha},
          {"torch_version", i.torch_version},
          {"device", i.device},
          {"threads", i.threads},
          {"seed", i.seed},
          {"config", i.config},
          {"metrics", metrics},
          {"kv_memory", kv}};
}

void write_atomic(const fs::path& path, const std::string& content) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    MLAB_CHECK(out.good(), tmp.string(), ": cannot open for writing");
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      MLAB_FAIL(tmp.string(), ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    MLAB_FAIL(path.string(), ": cannot replace the file: ", ec.message());
  }
}

}  // namespace

std::string format_bytes(double bytes) {
  if (!std::isfinite(bytes)) return "n/a";
  const ByteUnit u = byte_unit(std::fabs(bytes));
  const double v = bytes / u.div;
  std::string digits = std::fabs(v) >= 100  ? printf_str("%.1f", v)
                       : std::fabs(v) >= 10 ? printf_str("%.2f", v)
                                            : printf_str("%.3f", v);
  if (u.div == 1 && std::fabs(v - std::round(v)) < 1e-9) digits = printf_str("%.0f", v);
  return trim_zeros(digits) + " " + u.unit;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.05;
    lo -= pad;
    hi += pad;
  }
  target = std::max(target, 2);
  const double range = nice_number(hi - lo, false);
  const double step = nice_number(range / (target - 1), true);
  const double first = std::floor(lo / step + 1e-9) * step;
  const double last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-6; ++i) {
    const double v = first + i * step;
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string series_name(const RunInfo& info) {
  const auto it = info.config.find("series");
  if (it != info.config.end() && it->is_string() && !it->get<std::string>().empty()) {
    return it->get<std::string>();
  }
  std::string name = model_name(info.config) + " / " + methods_name(info.config);
  const std::string dtype = dtype_name(info.config);
  if (!dtype.empty()) name += " / " + dtype;
  return name;
}

int metric_direction(const DashboardRenderOptions& options, const std::string& task,
                     const std::string& metric) {
  if (const auto* p = find_perf_metric(metric)) return p->direction;
  const auto t = options.tasks.find(task);
  if (t == options.tasks.end()) return 0;
  const auto d = t->second.directions.find(metric);
  return d == t->second.directions.end() ? 0 : (d->second > 0) - (d->second < 0);
}

DashboardData DashboardData::load(const ResultsStore& store) {
  DashboardData data;
  data.source = store.path().string();
  for (auto& row : store.runs()) {
    DashboardRun r;
    r.series = series_name(row.info);
    r.metrics = store.metrics(row.id);
    r.kv_memory = store.kv_memory(row.id);
    r.row = std::move(row);
    data.runs.push_back(std::move(r));
  }
  std::sort(data.runs.begin(), data.runs.end(),
            [](const DashboardRun& a, const DashboardRun& b) { return a.row.id < b.row.id; });
  for (auto& row : store.train_runs()) {
    DashboardTrainRun r;
    r.steps = store.train_steps(row.id);
    r.row = std::move(row);
    data.train_runs.push_back(std::move(r));
  }
  return data;
}

DashboardData DashboardData::load(const fs::path& db) {
  MLAB_CHECK(fs::is_regular_file(db), db.string(),
             ": no such results database (give an existing file with --db; the dashboard never "
             "creates one)");
  OpenOptions ro;
  ro.read_only = true;
  return load(ResultsStore::open(db, ro));
}

std::vector<DashboardRegression> find_regressions(const DashboardData& data,
                                                  const DashboardRenderOptions& options) {
  return Page(data, options).regressions();
}

std::string render_dashboard(const DashboardData& data, const DashboardRenderOptions& options) {
  return Page(data, options).render();
}

std::size_t series_count(const DashboardData& data) {
  std::set<std::string> names;
  for (const auto& r : data.runs) names.insert(r.series);
  return names.size();
}

DashboardSummary write_dashboard(const DashboardData& data, const DashboardRenderOptions& options,
                                 const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir / "runs", ec);
  MLAB_CHECK(!ec, (dir / "runs").string(), ": cannot create the directory: ", ec.message());
  for (const auto& r : data.runs) {
    write_atomic(dir / "runs" / (std::to_string(r.row.id) + ".json"),
                 run_json(r).dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  }
  const Page page(data, options);
  DashboardSummary summary;
  summary.index = dir / "index.html";
  write_atomic(summary.index, page.render());
  summary.runs = data.runs.size();
  summary.series = page.series_count();
  summary.regressions = page.regressions().size();
  return summary;
}

}  // namespace mlab::results
