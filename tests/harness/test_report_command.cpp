// `mla-bench report` and configs/paper/table{1,2,3,4}.json: the JSON holds exactly the cells of
// the paper text's Tables 1-4 (checked against ../shared/paper/mha2mla-vlm.txt when present), the
// report lists every published number in md, csv and html (a well-formed, escaped page), fills a
// row from the run mapped to it, prints all four tables with --table all, and refuses an unknown
// table or format with exit 2.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
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

std::string html_escape(const std::string& s) {
  std::string e;
  for (char c : s) {
    if (c == '&')
      e += "&amp;";
    else if (c == '<')
      e += "&lt;";
    else if (c == '>')
      e += "&gt;";
    else if (c == '"')
      e += "&quot;";
    else if (c == '\'')
      e += "&#39;";
    else
      e += c;
  }
  return e;
}

// "" when `html` is well formed: every element closed in order (void elements aside, <style>
// content skipped), attribute quotes balanced, and text free of raw '<', '>' and of '&' that does
// not start an entity; else the first problem found.
std::string html_problem(const std::string& html) {
  static const std::set<std::string> kVoid = {"br", "meta", "hr", "img", "link"};
  std::vector<std::string> open;
  for (size_t i = 0; i < html.size();) {
    const char c = html[i];
    if (c == '<') {
      const auto close = html.find('>', i);
      if (close == std::string::npos) return "unterminated tag at " + std::to_string(i);
      const std::string tag = html.substr(i + 1, close - i - 1);
      i = close + 1;
      if (tag.rfind("!doctype", 0) == 0) continue;
      if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "odd quotes in <" + tag + ">";
      const bool end = !tag.empty() && tag[0] == '/';
      const std::string rest = tag.substr(end ? 1 : 0);
      const std::string name = rest.substr(0, rest.find_first_of(" \t\n/"));
      if (name.empty()) return "empty tag at " + std::to_string(i);
      if (end) {
        if (open.empty() || open.back() != name) {
          return "</" + name + "> closes <" + (open.empty() ? std::string() : open.back()) + ">";
        }
        open.pop_back();
      } else if (kVoid.count(name) == 0) {
        open.push_back(name);
        if (name == "style") i = html.find("</style>", i);  // CSS, not text
        if (i == std::string::npos) return "unclosed <style>";
      }
    } else if (c == '>') {
      return "raw '>' in text at " + std::to_string(i);
    } else if (c == '&') {
      const auto semi = html.find(';', i);
      const std::string entity = html.substr(i + 1, semi == std::string::npos ? 0 : semi - i - 1);
      const bool ok =
          !entity.empty() && entity.size() <= 8 &&
          (std::all_of(entity.begin(), entity.end(), ::isalpha) ||
           (entity[0] == '#' && std::all_of(entity.begin() + 1, entity.end(), ::isdigit)));
      if (!ok) return "stray '&' at " + std::to_string(i);
      i = semi + 1;
    } else {
      ++i;
    }
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
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
  for (int n : {1, 2, 3, 4}) {
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
  for (int n : {1, 2, 3, 4}) {
    const auto t = load_table(n);
    for (const std::string format : {"md", "csv", "html"}) {
      INFO("table " << n << " " << format);
      const auto r =
          mlab::test::run_mla_bench("report --table " + std::to_string(n) + " --format " + format);
      INFO(r.out << r.err);
      REQUIRE(r.code == 0);
      CHECK_THAT(r.out, Contains("no run"));
      const bool html = format == "html";
      for (const auto& row : t.at("rows")) {
        const std::string id = row.at("id");
        const auto line = line_of(r.out, format == "md" ? "| " + id + " |"
                                         : html         ? "<tr><td class=\"id\">" + id + "</td>"
                                                        : id + ",");
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
          if (c.at("value").is_string()) {
            const std::string v = c.at("value");
            CHECK_THAT(line, Contains(html ? html_escape(v) : v));
          }
        }
        if (html) CHECK_THAT(line, Contains("<td class=\"m norun\">"));
      }
    }
  }
  // A database path that does not exist is a mistake (F11 D14: exit 1 naming it); without --db
  // every measured cell says "no run".
  auto r = mlab::test::run_mla_bench("report --table 1 --db /nonexistent/results.sqlite");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("/nonexistent/results.sqlite"));
  r = mlab::test::run_mla_bench("report --table 1");
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

TEST_CASE("paper tables 3 and 4: the rows runs map to", "[harness][report]") {
  // Table 3: four designs (the full method, then each ablation) at d_kv 32 and 64, as printed.
  const auto t3 = load_table(3);
  std::vector<std::string> ids;
  std::vector<double> avgs;
  for (const auto& row : t3.at("rows")) {
    ids.push_back(row.at("id"));
    const auto& cells = row.at("cells");
    const auto avg = std::find_if(cells.begin(), cells.end(),
                                  [](const json& c) { return c.at("column") == "Avg"; });
    REQUIRE(avg != cells.end());
    avgs.push_back(avg->at("value"));
    const bool d32 = row.at("d_kv") == 32;
    for (const auto& c : cells) {
      if (c.at("column") == "KV Mem.") CHECK(c.at("value") == (d32 ? "93.75%" : "90.63%"));
      if (c.at("column") == "d_kv") CHECK(c.at("value") == row.at("d_kv"));
    }
  }
  CHECK(ids == std::vector<std::string>{"gqa2mla/32", "gqa2mla/64", "wo_modality_decoupled/32",
                                        "wo_modality_decoupled/64", "wo_md_svd_init/32",
                                        "wo_md_svd_init/64", "wo_two_stage/32", "wo_two_stage/64"});
  CHECK(avgs == std::vector<double>{67.56, 69.70, 67.14, 69.25, 68.21, 68.47, 67.03, 68.82});
  CHECK(t3.at("fine_tuning") == "all parameters");  // the appendix's Evaluation Setups
  // Table 4: the two Partial-RoPE strategies; ids are mla-bench convert's --rope values.
  const auto t4 = load_table(4);
  REQUIRE(t4.at("rows").size() == 2);
  CHECK(t4.at("rows")[0].at("id") == "2norm");
  CHECK(t4.at("rows")[1].at("id") == "mkl");
  CHECK(t4.at("rows")[0].at("cells")[2].at("value") == 70.31);
  CHECK(t4.at("rows")[1].at("cells")[2].at("value") == 70.54);
  // Both average the eight benchmarks that Table 1 names, with Table 1's tasks and metrics.
  const auto t1 = load_table(1);
  for (const auto& t : {t3, t4}) {
    CHECK(t.at("columns").back().at("average_of") == t1.at("columns")[4].at("average_of"));
    for (const auto& b : t.at("benchmarks")) {
      const auto& cols = t1.at("columns");
      const auto c = std::find_if(cols.begin(), cols.end(),
                                  [&](const json& x) { return x.at("name") == b.at("name"); });
      REQUIRE(c != cols.end());
      CHECK(c->at("task") == b.at("task"));
      CHECK(c->at("metric") == b.at("metric"));
    }
  }
}

TEST_CASE("report: runs mapped to Table 3 and 4 rows show their values and the difference",
          "[harness][report]") {
  const auto db = (mlab::test::scratch_dir("report34") / "r.sqlite").string();
  const std::vector<std::pair<std::string, std::string>> eight = {
      {"ai2d", "exact_match"},        {"gqa", "exact_match"},
      {"pope", "pope_accuracy"},      {"seedbench", "seed_image"},
      {"realworldqa", "exact_match"}, {"mmbench_en_dev", "gpt_eval_score"},
      {"chartqa", "relaxed_overall"}, {"docvqa_val", "anls"}};
  {
    auto store = mlab::results::ResultsStore::open(db);
    mlab::results::RunInfo info;
    info.name = "ablation-single-stage-64";
    info.config = {{"paper_row", "table3/wo_two_stage/64"}};
    auto run = store.begin_run(info);
    for (const auto& [task, metric] : eight) store.set_metric(run, task, metric, 0.7, 10);
    store.finish_run(run);
    info.name = "table4/mkl";  // mapped by its name
    info.config = json::object();
    run = store.begin_run(info);
    for (const auto& [task, metric] : eight) store.set_metric(run, task, metric, 0.705, 10);
    store.finish_run(run);
    info.name = "ablation-joint-svd-32";  // two of the eight benchmarks so far
    info.config = {{"paper_row", "table3/wo_modality_decoupled/32"}};
    run = store.begin_run(info);
    store.set_metric(run, "ai2d", "exact_match", 0.6, 10);
    store.set_metric(run, "gqa", "exact_match", 0.6, 10);
    store.finish_run(run);
    info.name = "table1-row";  // Table 1's LLaVA-NeXT d_kv 64 row is not Table 3's
    info.config = {{"paper_row", "table1/llava_next_8b/gqa2mla/dkv64"}};
    run = store.begin_run(info);
    for (const auto& [task, metric] : eight) store.set_metric(run, task, metric, 0.5, 10);
    store.finish_run(run);
  }
  auto r = mlab::test::run_mla_bench("report --table 3 --db " + db);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(line_of(r.out, "| wo_two_stage/64 |"), Contains("| 68.82 / 70.00 (+1.18) |"));
  CHECK_THAT(line_of(r.out, "| wo_two_stage/32 |"), Contains("| 67.03 / no run |"));
  CHECK_THAT(line_of(r.out, "| wo_modality_decoupled/32 |"),
             Contains("| 67.14 / incomplete (2/8) |"));
  CHECK_THAT(line_of(r.out, "| gqa2mla/64 |"), Contains("| 69.70 / no run |"));
  r = mlab::test::run_mla_bench("report --table 4 --format csv --db " + db);
  REQUIRE(r.code == 0);
  CHECK(line_of(r.out, "mkl,") == "mkl,LLaVA-NeXT,S_MKL,70.54,70.50,-0.04");
  CHECK(line_of(r.out, "2norm,") == "2norm,LLaVA-NeXT,S_2-norm,70.31,no run,");
  r = mlab::test::run_mla_bench("report --table 3 --format html --db " + db);
  REQUIRE(r.code == 0);
  CHECK(html_problem(r.out).empty());
  CHECK_THAT(line_of(r.out, "<tr><td class=\"id\">wo_two_stage/64</td>"),
             Contains("<td class=\"m run\"><span class=\"paper\">68.82</span>"
                      "<span class=\"run\">70.00</span><span class=\"diff up\">+1.18</span></td>"));
  CHECK_THAT(line_of(r.out, "<tr><td class=\"id\">wo_modality_decoupled/32</td>"),
             Contains("<td class=\"m partial\">") && Contains("incomplete (2/8)"));
  CHECK_THAT(line_of(r.out, "<tr><td class=\"id\">gqa2mla/32</td>"),
             Contains("<td class=\"m norun\"><span class=\"paper\">67.56</span>"
                      "<span class=\"run\">no run</span></td>"));
}

TEST_CASE("report: --table all prints the four tables one after another", "[harness][report]") {
  auto r = mlab::test::run_mla_bench("report --table all");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  size_t at = 0;
  for (int n : {1, 2, 3, 4}) {
    INFO("table " << n);
    const auto t = load_table(n);
    const auto heading = r.out.find("## " + t.at("caption").get<std::string>(), at);
    REQUIRE(heading != std::string::npos);
    at = heading;
    for (const auto& row : t.at("rows")) {  // each table's rows follow its heading
      const auto found = r.out.find("\n| " + row.at("id").get<std::string>() + " |", at);
      CHECK(found != std::string::npos);
      if (found != std::string::npos) at = found;
    }
  }
  CHECK(count_of(r.out, "\n## Table ") + (r.out.rfind("## Table ", 0) == 0) == 4);
  // Each single table is printed exactly as alone.
  for (const std::string format : {"md", "csv"}) {
    r = mlab::test::run_mla_bench("report --table all --format " + format);
    REQUIRE(r.code == 0);
    std::string joined;
    for (int n : {1, 2, 3, 4}) {
      const auto one =
          mlab::test::run_mla_bench("report --table " + std::to_string(n) + " --format " + format);
      joined += (n > 1 ? "\n" : "") + one.out;
    }
    CHECK(r.out == joined);
  }
  r = mlab::test::run_mla_bench("report --table all --format html");
  REQUIRE(r.code == 0);
  CHECK(count_of(r.out, "<!doctype html>") == 1);
  CHECK(count_of(r.out, "<table>") == 4);
  for (int n : {1, 2, 3, 4}) {
    CHECK_THAT(r.out, Contains("<section id=\"table" + std::to_string(n) + "\">"));
  }
}

TEST_CASE("report: --format html is one well-formed, escaped page", "[harness][report]") {
  for (const std::string table : {"1", "2", "3", "4", "all"}) {
    INFO("table " << table);
    const auto r = mlab::test::run_mla_bench("report --format html --table " + table);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(r.out.rfind("<!doctype html>\n<html", 0) == 0);
    CHECK_THAT(r.out, Contains("<meta charset=\"utf-8\">") && Contains("<style>") &&
                          Contains("</html>\n"));
    CHECK(html_problem(r.out) == "");
    for (const std::string tag : {"table", "tr", "td", "th", "section", "caption"}) {
      INFO(tag);
      CHECK(count_of(r.out, "<" + tag + ">") + count_of(r.out, "<" + tag + " ") ==
            count_of(r.out, "</" + tag + ">"));
    }
    CHECK_THAT(r.out, !Contains("<script") && !Contains("http"));  // self-contained
    // Each table's caption and notes appear, escaped.
    for (int n : {1, 2, 3, 4}) {
      if (table != "all" && table != std::to_string(n)) continue;
      const auto t = load_table(n);
      CHECK_THAT(r.out, Contains("<caption>" + html_escape(t.at("caption")) + "</caption>"));
      for (const auto& note : t.at("notes")) {
        CHECK_THAT(r.out, Contains("<li>" + html_escape(note) + "</li>"));
      }
    }
  }
  // Text that looks like markup is escaped: Table 2's notes quote the paper's <i>Origin</i>.
  const auto r = mlab::test::run_mla_bench("report --format html --table 2");
  CHECK_THAT(r.out, Contains("(&lt;i&gt;Origin&lt;/i&gt;,") && !Contains("<i>"));
  CHECK_THAT(r.out, Contains("&quot;paper_row&quot;"));
  // The checker itself catches what it should.
  CHECK(html_problem("<table><tr><td>a</tr></table>") != "");
  CHECK(html_problem("<p>a < b</p>") != "");
  CHECK(html_problem("<p>a & b</p>") != "");
  CHECK(html_problem("<p>a &amp; b<br></p>") == "");
}

TEST_CASE("report: an unknown table or format exits 2 and says which exist", "[harness][report]") {
  for (const std::string bad : {"5", "0", "1,2", "ALL"}) {
    const auto r = mlab::test::run_mla_bench("report --table '" + bad + "'");
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK_THAT(r.err,
               Contains("unknown --table '" + bad + "'") && Contains("accepted: 1, 2, 3, 4, all"));
  }
  const auto r = mlab::test::run_mla_bench("report --table 3 --format xml");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("unknown --format 'xml'") && Contains("accepted: md, csv, html"));
}

