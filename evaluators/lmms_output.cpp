#include "evaluators/lmms_output.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "evaluators/task_scoring.hpp"

namespace mlab::evaluators {
namespace {

using nlohmann::json;

// float.__repr__: the shortest round-trip digits, fixed notation for 1e-4 <= |x| < 1e16 (with
// at least one decimal), else d[.ddd]e+XX (Python's float_repr_style "short").
std::string python_float(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const std::size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  if (x == 0.0) return sign + "0.0";
  if (exponent >= -4 && exponent < 16) {
    std::string out;
    if (exponent < 0) {
      out = "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out =
          digits + std::string(static_cast<std::size_t>(exponent + 1) - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
    return sign + out;
  }
  std::string mantissa = digits.substr(0, 1);
  if (digits.size() > 1) mantissa += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return sign + mantissa + exp_buf;
}

// json.dumps string escaping with ensure_ascii=False: '"', '\\' and C0 controls only.
void python_json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void dump(const OrderedJson& v, int indent, int level, std::string& out) {
  const bool pretty = indent >= 0;
  const std::string item_sep = pretty ? "," : ", ";
  auto newline = [&](int depth) {
    out += '\n';
    out.append(static_cast<std::size_t>(indent * depth), ' ');
  };
  switch (v.type()) {
    case OrderedJson::value_t::null:
      out += "null";
      break;
    case OrderedJson::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case OrderedJson::value_t::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      break;
    case OrderedJson::value_t::number_unsigned:
      out += std::to_string(v.get<std::uint64_t>());
      break;
    case OrderedJson::value_t::number_float:
      out += python_float(v.get<double>());
      break;
    case OrderedJson::value_t::string:
      python_json_string(v.get_ref<const std::string&>(), out);
      break;
    case OrderedJson::value_t::array: {
      if (v.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      bool first = true;
      for (const auto& item : v) {
        if (!first) out += item_sep;
        first = false;
        if (pretty) newline(level + 1);
        dump(item, indent, level + 1, out);
      }
      if (pretty) newline(level);
      out += ']';
      break;
    }
    case OrderedJson::value_t::object: {
      if (v.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        if (!first) out += item_sep;
        first = false;
        if (pretty) newline(level + 1);
        python_json_string(key, out);
        out += ": ";
        dump(item, indent, level + 1, out);
      }
      if (pretty) newline(level);
      out += '}';
      break;
    }
    default:
      MLAB_FAIL("python_json_dumps: unsupported JSON value ", v.type_name());
  }
}

// Decodes one UTF-8 code point at s[i] (input is valid UTF-8: nlohmann validated it).
char32_t next_code_point(const std::string& s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < len && i + k < s.size(); ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  }
  i += static_cast<std::size_t>(len);
  return cp;
}

bool python_printable(char32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0)) return false;
  if (cp == 0xAD || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
      (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x2064) ||
      (cp >= 0x2066 && cp <= 0x206F) || cp == 0x3000 || cp == 0xFEFF ||
      (cp >= 0xFFF9 && cp <= 0xFFFB) || (cp >= 0x0600 && cp <= 0x0605) || cp == 0x061C ||
      cp == 0x06DD || cp == 0x070F || cp == 0x180E || (cp >= 0xE000 && cp <= 0xF8FF) ||
      cp >= 0xF0000) {
    return false;
  }
  return true;
}

// repr(str): single quotes unless the text has ' and no ", Python's escapes.
std::string python_repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t start = i;
    const char32_t cp = next_code_point(s, i);
    char buf[16];
    if (cp == static_cast<char32_t>(quote) || cp == U'\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp == U'\t') {
      out += "\\t";
    } else if (cp == U'\n') {
      out += "\\n";
    } else if (cp == U'\r') {
      out += "\\r";
    } else if (!python_printable(cp)) {
      if (cp < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(cp));
      } else if (cp < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(cp));
      }
      out += buf;
    } else {
      out.append(s, start, i - start);
    }
  }
  out += quote;
  return out;
}

