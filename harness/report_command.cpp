// `mla-bench report`: the paper's Tables 1 and 2 (configs/paper/table{1,2}.json, every number as
// published) side by side with this repository's runs. A run provides the numbers of one row when
// its config has "paper_row": "table<N>/<row id>" (or, failing that, when the run is named
// "table<N>/<row id>"); a measured cell then shows the paper's number, the run's value (the
// metric times the column's scale) and the difference (run - paper). Avg. is the mean of the
// row's benchmarks (those the paper does not print as "-"), shown only when the run has them all.
// Without --db, or when the file does not exist, every measured cell says "no run".
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "harness/commands.hpp"
#include "results/results_store.hpp"

namespace mlab::harness {
namespace {

using nlohmann::json;

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

struct Measured {
  std::string paper;  // as printed
  std::string run;    // the run's value, "no run", or "" (paper "-" and no run)
  std::string diff;   // run - paper, or ""
};

const json* find_cell(const json& row, const std::string& column) {
  for (const auto& c : row.at("cells")) {
    if (c.at("column") == column) return &c;
  }
  return nullptr;
}

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

int run_report(const ReportOptions& o, std::ostream& out) {
  if (o.table != "1" && o.table != "2") {
    throw UsageError("mla-bench report: unknown --table '" + o.table +
                     "' (the paper tables in configs/paper are 1 and 2)");
  }
  if (o.format != "md" && o.format != "csv") {
    throw UsageError("mla-bench report: unknown --format '" + o.format + "' (md or csv)");
  }
  const int table = std::stoi(o.table);
  const auto path = o.tables_dir / ("table" + o.table + ".json");
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot read the paper table");
  const json spec = json::parse(in);

  std::map<std::string, Benchmark> benchmarks;
  auto add_benchmark = [&](const json& b) {
    if (b.contains("task")) {
      benchmarks[b.at("name")] = {b.at("task"), b.at("metric"), b.value("scale", 1.0)};
    }
  };
  for (const auto& c : spec.at("columns")) add_benchmark(c);
  for (const auto& b : spec.value("benchmarks", json::array())) add_benchmark(b);

  const auto runs = runs_by_row(o.db, table);
  const bool have_db = !o.db.empty() && std::filesystem::exists(o.db);

  // One line per row: the row id, the plain columns, then (paper, run, diff) per measured column.
  std::vector<std::string> plain_cols, measured_cols;
  for (const auto& c : spec.at("columns")) {
    (c.value("measured", false) ? measured_cols : plain_cols).push_back(c.at("name"));
  }

  const bool md = o.format == "md";
  if (md) {
    out << "## " << spec.at("caption").get<std::string>() << "\n\n";
    out << "Paper numbers as published (configs/paper/table" << table << ".json); each measured "
        << "cell: paper / run (run - paper). A run fills row R when its config has \"paper_row\": "
        << "\"table" << table << "/R\" (or its name is \"table" << table
        << "/R\"). Database: " << (have_db ? o.db.string() : std::string("none")) << ".\n\n";
    out << "| row |";
    for (const auto& c : plain_cols) out << " " << c << " |";
    for (const auto& c : measured_cols) out << " " << c << " |";
    out << "\n|---|";
    for (size_t i = 0; i < plain_cols.size() + measured_cols.size(); ++i) out << "---|";
    out << "\n";
  } else {
    out << "row";
    for (const auto& c : plain_cols) out << "," << csv_quote(c);
    for (const auto& c : measured_cols) {
      out << "," << csv_quote(c) << "," << csv_quote(c + " run") << "," << csv_quote(c + " diff");
    }
    out << "\n";
  }

  for (const auto& row : spec.at("rows")) {
    const std::string id = row.at("id");
    const auto run_it = runs.find(id);
    const RunMetrics* metrics = run_it == runs.end() ? nullptr : &run_it->second;
    auto run_value = [&](const std::string& name) -> std::optional<double> {
      const auto b = benchmarks.find(name);
      if (metrics == nullptr || b == benchmarks.end()) return std::nullopt;
      const auto m = metrics->find({b->second.task, b->second.metric});
      if (m == metrics->end()) return std::nullopt;
      return m->second * b->second.scale;
    };

    std::vector<std::string> plain;
    for (const auto& c : plain_cols) {
      if (c == "Model") {
        std::string label = row.at("model");
        const std::string variant = row.value("variant", "original");
        if (variant != "original") label += " " + variant;
        plain.push_back(label);
        continue;
      }
      const json* cell = find_cell(row, c);
      plain.push_back(cell == nullptr ? "" : plain_text(*cell));
    }

    std::vector<Measured> measured;
    for (const auto& c : spec.at("columns")) {
      if (!c.value("measured", false)) continue;
      const std::string name = c.at("name");
      const json* cell = find_cell(row, name);
      Measured m;
      m.paper = cell == nullptr ? "" : paper_text(*cell);
      std::optional<double> value;
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
        }
      } else {
        value = run_value(name);
      }
      const bool paper_number = cell != nullptr && cell->at("value").is_number();
      if (value) {
        m.run = fixed2(*value);
        if (paper_number) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%+.2f", *value - cell->at("value").get<double>());
          m.diff = buf;
        }
      } else if (m.run.empty()) {
        m.run = metrics == nullptr ? "no run" : "not measured";
      }
      measured.push_back(m);
    }

    if (md) {
      out << "| " << id << " |";
      for (const auto& p : plain) out << " " << p << " |";
      for (const auto& m : measured) {
        out << " " << m.paper;
        if (!m.run.empty()) out << " / " << m.run;
        if (!m.diff.empty()) out << " (" << m.diff << ")";
        out << " |";
      }
      out << "\n";
    } else {
      out << csv_quote(id);
      for (const auto& p : plain) out << "," << csv_quote(p);
      for (const auto& m : measured) {
        out << "," << csv_quote(m.paper) << "," << csv_quote(m.run) << "," << csv_quote(m.diff);
      }
      out << "\n";
    }
  }
  return 0;
}

}  // namespace mlab::harness
