// `mla-bench report`: the paper's Tables 1-4 (configs/paper/table{1,2,3,4}.json, every number as
// published) side by side with this repository's runs. A run provides the numbers of one row when
// its config has "paper_row": "table<N>/<row id>" (or, failing that, when the run is named
// "table<N>/<row id>"); a measured cell then shows the paper's number, the run's value (the
// metric times the column's scale) and the difference (run - paper). Avg. is the mean of the
// row's benchmarks (those the paper does not print as "-"), shown only when the run has them all.
// Without --db every measured cell says "no run"; a --db that does not exist is an error (exit 1).
// Everything table-specific lives in the JSON: the columns (plain or measured, a benchmark's task
// and metric, the benchmarks an average covers), the rows and their cells, caption and notes.
// Formats: md and csv (one block per table), html (one complete page, a <section> per table).
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "harness/commands.hpp"
#include "results/results_store.hpp"

namespace mlab::harness {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 4> kTables = {"1", "2", "3", "4"};
constexpr std::array<std::string_view, 3> kFormats = {"md", "csv", "html"};

struct Benchmark {
  std::string task, metric;
  double scale = 1;
};

// The run's metrics keyed (task, metric), for every row a run maps to.
using RunMetrics = std::map<std::pair<std::string, std::string>, double>;

std::map<std::string, RunMetrics> runs_by_row(const std::filesystem::path& db, int table) {
  std::map<std::string, RunMetrics> out;
  if (db.empty() || !std::filesystem::exists(db)) return out;
  results::OpenOptions ro;
  ro.read_only = true;
  const auto store = results::ResultsStore::open(db, ro);
  const std::string prefix = "table" + std::to_string(table) + "/";
  std::map<std::string, int64_t> by_config, by_name;
  for (const auto& r : store.runs()) {
    const auto it = r.info.config.find("paper_row");
    if (it != r.info.config.end() && it->is_string()) {
      const auto key = it->get<std::string>();
      if (key.rfind(prefix, 0) == 0) by_config[key.substr(prefix.size())] = r.id;
    }
    if (r.info.name.rfind(prefix, 0) == 0) by_name[r.info.name.substr(prefix.size())] = r.id;
  }
  for (const auto& [row, id] : by_name) by_config.emplace(row, id);  // the config key wins
  for (const auto& [row, id] : by_config) {
    auto& metrics = out[row];
    for (const auto& m : store.metrics(id)) metrics[{m.task, m.metric}] = m.value;
    // The run's measured KV memory as the paper's "KV Mem." change, in percent.
    const auto kv = store.kv_memory(id);
    if (!kv.empty()) {
      metrics[{"kv_memory", "vs_original"}] = 100 * (kv.front().vs_original - 1);
      metrics[{"kv_memory", "vs_mha_equivalent"}] = 100 * (kv.front().vs_mha_equivalent - 1);
    }
  }
  return out;
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A non-measured cell: the whole (possibly multi-row) cell.
std::string plain_text(const json& cell) {
  const auto& v = cell.at("value");
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fixed2(v.get<double>());
  const auto& p = cell.at("printed");
  return p.is_string() ? p.get<std::string>() : "";
}

// The paper's number exactly as printed ("63.84 _{-0.29}" -> "63.84 (-0.29)"); "-" as printed;
// "n/a" where the paper text lost the cell.
std::string paper_text(const json& cell) {
  const auto& p = cell.at("printed");
  if (!p.is_string()) return cell.value("pdf", "n/a");
  std::string s = p.get<std::string>();
  const auto sub = s.find(" _{");
  if (sub != std::string::npos && s.back() == '}') {
    s = s.substr(0, sub) + " (" + s.substr(sub + 3, s.size() - sub - 4) + ")";
  }
  return s;
}

// What a measured cell holds beside the paper's number.
enum class RunState {
  kValue,        // the run's value (and the difference when the paper prints a number)
  kNoRun,        // no run maps to the row
  kNotMeasured,  // the run lacks the metric
  kIncomplete,   // the run lacks some of an average's benchmarks
};

struct Measured {
  std::string paper;  // as printed
  std::string run;    // the run's value, "no run", "not measured" or "incomplete (n/m)"
  std::string diff;   // run - paper, or ""
  RunState state = RunState::kNoRun;
};

struct ReportRow {
  std::string id;
  std::vector<std::string> plain;  // one per plain column
  std::vector<Measured> measured;  // one per measured column
};

// One paper table filled from the database, ready for any output format.
struct Report {
  int table = 0;
  std::string caption;
  std::vector<std::string> notes;
  std::vector<std::string> plain_cols, measured_cols;
  std::vector<ReportRow> rows;
};

const json* find_cell(const json& row, const std::string& column) {
  for (const auto& c : row.at("cells")) {
    if (c.at("column") == column) return &c;
  }
  return nullptr;
}

Report build_report(const json& spec, int table, const std::filesystem::path& db) {
  Report report;
  report.table = table;
  report.caption = spec.at("caption").get<std::string>();
  for (const auto& n : spec.value("notes", json::array())) report.notes.push_back(n);

  std::map<std::string, Benchmark> benchmarks;
  auto add_benchmark = [&](const json& b) {
    if (b.contains("task")) {
      benchmarks[b.at("name")] = {b.at("task"), b.at("metric"), b.value("scale", 1.0)};
    }
  };
  for (const auto& c : spec.at("columns")) add_benchmark(c);
  for (const auto& b : spec.value("benchmarks", json::array())) add_benchmark(b);

  const auto runs = runs_by_row(db, table);

  for (const auto& c : spec.at("columns")) {
    (c.value("measured", false) ? report.measured_cols : report.plain_cols).push_back(c.at("name"));
  }

  for (const auto& row : spec.at("rows")) {
    ReportRow out;
    out.id = row.at("id");
    const auto run_it = runs.find(out.id);
    const RunMetrics* metrics = run_it == runs.end() ? nullptr : &run_it->second;
    auto run_value = [&](const std::string& name) -> std::optional<double> {
      const auto b = benchmarks.find(name);
      if (metrics == nullptr || b == benchmarks.end()) return std::nullopt;
      const auto m = metrics->find({b->second.task, b->second.metric});
      if (m == metrics->end()) return std::nullopt;
      return m->second * b->second.scale;
    };

    for (const auto& c : report.plain_cols) {
      if (c == "Model") {  // the row's model and variant: "LLaVA-NeXT GQA2MLA w/o Two Stage"
        std::string label = row.at("model");
        const std::string variant = row.value("variant", "original");
        if (variant != "original") label += " " + variant;
        out.plain.push_back(label);
        continue;
      }
      const json* cell = find_cell(row, c);
      out.plain.push_back(cell == nullptr ? "" : plain_text(*cell));
    }

    for (const auto& c : spec.at("columns")) {
      if (!c.value("measured", false)) continue;
      const std::string name = c.at("name");
      const json* cell = find_cell(row, name);
      Measured m;
      m.paper = cell == nullptr ? "" : paper_text(*cell);
      std::optional<double> value;
      if (c.contains("kv_memory")) {
        m.paper = cell == nullptr ? "" : plain_text(*cell);  // the whole (multi-row) cell
        // KV Mem.: the run's measured change vs the original or the MHA-equivalent cache
        // (kv_memory rows of `mla-bench eval`), beside the paper's printed percentage.
        if (metrics != nullptr) {
          const auto it = metrics->find({"kv_memory", c.at("kv_memory").get<std::string>()});
          if (it != metrics->end()) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.2f%%", it->second);
            m.run = buf;
            m.state = RunState::kValue;
            if (cell != nullptr && cell->at("value").is_string()) {
              const std::string printed = cell->at("value").get<std::string>();
              char* end = nullptr;
              double paper = std::strtod(printed.c_str(), &end);
              if (end != printed.c_str() && *end == '%') {
                if (c.value("paper_negate", false)) paper = -paper;  // printed without its minus
                std::snprintf(buf, sizeof buf, "%+.2f", it->second - paper);
                m.diff = buf;
              }
            }
          }
        }
        if (m.run.empty()) {
          m.run = metrics == nullptr ? "no run" : "not measured";
          m.state = metrics == nullptr ? RunState::kNoRun : RunState::kNotMeasured;
        }
        out.measured.push_back(m);
        continue;
      }
      if (c.contains("average_of")) {
        // The benchmarks this row averages: those the paper does not print as "-".
        double sum = 0;
        int n = 0, missing = 0;
        for (const auto& b : c.at("average_of")) {
          const json* bc = find_cell(row, b);
          if (bc != nullptr && (bc->at("printed") == "-" || bc->value("pdf", "") == "-")) continue;
          if (const auto v = run_value(b)) {
            sum += *v;
            ++n;
          } else {
            ++missing;
          }
        }
        if (missing == 0 && n > 0) value = sum / n;
        if (metrics != nullptr && missing > 0 && n > 0) {
          m.run = "incomplete (" + std::to_string(n) + "/" + std::to_string(n + missing) + ")";
          m.state = RunState::kIncomplete;
        }
      } else {
        value = run_value(name);
      }
      const bool paper_number = cell != nullptr && cell->at("value").is_number();
      if (value) {
        m.run = fixed2(*value);
        m.state = RunState::kValue;
        if (paper_number) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%+.2f", *value - cell->at("value").get<double>());
          m.diff = buf;
        }
      } else if (m.run.empty()) {
        m.run = metrics == nullptr ? "no run" : "not measured";
        m.state = metrics == nullptr ? RunState::kNoRun : RunState::kNotMeasured;
      }
      out.measured.push_back(m);
    }
    report.rows.push_back(std::move(out));
  }
  return report;
}