std::string python_repr(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "None";
    case json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";
    case json::value_t::number_integer:
      return std::to_string(v.get<std::int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(v.get<std::uint64_t>());
    case json::value_t::number_float: {
      const double x = v.get<double>();
      if (std::isnan(x)) return "nan";
      if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
      return python_float(x);
    }
    case json::value_t::string:
      return python_repr_string(v.get<std::string>());
    case json::value_t::array: {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + python_repr(v[i]);
      return out + "]";
    }
    case json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, item] : v.items()) {
        out += (first ? "" : ", ") + python_repr_string(key) + ": " + python_repr(item);
        first = false;
      }
      return out + "}";
    }
    default:
      MLAB_FAIL("python_str: unsupported JSON value ", v.type_name());
  }
}

// The parts of each task's lmms-eval yaml that configs/tasks/<task>.json does not restate, as
// TaskConfig.to_dict() shows them (functions as "<function NAME>", filter classes as
// "<class 'utils.NAME'>"). Keys absent here are None in the yaml and dropped by to_dict().
const OrderedJson& yaml_facts() {
  static const OrderedJson facts = OrderedJson::parse(R"JSON({
"ai2d": {"doc_to_visual": "ai2d_doc_to_visual", "doc_to_text": "ai2d_doc_to_text",
  "doc_to_target": "<function ai2d_doc_to_target>",
  "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true,
                   "ignore_case": true, "ignore_punctuation": true}],
  "filter_list": [{"name": "flexible-extract", "filter": [
      {"function": "<class 'utils.MultiChoiceRegexFilter'>", "group_select": 0,
       "ignore_case": true, "ignore_punctuation": true, "regex_pattern": "([A-Z])\\."}]}],
  "metadata": [{"version": 0.0}],
  "model_specific_target_kwargs": {"default": "mcq", "qwen_vl": "qa"}},
"chartqa": {"doc_to_visual": "chartqa_doc_to_visual", "doc_to_text": "chartqa_doc_to_text",
  "doc_to_target": "answer", "process_results": "<function chartqa_process_results>",
  "metric_list": [{"metric": "relaxed_overall", "aggregation": "mean", "higher_is_better": true},
                  {"metric": "relaxed_human_split", "aggregation": "mean", "higher_is_better": true},
                  {"metric": "relaxed_augmented_split", "aggregation": "mean", "higher_is_better": true}],
  "metadata": [{"version": 0.0}]},
"docvqa_val": {"doc_to_visual": "docvqa_doc_to_visual", "doc_to_text": "docvqa_doc_to_text",
  "doc_to_target": "answers",
  "metric_list": [{"metric": "anls", "aggregation": "mean", "higher_is_better": true}]},
"gqa": {"doc_to_visual": "gqa_doc_to_visual", "doc_to_text": "gqa_doc_to_text",
  "doc_to_target": "answer",
  "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true,
                   "ignore_case": true, "ignore_punctuation": true}],
  "metadata": [{"version": 0.0}]},
"mmbench_en_dev": {"doc_to_visual": "mmbench_doc_to_visual", "doc_to_text": "mmbench_doc_to_text",
  "doc_to_target": "answer", "process_results": "<function mmbench_process_results>",
  "metric_list": [{"metric": "gpt_eval_score", "aggregation": "<function mmbench_aggregate_dev_results_eval>", "higher_is_better": true},
                  {"metric": "submission", "aggregation": "<function mmbench_aggregate_dev_results_submission>", "higher_is_better": true}],
  "model_specific_generation_kwargs": {"llava": {"image_aspect_ratio": "original"}}},
"pope": {"doc_to_visual": "pope_doc_to_visual", "doc_to_text": "pope_doc_to_text",
  "doc_to_target": "answer", "process_results": "<function pope_process_results>",
  "metric_list": [{"metric": "pope_accuracy", "aggregation": "<function pope_aggregate_accuracy>", "higher_is_better": true},
                  {"metric": "pope_precision", "aggregation": "<function pope_aggregate_precision>", "higher_is_better": true},
                  {"metric": "pope_recall", "aggregation": "<function pope_aggregate_recall>", "higher_is_better": true},
                  {"metric": "pope_f1_score", "aggregation": "<function pope_aggregate_f1_score>", "higher_is_better": true},
                  {"metric": "pope_yes_ratio", "aggregation": "<function pope_aggregate_yes_ratio>", "higher_is_better": true}],
  "metadata": [{"version": 0.0}]},
