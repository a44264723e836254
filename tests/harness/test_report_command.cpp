// `mla-bench report` and configs/paper/table{1,2}.json: the JSON holds exactly the cells of the
// paper text's Tables 1 and 2 (checked against ../shared/paper/mha2mla-vlm.txt when present), the
// report lists every published number, fills a row from the run mapped to it, and refuses an
// unknown table with exit 2.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace {

using Catch::Contains;
using nlohmann::json;

std::filesystem::path source_dir() { return mlab::test::data_dir() / ".." / ".."; }

json load_table(int n) {
  std::ifstream in(source_dir() / "configs" / "paper" / ("table" + std::to_string(n) + ".json"));
  REQUIRE(in.good());
  return json::parse(in);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \r") - b + 1);
}

// The report line of a row ("| <id> |" in md, "<id>," in csv).
std::string line_of(const std::string& output, const std::string& start) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(start, 0) == 0) return line;
  }
  return "";
}

// The paper's number as printed (the drop " _{-0.29}" dropped), for the measured cells.
std::vector<std::string> published_numbers(const json& row) {
  std::vector<std::string> out;
  for (const auto& c : row.at("cells")) {
    if (!c.at("value").is_number() || !c.at("printed").is_string()) continue;
    const std::string p = c.at("printed");
    if (c.at("column") == "d_kv") continue;
    out.push_back(p.substr(0, p.find(' ')));
  }
  return out;
}

}  // namespace

TEST_CASE("paper tables: the JSON holds exactly the cells of the paper text", "[harness][report]") {
  const auto paper = source_dir() / ".." / "shared" / "paper" / "mha2mla-vlm.txt";
  if (!std::filesystem::exists(paper)) {
    WARN("skipped: " << paper << " not present (the shared paper text is not in this clone)");
    return;
  }
  const std::string text = read_file(paper);
  for (int n : {1, 2}) {
    INFO("table " << n);
    const auto t = load_table(n);
    auto begin = text.find(t.at("text_begin").get<std::string>());
    REQUIRE(begin != std::string::npos);
    begin = text.find('\n', begin) + 1;  // past the header line
    const auto end = text.find(t.at("text_end").get<std::string>(), begin);
    REQUIRE(end != std::string::npos);
    // The block's non-empty cells (section lines such as <i>Origin</i> aside), in order.
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = begin; i <= end; ++i) {
      if (i == end || text[i] == '\t' || text[i] == '\n') {
        cell = trim(cell);
        if (!cell.empty() && cell.rfind("<i>", 0) != 0) cells.push_back(cell);
        cell.clear();
      } else {
        cell += text[i];
      }
    }
    std::vector<std::string> printed;
    for (const auto& row : t.at("rows")) {
      for (const auto& c : row.at("cells")) {
        if (!c.at("printed").is_string()) continue;
        printed.push_back(c.at("printed"));
        // A number is the number printed.
        const auto& v = c.at("value");
        if (v.is_number() && c.at("column") != "d_kv") {
          CHECK(std::stod(c.at("printed").get<std::string>()) == Approx(v.get<double>()));
        }
        if (c.at("printed") == "-") CHECK(v.is_null());
      }
    }
    CHECK(printed == cells);
  }
}

TEST_CASE("report: every published number, no run without a database", "[harness][report]") {
  for (int n : {1, 2}) {
    const auto t = load_table(n);
    for (const std::string format : {"md", "csv"}) {
      INFO("table " << n << " " << format);
      const auto r =
          mlab::test::run_mla_bench("report --table " + std::to_string(n) + " --format " + format);
      INFO(r.out << r.err);
      REQUIRE(r.code == 0);
      CHECK_THAT(r.out, Contains("no run"));
      for (const auto& row : t.at("rows")) {
        const std::string id = row.at("id");
        const auto line = line_of(r.out, format == "md" ? "| " + id + " |" : id + ",");
        INFO(id);
        REQUIRE(!line.empty());
        size_t at = 0;  // the numbers appear in the paper's order
        for (const auto& number : published_numbers(row)) {
          INFO(number);
          const auto found = line.find(number, at);
          CHECK(found != std::string::npos);
          if (found != std::string::npos) at = found + number.size();
        }
        // KV Mem. and Tokens are shown whole on every row they span.
        for (const auto& c : row.at("cells")) {
          if (c.at("value").is_string())
            CHECK_THAT(line, Contains(c.at("value").get<std::string>()));
        }
      }
    }
  }
  // A database path that does not exist is no error.
  const auto r = mlab::test::run_mla_bench("report --table 1 --db /nonexistent/results.sqlite");
  CHECK(r.code == 0);
  CHECK_THAT(line_of(r.out, "| llava15_7b/original |"), Contains("63.89 / no run"));
}

TEST_CASE("report: a run mapped to a row shows its values and the difference",
          "[harness][report]") {
  const auto db = (mlab::test::scratch_dir("report") / "r.sqlite").string();
  std::filesystem::remove(db);
  {
    auto store = mlab::results::ResultsStore::open(db);
    mlab::results::RunInfo info;
    info.name = "next-dkv64";
    info.config = {{"paper_row", "table1/llava_next_8b/gqa2mla/dkv64"}};
    const auto run = store.begin_run(info);
    store.set_metric(run, "ai2d", "exact_match", 0.70, 10);   // paper 68.20
    store.set_metric(run, "gqa", "exact_match", 0.6445, 10);  // paper 64.45
    store.finish_run(run);
    info.name = "table2/origin/bf16";  // mapped by its name
    info.config = json::object();
    const auto all = store.begin_run(info);
    for (const auto& [task, metric] :
         std::vector<std::pair<std::string, std::string>>{{"ai2d", "exact_match"},
                                                          {"gqa", "exact_match"},
                                                          {"pope", "pope_accuracy"},
                                                          {"seedbench", "seed_image"},
                                                          {"realworldqa", "exact_match"},
                                                          {"mmbench_en_dev", "gpt_eval_score"},
                                                          {"chartqa", "relaxed_overall"},
                                                          {"docvqa_val", "anls"}}) {
      store.set_metric(all, task, metric, 0.7, 10);
    }
    store.finish_run(all);
  }
  auto r = mlab::test::run_mla_bench("report --table 1 --db " + db);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto row = line_of(r.out, "| llava_next_8b/gqa2mla/dkv64 |");
  CHECK_THAT(row, Contains("68.20 / 70.00 (+1.80)") && Contains("64.45 / 64.45 (+0.00)") &&
                      Contains("86.32 / not measured") && Contains("68.75 (-2.03) / incomplete"));
  CHECK_THAT(line_of(r.out, "| llava_next_8b/gqa2mla/dkv32 |"), Contains("66.72 (-4.06) / no run"));
  r = mlab::test::run_mla_bench("report --table 2 --format csv --db " + db);
  REQUIRE(r.code == 0);
  CHECK_THAT(line_of(r.out, "origin/bf16,"), Contains(",70.78,70.00,-0.78"));
  CHECK_THAT(line_of(r.out, "pruning/h2o/81.25,"), Contains(",61.43,no run,"));
}

TEST_CASE("report: an unknown table or format exits 2 and says which exist", "[harness][report]") {
  auto r = mlab::test::run_mla_bench("report --table 5");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("unknown --table '5'") && Contains("1 and 2"));
  r = mlab::test::run_mla_bench("report --table 1 --format html");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("unknown --format 'html'"));
}