std::string database_text(const ReportOptions& o) {
  const bool have_db = !o.db.empty() && std::filesystem::exists(o.db);
  return have_db ? o.db.string() : std::string("none");
}

// --- md ---------------------------------------------------------------------------------------

void write_md(const Report& r, const ReportOptions& o, std::ostream& out) {
  out << "## " << r.caption << "\n\n";
  out << "Paper numbers as published (configs/paper/table" << r.table << ".json); each measured "
      << "cell: paper / run (run - paper). A run fills row R when its config has \"paper_row\": "
      << "\"table" << r.table << "/R\" (or its name is \"table" << r.table
      << "/R\"). Database: " << database_text(o) << ".\n\n";
  out << "| row |";
  for (const auto& c : r.plain_cols) out << " " << c << " |";
  for (const auto& c : r.measured_cols) out << " " << c << " |";
  out << "\n|---|";
  for (size_t i = 0; i < r.plain_cols.size() + r.measured_cols.size(); ++i) out << "---|";
  out << "\n";
  for (const auto& row : r.rows) {
    out << "| " << row.id << " |";
    for (const auto& p : row.plain) out << " " << p << " |";
    for (const auto& m : row.measured) {
      out << " " << m.paper;
      if (!m.run.empty()) out << " / " << m.run;
      if (!m.diff.empty()) out << " (" << m.diff << ")";
      out << " |";
    }
    out << "\n";
  }
}