TEST_CASE("report: KV Mem. cells show the run's measured kv_memory change beside the paper's",
          "[harness][report]") {
  const auto db = (mlab::test::scratch_dir("report_kv") / "r.sqlite").string();
  {
    auto store = mlab::results::ResultsStore::open(db);
    auto add = [&](const std::string& name, const std::string& row, double vs_original,
                   double vs_mha) {
      mlab::results::RunInfo info;
      info.name = name;
      info.config = {{"paper_row", row}};
      const auto run = store.begin_run(info);
      mlab::results::KvMemoryRow kv;
      kv.method = "mha2mla:d_kv=64,rope_dim=32";
      kv.bytes_per_token_layer_measured = 1;
      kv.vs_original = vs_original;
      kv.vs_mha_equivalent = vs_mha;
      store.set_kv_memory(run, kv);
      store.finish_run(run);
    };
    // LLaVA-1.5 (MHA) at d_kv 64, r 32: (32 + 64) / (2 * 128) = 0.375 of the MHA cache.
    add("a", "table1/llava15_7b/mha2mla/dkv64", 0.375, 0.375);
    // LLaVA-NeXT (GQA, 8 of 32 heads) at d_kv 32: 0.25 of the original, 0.0625 of the MHA cache.
    add("b", "table2/gqa2mla/dkv32/bf16", 0.25, 0.0625);
    add("c", "table3/gqa2mla/32", 0.25, 0.0625);
    // A run without a kv_memory row.
    mlab::results::RunInfo info;
    info.name = "d";
    info.config = {{"paper_row", "table1/llava15_7b/mha2mla/dkv32"}};
    store.finish_run(store.begin_run(info));
  }
  auto r = mlab::test::run_mla_bench("report --table all --db " + db);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(line_of(r.out, "| llava15_7b/mha2mla/dkv64 |"),
             Contains("| -62.50% / -62.50% (+0.00) |"));
  CHECK_THAT(line_of(r.out, "| llava15_7b/mha2mla/dkv32 |"),
             Contains("| -75.00% / not measured |"));
  CHECK_THAT(line_of(r.out, "| llava15_7b/mha2mla/dkv16 |"), Contains("| -81.30% / no run |"));
  // Table 2 prints -75.00% for this row (vs the original cache, as printed; see its notes).
  CHECK_THAT(line_of(r.out, "| gqa2mla/dkv32/bf16 |"), Contains("| -75.00% / -75.00% (+0.00) |"));
  // Table 3 prints the reduction without its minus.
  CHECK_THAT(line_of(r.out, "| gqa2mla/32 |"), Contains("| 93.75% / -93.75% (+0.00) |"));
}