"realworldqa": {"doc_to_visual": "realworldqa_doc_to_visual", "doc_to_text": "realworldqa_doc_to_text",
  "doc_to_target": "answer",
  "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": true,
                   "ignore_case": true, "ignore_punctuation": true}],
  "filter_list": [{"name": "flexible-extract", "filter": [
      {"function": "<class 'utils.NumberWordsToDigitsFilter'>"},
      {"function": "<class 'utils.MultiChoiceRegexFilter'>", "group_select": 0,
       "ignore_case": true, "ignore_punctuation": true, "regex_pattern": "(\\([A-Z]\\))"}]}],
  "metadata": [{"version": 0.0}]},
"seedbench": {"doc_to_visual": "seed_doc_to_visual", "doc_to_text": "seed_doc_to_text",
  "doc_to_target": "answer", "process_results": "<function seed_process_result>",
  "metric_list": [{"metric": "seed_image", "aggregation": "<function seed_aggregation_result>", "higher_is_better": true},
                  {"metric": "seed_video", "aggregation": "<function seed_aggregation_result>", "higher_is_better": true},
                  {"metric": "seed_all", "aggregation": "<function seed_aggregation_result>", "higher_is_better": true}],
  "metadata": [{"version": 0.0}]}
})JSON");
  return facts;
}

// The key order of the per-sample records process_results returns (our scorers' records are
// sorted JSON objects; lmms-eval's dict literals have these orders).
const std::vector<std::string>& record_key_order(const std::string& task) {
  static const std::map<std::string, std::vector<std::string>> kOrder = {
      {"pope", {"question_id", "score", "prediction", "ground_truth"}},
      {"seedbench", {"pred", "answer", "question_id"}},
      {"mmbench_en_dev",
       {"index", "question", "answer", "prediction", "hint", "source", "split", "category",
        "L2-category", "A", "B", "C", "D", "E"}}};
  static const std::vector<std::string> kNone;
  auto it = kOrder.find(task);
  return it == kOrder.end() ? kNone : it->second;
}

OrderedJson ordered_record(const std::string& task, const OrderedJson& record) {
  if (!record.is_object()) return record;
  OrderedJson out = OrderedJson::object();
  for (const std::string& key : record_key_order(task)) {
    if (record.contains(key)) out[key] = record[key];
  }
  for (const auto& [key, value] : record.items()) {
    if (!out.contains(key)) out[key] = value;
  }
  return out;
}

const OrderedJson& facts_of(std::string_view task) {
  const std::string name = canonical_task(task);
  auto it = yaml_facts().find(name);
  MLAB_CHECK(it != yaml_facts().end(), "lmms-eval output: no yaml facts for task '", name, "'");
  return *it;
}

}  // namespace

std::string python_json_dumps(const OrderedJson& value, int indent) {
  std::string out;
  dump(value, indent, 0, out);
  return out;
}

std::string python_str(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return python_repr(value);
}

json lmms_target(std::string_view task, const json& doc) {
  const std::string name = canonical_task(task);
  if (name == "ai2d") {
    // ai2d_doc_to_target(doc, "mcq"): the letter of options[int(answer)].
    MLAB_CHECK(doc.contains("options") && doc["options"].is_array(),
               "ai2d: the doc has no list field 'options'");
    MLAB_CHECK(doc.contains("answer") && doc["answer"].is_string(),
               "ai2d: the doc has no string field 'answer'");
    const std::string& answer = doc["answer"].get_ref<const std::string&>();
    long index = -1;
    auto res = std::from_chars(answer.data(), answer.data() + answer.size(), index);
    MLAB_CHECK(res.ec == std::errc() && res.ptr == answer.data() + answer.size() && index >= 0 &&
                   index < static_cast<long>(doc["options"].size()),
               "ai2d: 'answer' ", json(answer).dump(), " is not an option index");
    return std::string(1, static_cast<char>('A' + index));
  }
  const std::string field = facts_of(name).at("doc_to_target").get<std::string>();
  auto it = doc.find(field);
  MLAB_CHECK(it != doc.end(), name, ": the doc has no field '", field, "' (doc_to_target)");
  return *it;
}