// --- csv --------------------------------------------------------------------------------------

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_csv(const Report& r, std::ostream& out) {
  out << "row";
  for (const auto& c : r.plain_cols) out << "," << csv_quote(c);
  for (const auto& c : r.measured_cols) {
    out << "," << csv_quote(c) << "," << csv_quote(c + " run") << "," << csv_quote(c + " diff");
  }
  out << "\n";
  for (const auto& row : r.rows) {
    out << csv_quote(row.id);
    for (const auto& p : row.plain) out << "," << csv_quote(p);
    for (const auto& m : row.measured) {
      out << "," << csv_quote(m.paper) << "," << csv_quote(m.run) << "," << csv_quote(m.diff);
    }
    out << "\n";
  }
}

// --- html -------------------------------------------------------------------------------------

constexpr std::string_view kHtmlStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222}\n"
    "section{margin-bottom:2.5em}\n"
    "table{border-collapse:collapse;font-size:14px}\n"
    "caption{caption-side:top;text-align:left;padding:.4em 0;max-width:60em}\n"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\n"
    "th{background:#f2f2f2}\n"
    "td.id{font-family:ui-monospace,monospace;font-size:12px}\n"
    "td.m{white-space:nowrap}\n"
    "td.m span{display:block}\n"
    "span.paper{font-weight:600}\n"
    "span.diff.up{color:#17692b}\n"
    "span.diff.down{color:#b3261e}\n"
    "td.norun{color:#999;background:#f6f6f6}\n"
    "td.partial span.run{color:#8a5a00;font-style:italic}\n"
    "p.meta,ul.notes{color:#555;font-size:12px;max-width:60em}\n";

