#include "datasets/task_prompt.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::datasets {
namespace {

using nlohmann::json;

// RealWorldQA's REPLACE_PROMPT (removed from the question only when a post_prompt is set).
constexpr std::string_view kRwqReplacePrompt =
    "Please answer directly with only the letter of the correct option and nothing else.";

struct Ctx {
  const std::string& task;
  const json& doc;

  const json& field(const char* key) const {
    MLAB_CHECK(doc.is_object(), task, ": the doc must be a JSON object, got ", doc.type_name());
    auto it = doc.find(key);
    MLAB_CHECK(it != doc.end(), task, ": the doc has no field '", key, "'");
    return *it;
  }
  std::string text(const char* key) const {
    const json& value = field(key);
    MLAB_CHECK(value.is_string(), task, ": doc field '", key, "' must be a string, got ",
               value.type_name());
    return value.get<std::string>();
  }
};

std::string kwarg(const std::string& task, const json& kwargs, const char* key,
                  const char* fallback = nullptr) {
  if (kwargs.is_object()) {
    if (auto it = kwargs.find(key); it != kwargs.end()) {
      MLAB_CHECK(it->is_string(), task, ": model kwarg '", key, "' must be a string");
      return it->get<std::string>();
    }
  }
  MLAB_CHECK(fallback != nullptr, task, ": the task's model kwargs lack '", key, "'");
  return fallback;
}

std::string py_strip(const std::string& text, const std::string& what) {
  return evaluators::utf8_encode(evaluators::py_strip(evaluators::utf8_decode(text, what)));
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = text.find(from, pos)) != std::string::npos;
       pos = hit + from.size()) {
    out.append(text, pos, hit - pos).append(to);
  }
  return out.append(text, pos);
}

// chr(ord("A") + i) as UTF-8.
std::string letter(std::size_t i) {
  return evaluators::utf8_encode(std::u32string(1, static_cast<char32_t>(U'A' + i)));
}

std::string ai2d(const Ctx& c, const json& kwargs) {
  const std::string question = c.text("question");
  const json& options = c.field("options");
  MLAB_CHECK(options.is_array(), c.task, ": doc field 'options' must be a list");
  std::vector<std::string> choices;
  for (const json& o : options) {
    MLAB_CHECK(o.is_string(), c.task, ": doc field 'options' must hold strings");
    choices.push_back(o.get<std::string>());
  }
  const std::string pre = kwarg(c.task, kwargs, "pre_prompt");
  const std::string post = kwarg(c.task, kwargs, "post_prompt");
  const std::string format = kwarg(c.task, kwargs, "prompt_format");
  std::string joined;
  if (format == "mcq" || format == "mcq_xcomposer") {
    const char* sep = format == "mcq" ? "\n" : " ";
    for (std::size_t i = 0; i < choices.size(); ++i) {
      if (i) joined += sep;
      joined += letter(i) + ". " + choices[i];
    }
    if (format == "mcq") return pre + question + "\n" + joined + post;
    return pre + question + "\nContext: N/A\n" + joined + post;
  }
  MLAB_CHECK(format == "qa", c.task, ": unknown prompt_format '", format, "'");
  for (std::size_t i = 0; i < choices.size(); ++i) joined += (i ? "\n" : "") + choices[i];
  return pre + question + joined + post;
}

std::string pre_question_post(const Ctx& c, const json& kwargs) {
  return kwarg(c.task, kwargs, "pre_prompt") + c.text("question") +
         kwarg(c.task, kwargs, "post_prompt");
}

std::string pope(const Ctx& c, const json& kwargs) {
  return kwarg(c.task, kwargs, "pre_prompt", "") + py_strip(c.text("question"), "pope question") +
         kwarg(c.task, kwargs, "post_prompt", "");
}

std::string seedbench(const Ctx& c) {
  std::string q = c.text("question");
  q += "\nA. " + c.text("choice_a") + "\n";
  q += "B. " + c.text("choice_b") + "\n";
  q += "C. " + c.text("choice_c") + "\n";
  q += "D. " + c.text("choice_d");
  return q + "\nAnswer with the option's letter from the given choices directly.";
}

std::string realworldqa(const Ctx& c, const json& kwargs) {
  std::string question = py_strip(c.text("question"), "realworldqa question");
  const std::string pre = kwarg(c.task, kwargs, "pre_prompt", "");
  std::string post = kwarg(c.task, kwargs, "post_prompt", "");
  if (!post.empty()) question = replace_all(question, kRwqReplacePrompt, "");
  return pre + question + post;
}

// en_utils.mmbench_doc_to_text with MMBench_Evaluator.create_options_prompt.
std::string mmbench(const Ctx& c, const json& kwargs, const std::string& options_prompt) {
  for (const char* key : {"category", "L2-category", "index", "hint", "source", "split"}) {
    c.field(key);  // read by doc_to_text: a KeyError in lmms-eval
  }
  std::string options = options_prompt + "\n";
  for (const char* key : {"A", "B", "C", "D", "E"}) {  // sorted(options.items())
    auto it = c.doc.find(key);
    if (it == c.doc.end() || it->is_null()) continue;  // falsy / pd.isna
    MLAB_CHECK(it->is_string(), c.task, ": option '", key, "' must be a string or null, got ",
               it->type_name());
    const std::string& item = it->get_ref<const std::string&>();
    if (item.empty() || item == "nan") continue;
    options += std::string(key) + ". " + item + "\n";
  }
  while (!options.empty() && options.back() == '\n') options.pop_back();  // rstrip("\n")
  const json& hint = c.field("hint");
  MLAB_CHECK(hint.is_null() || hint.is_string(), c.task,
             ": doc field 'hint' must be a string or "
             "null, got ",
             hint.type_name());
  const std::string question = c.text("question");
  std::string query = hint.is_string() && hint.get<std::string>() != "nan"
                          ? hint.get<std::string>() + " " + question + " " + options
                          : question + " " + options;
  if (kwargs.is_object() && !kwargs.empty()) query += "\n" + kwarg(c.task, kwargs, "post_prompt");
  return query;
}

}  // namespace

std::string render_prompt(const TaskConfig& config, const json& doc, std::string_view family) {
  const json kwargs = config.model_kwargs(family);
  const Ctx c{config.task, doc};
  const std::string& kind = config.doc_to_text;
  if (kind == "ai2d") return ai2d(c, kwargs);
  if (kind == "gqa" || kind == "chartqa" || kind == "docvqa") return pre_question_post(c, kwargs);
  if (kind == "pope") return pope(c, kwargs);
  if (kind == "seedbench") return seedbench(c);
  if (kind == "realworldqa") return realworldqa(c, kwargs);
  if (kind == "mmbench") return mmbench(c, kwargs, config.options_prompt);
  MLAB_FAIL(config.task, ": unknown doc_to_text '", kind, "'");
}

}  // namespace mlab::datasets