OrderedJson lmms_task_config(std::string_view task, const LmmsConfigInputs& in) {
  const std::string name = canonical_task(task);
  const OrderedJson& f = facts_of(name);
  auto function = [](const OrderedJson& id) { return "<function " + id.get<std::string>() + ">"; };
  // TaskConfig's dataclass field order; None fields left out as to_dict() does.
  OrderedJson c;
  c["task"] = name;
  c["dataset_path"] = in.dataset_path;
  if (in.dataset_name) c["dataset_name"] = *in.dataset_name;
  c["dataset_kwargs"] = {{"token", true}};
  c["test_split"] = in.split;
  c["full_docs"] = false;
  c["process_results_use_image"] = false;
  c["doc_to_visual"] = function(f.at("doc_to_visual"));
  c["doc_to_text"] = function(f.at("doc_to_text"));
  c["doc_to_target"] = f.at("doc_to_target");
  if (f.contains("process_results")) c["process_results"] = f["process_results"];
  c["description"] = "";
  c["target_delimiter"] = " ";
  c["fewshot_delimiter"] = "\n\n";
  c["metric_list"] = f.at("metric_list");
  c["output_type"] = "generate_until";
  c["generation_kwargs"] = in.generation_kwargs;
  c["repeats"] = 1;
  if (f.contains("filter_list")) c["filter_list"] = f["filter_list"];
  c["should_decontaminate"] = false;
  if (f.contains("metadata")) c["metadata"] = f["metadata"];
  if (!in.specific_kwargs.is_null()) c["lmms_eval_specific_kwargs"] = in.specific_kwargs;
  for (const char* key : {"model_specific_generation_kwargs", "model_specific_target_kwargs"}) {
    if (f.contains(key)) c[key] = f[key];
  }
  return c;
}

OrderedJson lmms_higher_is_better(std::string_view task) {
  OrderedJson out = OrderedJson::object();
  for (const auto& m : facts_of(task).at("metric_list"))
    out[m.at("metric").get<std::string>()] = m.at("higher_is_better");
  return out;
}

OrderedJson lmms_sample_line(std::string_view task, const LmmsSample& s) {
  const json target = lmms_target(task, json(s.doc));
  const std::string target_text = python_str(target);
  const std::string name = canonical_task(task);
  OrderedJson line;
  line["doc_id"] = s.doc_id;
  // evaluator.py's saved_doc: fields whose name contains "image" and audio dicts are left out.
  OrderedJson saved_doc = OrderedJson::object();
  for (const auto& [key, value] : s.doc.items()) {
    if (key.find("image") != std::string::npos) continue;
    if (value.is_object() && value.contains("array")) continue;
    saved_doc[key] = value;
  }
  line["doc"] = saved_doc;
  line["target"] = target_text;  // save_results_samples: str(target)
  OrderedJson arguments = OrderedJson::object();
  std::int64_t k = 0;
  for (const auto& [key, _] : s.generation_kwargs.items()) arguments[std::to_string(k++)] = key;
  line["arguments"] = arguments;
  line["resps"] = OrderedJson::array({OrderedJson::array({s.response})});
  line["filtered_resps"] = OrderedJson::array({s.filtered});
  line["doc_hash"] = sha256_hex("null");  // json.dumps(Instance.doc) with doc never set
  line["prompt_hash"] = sha256_hex(s.prompt);
  line["target_hash"] = sha256_hex(target_text);
  for (const auto& [metric, value] : s.metrics.items()) line[metric] = ordered_record(name, value);
  line["input"] = s.prompt;
  return line;
}