// One self-contained <section> per table: caption, a header row, one <tr> per paper row (each
// measured <td> holds the paper's number, the run's value and the difference), then the notes.
void write_html_section(const Report& r, std::ostream& out) {
  out << "<section id=\"table" << r.table << "\">\n";
  out << "<h2>Table " << r.table << "</h2>\n";
  out << "<table>\n<caption>" << html_escape(r.caption) << "</caption>\n";
  out << "<thead><tr><th>row</th>";
  for (const auto& c : r.plain_cols) out << "<th>" << html_escape(c) << "</th>";
  for (const auto& c : r.measured_cols) {
    out << "<th>" << html_escape(c) << "<br>paper / run / diff</th>";
  }
  out << "</tr></thead>\n<tbody>\n";
  for (const auto& row : r.rows) {
    out << "<tr><td class=\"id\">" << html_escape(row.id) << "</td>";
    for (const auto& p : row.plain) out << "<td>" << html_escape(p) << "</td>";
    for (const auto& m : row.measured) {
      const char* cls = m.state == RunState::kValue   ? "m run"
                        : m.state == RunState::kNoRun ? "m norun"
                                                      : "m partial";
      out << "<td class=\"" << cls << "\"><span class=\"paper\">" << html_escape(m.paper)
          << "</span><span class=\"run\">" << html_escape(m.run) << "</span>";
      if (!m.diff.empty()) {
        out << "<span class=\"diff " << (m.diff[0] == '-' ? "down" : "up") << "\">"
            << html_escape(m.diff) << "</span>";
      }
      out << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table>\n";
  if (!r.notes.empty()) {
    out << "<ul class=\"notes\">\n";
    for (const auto& n : r.notes) out << "<li>" << html_escape(n) << "</li>\n";
    out << "</ul>\n";
  }
  out << "</section>\n";
}

void write_html_page(const std::vector<Report>& reports, const ReportOptions& o,
                     std::ostream& out) {
  std::string title = "MLA-Bench: the paper's Table";
  if (reports.size() == 1) {
    title += " " + std::to_string(reports.front().table);
  } else {
    title += "s 1-" + std::to_string(reports.back().table);
  }
  out << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out << "<title>" << html_escape(title) << "</title>\n";
  out << "<style>\n" << kHtmlStyle << "</style>\n</head>\n<body>\n";
  out << "<h1>" << html_escape(title) << "</h1>\n";
  out << "<p class=\"meta\">"
      << html_escape(
             "Paper numbers as published (configs/paper/table<N>.json); each measured "
             "cell: paper, run, run - paper. A run fills row R of table N when its config "
             "has \"paper_row\": \"table<N>/R\" (or its name is \"table<N>/R\"). "
             "Database: " +
             database_text(o) + ".")
      << "</p>\n";
  for (const auto& r : reports) write_html_section(r, out);
  out << "</body>\n</html>\n";
}

template <size_t N>
std::string accepted(const std::array<std::string_view, N>& names, std::string_view extra = {}) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + std::string(n);
  if (!extra.empty()) s += ", " + std::string(extra);
  return s;
}

}  // namespace

int run_report(const ReportOptions& o, std::ostream& out) {
  std::vector<int> tables;
  if (o.table == "all") {
    for (const auto& t : kTables) tables.push_back(std::stoi(std::string(t)));
  } else {
    for (const auto& t : kTables) {
      if (o.table == t) tables.push_back(std::stoi(o.table));
    }
  }
  if (tables.empty()) {
    throw UsageError("mla-bench report: unknown --table '" + o.table +
                     "' (accepted: " + accepted(kTables, "all") + ")");
  }
  bool known_format = false;
  for (const auto& f : kFormats) known_format = known_format || o.format == f;
  if (!known_format) {
    throw UsageError("mla-bench report: unknown --format '" + o.format +
                     "' (accepted: " + accepted(kFormats) + ")");
  }

  // F11 D14: a --db that does not exist is a mistake (a typo), not "paper numbers only"; it is
  // never created (the store would open it read-only anyway).
  MLAB_CHECK(o.db.empty() || std::filesystem::exists(o.db), o.db.string(),
             ": no such results database (--db); leave --db out for the paper numbers only");

  std::vector<Report> reports;
  for (const int table : tables) {
    const auto path = o.tables_dir / ("table" + std::to_string(table) + ".json");
    std::ifstream in(path);
    MLAB_CHECK(in.good(), path.string(), ": cannot read the paper table");
    try {
      reports.push_back(build_report(json::parse(in), table, o.db));
    } catch (const json::exception& e) {
      MLAB_FAIL(path.string(), ": not a paper table (", e.what(), ")");
    }
  }

  if (o.format == "html") {
    write_html_page(reports, o, out);
    return 0;
  }
  for (size_t i = 0; i < reports.size(); ++i) {
    if (i > 0) out << "\n";  // --table all: the tables one after another, a blank line between
    if (o.format == "md") {
      write_md(reports[i], o, out);
    } else {
      write_csv(reports[i], out);
    }
  }
  return 0;
}

}  // namespace mlab::harness
