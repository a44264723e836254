// Field checks and typed views of the eight benchmarks' lmms-eval records (specs/benchmarks.md
// §4.1-4.8: the fields each task's doc_to_text, doc_to_target and process_results read).
#include "datasets/sample_loaders.hpp"

#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::datasets {
namespace {

using nlohmann::json;

struct Doc {
  const char* task;
  const json& doc;

  const json& field(const char* key) const {
    auto it = doc.find(key);
    MLAB_CHECK(it != doc.end(), task, ": the doc has no field '", key, "'");
    return *it;
  }
  std::string text(const char* key) const {
    const json& v = field(key);
    MLAB_CHECK(v.is_string(), task, ": doc field '", key, "' must be a string, got ",
               v.type_name());
    return v.get<std::string>();
  }
  // A string or null field (MMBench hint/options); null and "nan" read as nullopt.
  std::optional<std::string> optional_text(const char* key) const {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return std::nullopt;
    MLAB_CHECK(it->is_string(), task, ": doc field '", key, "' must be a string or null, got ",
               it->type_name());
    return it->get<std::string>();
  }
  std::vector<std::string> texts(const char* key) const {
    const json& v = field(key);
    MLAB_CHECK(v.is_array(), task, ": doc field '", key, "' must be a list of strings, got ",
               v.type_name());
    std::vector<std::string> out;
    for (const json& item : v) {
      MLAB_CHECK(item.is_string(), task, ": doc field '", key, "' must hold strings, got ",
                 item.type_name());
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  void one_of(const std::string& value, const char* key,
              const std::vector<std::string>& allowed) const {
    for (const std::string& a : allowed) {
      if (a == value) return;
    }
    MLAB_FAIL(task, ": doc field '", key, "' is '", value, "', expected one of ",
              join(allowed, ", "));
  }
};

void load_ai2d(Sample& s) {
  const Doc d{"ai2d", s.doc};
  s.question = d.text("question");
  s.options = d.texts("options");
  MLAB_CHECK(!s.options.empty(), "ai2d: doc field 'options' is empty");
  // answer: the option's index as a decimal string (int accepted); target = chr(65 + answer).
  const json& answer = d.field("answer");
  std::string digits = answer.is_number_integer() ? answer.dump()
                       : answer.is_string()       ? answer.get<std::string>()
                                                  : "";
  std::size_t used = 0;
  long index = -1;
  try {
    index = std::stol(digits, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MLAB_CHECK(used == digits.size() && !digits.empty() && index >= 0 &&
                 index < static_cast<long>(s.options.size()),
             "ai2d: doc field 'answer' must be an option index 0..", s.options.size() - 1, ", got ",
             answer.dump());
  s.answers = {std::string(1, static_cast<char>('A' + index))};
}

void load_gqa(Sample& s) {
  const Doc d{"gqa", s.doc};
  s.question = d.text("question");
  s.answers = {d.text("answer")};
}

void load_pope(Sample& s) {
  const Doc d{"pope", s.doc};
  s.question = d.text("question");
  s.answers = {d.text("answer")};
  d.text("question_id");
  s.category = d.text("category");
  d.one_of(s.category, "category", {"adversarial", "popular", "random"});
}

void load_seedbench(Sample& s) {
  const Doc d{"seedbench", s.doc};
  s.question = d.text("question");
  for (const char* key : {"choice_a", "choice_b", "choice_c", "choice_d"}) {
    s.options.push_back(d.text(key));
  }
  s.answers = {d.text("answer")};
  d.field("question_id");
  s.category = d.text("data_type");
  d.one_of(s.category, "data_type", {"image", "video"});
}

void load_realworldqa(Sample& s) {
  const Doc d{"realworldqa", s.doc};
  s.question = d.text("question");
  s.answers = {d.text("answer")};
}

void load_mmbench(Sample& s) {
  const Doc d{"mmbench_en_dev", s.doc};
  const json& index = d.field("index");
  MLAB_CHECK(index.is_number_integer() && index.get<std::int64_t>() >= 0,
             "mmbench_en_dev: doc field 'index' must be a non-negative integer, got ",
             index.dump());
  s.circular_group = index.get<std::int64_t>() % 1000000;
  s.circular_copy = index.get<std::int64_t>() / 1000000;
  s.question = d.text("question");
  s.answers = {d.text("answer")};
  d.one_of(s.answers[0], "answer", {"A", "B", "C", "D", "E"});
  d.optional_text("hint");
  d.field("hint");  // read by doc_to_text (null allowed)
  for (const char* key : {"category", "L2-category", "source", "split"}) d.field(key);
  s.category = d.text("category");
  for (const char* key : {"A", "B", "C", "D", "E"}) {
    const auto option = d.optional_text(key);
    if (option && !option->empty() && *option != "nan") s.options.push_back(*option);
  }
  MLAB_CHECK(s.options.size() >= 2, "mmbench_en_dev: fewer than two options (A..E)");
}

void load_chartqa(Sample& s) {
  const Doc d{"chartqa", s.doc};
  s.question = d.text("question");
  s.answers = {d.text("answer")};
  s.category = d.text("type");
  d.one_of(s.category, "type", {"human_test", "augmented_test"});
}

void load_docvqa(Sample& s) {
  const Doc d{"docvqa_val", s.doc};
  s.question = d.text("question");
  s.answers = d.texts("answers");
  MLAB_CHECK(!s.answers.empty(), "docvqa_val: doc field 'answers' is empty");
}

struct LoaderEntry {
  const char* task;
  SampleLoader loader;
};

// Explicit list (STYLE.md rule 3), the task names of datasets/datasets.def.
constexpr LoaderEntry kLoaders[] = {
    {"ai2d", load_ai2d},
    {"chartqa", load_chartqa},
    {"docvqa_val", load_docvqa},
    {"gqa", load_gqa},
    {"mmbench_en_dev", load_mmbench},
    {"pope", load_pope},
    {"realworldqa", load_realworldqa},
    {"seedbench", load_seedbench},
};

}  // namespace

SampleLoader sample_loader(std::string_view task) {
  std::vector<std::string> names;
  for (const LoaderEntry& e : kLoaders) {
    if (task == e.task) return e.loader;
    names.push_back(e.task);
  }
  MLAB_FAIL(unknown_name_message("dataset loader", task, names));
}

}  // namespace mlab::datasets