std::string lmms_sanitize_model_name(std::string_view model_name) {
  std::vector<std::string> parts(1);
  for (char c : model_name) {
    if (c == '/') {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  const std::string last_two =
      parts.size() > 1 ? parts[parts.size() - 2] + "/" + parts.back() : parts.back();
  static const std::string kBad = "\"<>:/|\\?*[]";
  std::string out;
  bool in_run = false;
  for (char c : last_two) {
    if (kBad.find(c) != std::string::npos) {
      if (!in_run) out += "__";
      in_run = true;
    } else {
      out += c;
      in_run = false;
    }
  }
  return out;
}

OrderedJson lmms_results_json(const std::vector<LmmsTaskOutput>& tasks, const LmmsRunInfo& run) {
  OrderedJson results = OrderedJson::object(), subtasks = OrderedJson::object(),
              configs = OrderedJson::object(), versions = OrderedJson::object(),
              n_shot = OrderedJson::object(), higher = OrderedJson::object(),
              n_samples = OrderedJson::object(), hashes = OrderedJson::object();
  std::vector<const LmmsTaskOutput*> sorted;
  for (const auto& t : tasks) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->task < b->task; });
  for (const LmmsTaskOutput* t : sorted) {
    OrderedJson entry = {{"alias", t->task}};
    for (const auto& [key, value] : t->metrics.items()) entry[key] = value;
    results[t->task] = entry;
    configs[t->task] = t->config;
    versions[t->task] = "Yaml";  // ConfigurableTask.VERSION: the yamls' metadata is a list
    n_shot[t->task] = nullptr;   // num_fewshot unset in the yamls
    higher[t->task] = lmms_higher_is_better(t->task);
    n_samples[t->task] = {{"original", t->n_original}, {"effective", t->n_effective}};
    std::string joined;
    for (const auto& s : t->samples) {
      joined += s.at("doc_hash").get<std::string>() + s.at("prompt_hash").get<std::string>() +
                s.at("target_hash").get<std::string>();
    }
    hashes[t->task] = sha256_hex(joined);
  }
  // group_subtasks is reversed(subtask_list): the tasks in reverse sorted order.
  for (auto it = sorted.rbegin(); it != sorted.rend(); ++it) {
    subtasks[(*it)->task] = OrderedJson::array();
  }
  OrderedJson out;
  out["results"] = results;
  out["group_subtasks"] = subtasks;
  out["configs"] = configs;
  out["versions"] = versions;
  out["n-shot"] = n_shot;
  out["higher_is_better"] = higher;
  out["n-samples"] = n_samples;
  out["config"] = {{"model", run.model},
                   {"model_args", run.model_args},
                   {"batch_size", run.batch_size},
                   {"batch_sizes", OrderedJson::array()},
                   {"device", nullptr},
                   {"use_cache", nullptr},
                   {"limit", nullptr},
                   {"bootstrap_iters", 100000},
                   {"gen_kwargs", ""},
                   {"random_seed", 0},
                   {"numpy_seed", 1234},
                   {"torch_seed", 1234},
                   {"fewshot_seed", 1234}};
  out["git_hash"] = run.git_hash ? OrderedJson(*run.git_hash) : OrderedJson(nullptr);
  out["date"] = run.date;
  out["task_hashes"] = hashes;
  // GeneralConfigTracker (asdict): model name from model_args' pretrained=/model=/... value.
  std::string model_name;
  for (const char* prefix : {"peft=", "delta=", "pretrained=", "model=", "path=", "engine="}) {
    const std::size_t at = run.model_args.find(prefix);
    if (at == std::string::npos) continue;
    const std::string rest = run.model_args.substr(at + std::string(prefix).size());
    model_name = rest.substr(0, rest.find(','));
    break;
  }
  out["model_source"] = run.model;
  out["model_name"] = model_name;
  out["model_name_sanitized"] = lmms_sanitize_model_name(model_name);
  out["system_instruction"] = nullptr;
  out["system_instruction_sha"] = nullptr;
  out["fewshot_as_multiturn"] = false;
  out["chat_template"] = nullptr;
  out["chat_template_sha"] = nullptr;
  out["start_time"] = run.start_time;
  out["end_time"] = run.end_time;
  out["total_evaluation_time_seconds"] = python_float(run.end_time - run.start_time);
  return out;
}

}  // namespace mlab::evaluators
