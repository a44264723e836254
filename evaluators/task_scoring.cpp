// lmms-eval's per-task pipeline glue (api/task.py process_results, the yaml filter_list and
// metric_list of the eight tasks) over the metric functions of this folder.
#include "evaluators/task_scoring.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "evaluators/chartqa_metric.hpp"
#include "evaluators/docvqa_metric.hpp"
#include "evaluators/multiple_choice.hpp"
#include "evaluators/pope_metric.hpp"
#include "evaluators/text_normalization.hpp"

namespace mlab::evaluators {
namespace {

using nlohmann::json;

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {
      "ai2d", "chartqa", "docvqa_val", "gqa", "mmbench_en_dev", "pope", "realworldqa", "seedbench"};
  return names;
}

const json& field(const json& doc, const std::string& task, const char* key) {
  MLAB_CHECK(doc.is_object(), task, ": the doc must be a JSON object, got ", doc.type_name());
  auto it = doc.find(key);
  MLAB_CHECK(it != doc.end(), task, ": the doc has no field '", key, "'");
  return *it;
}

std::u32string text_field(const json& doc, const std::string& task, const char* key) {
  const json& value = field(doc, task, key);
  MLAB_CHECK(value.is_string(), task, ": doc field '", key, "' must be a string, got ",
             value.type_name());
  return utf8_decode(value.get_ref<const std::string&>(), task + " doc field '" + key + "'");
}

std::u32string decode_prediction(const std::string& task, std::string_view raw) {
  return utf8_decode(raw, task + " prediction");
}

json u8(std::u32string_view text) { return json(utf8_encode(text)); }

// The record keys/values MMBench's process_results copies from the doc.
json mmbench_record(const json& doc, const std::string& task, std::u32string_view prediction) {
  json record = json::object();
  for (const char* key : {"index", "question", "answer"}) record[key] = field(doc, task, key);
  record["prediction"] = u8(prediction);
  for (const char* key : {"hint", "source", "split", "category", "L2-category"}) {
    record[key] = field(doc, task, key);
  }
  for (const char* key : {"A", "B", "C", "D", "E"}) {
    auto it = doc.find(key);
    record[key] = it == doc.end() ? json("nan") : *it;
  }
  return record;
}

double mean(const std::vector<double>& values) {
  double sum = 0.0;  // Python's sum(): left to right from 0
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

std::optional<std::u32string> mmbench_option(const json& record, const char* key) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) return std::nullopt;
  MLAB_CHECK(it->is_string(), "mmbench_en_dev: option '", key, "' must be a string or null, got ",
             it->type_name());
  return utf8_decode(it->get_ref<const std::string&>(), "mmbench_en_dev option");
}

json score_sample_impl(const std::string& task, std::string_view raw_prediction, const json& doc);
json aggregate_impl(const std::string& task, const std::vector<json>& samples,
                    const AggregateOptions& options);

}  // namespace

std::string canonical_task(std::string_view task) {
  if (task == "docvqa") return "docvqa_val";
  if (task == "mmbench" || task == "mmbench_en") return "mmbench_en_dev";
  for (const std::string& name : task_names()) {
    if (name == task) return name;
  }
  MLAB_FAIL(unknown_name_message("task", task, task_names()));
}

std::string filter_name(std::string_view task) {
  const std::string name = canonical_task(task);
  return (name == "ai2d" || name == "realworldqa") ? "flexible-extract" : "none";
}

std::string filter_prediction(std::string_view task_name, std::string_view raw, const json& doc) {
  const std::string task = canonical_task(task_name);
  if (task == "ai2d") return utf8_encode(ai2d_extract(decode_prediction(task, raw)));
  if (task == "realworldqa") {
    return utf8_encode(
        rwq_flexible_extract(decode_prediction(task, raw), text_field(doc, task, "question")));
  }
  return std::string(raw);
}

json score_sample(std::string_view task_name, std::string_view raw_prediction, const json& doc) {
  const std::string task = canonical_task(task_name);
  try {
    return score_sample_impl(task, raw_prediction, doc);
  } catch (const json::exception& e) {
    MLAB_FAIL(task, ": malformed doc: ", e.what());
  }
}

json aggregate_scores(std::string_view task_name, const std::vector<json>& samples,
                      const AggregateOptions& options) {
  const std::string task = canonical_task(task_name);
  try {
    return aggregate_impl(task, samples, options);
  } catch (const json::exception& e) {
    MLAB_FAIL(task, ": malformed per-sample scores: ", e.what());
  }
}

namespace {

json score_sample_impl(const std::string& task, std::string_view raw_prediction, const json& doc) {
  const std::u32string raw = decode_prediction(task, raw_prediction);
  json out = json::object();
  if (task == "ai2d") {
    const json& options = field(doc, task, "options");
    MLAB_CHECK(options.is_array(), task, ": doc field 'options' must be a list");
    const json& answer = field(doc, task, "answer");
    const std::u32string answer_text =
        answer.is_string() ? text_field(doc, task, "answer")
                           : (answer.is_number_integer() ? utf8_decode(answer.dump()) : U"?");
    const std::u32string target = ai2d_target(options.size(), answer_text);
    out["exact_match"] = exact_match(target, py_strip(ai2d_extract(raw)));
  } else if (task == "realworldqa") {
    const std::u32string filtered = rwq_flexible_extract(raw, text_field(doc, task, "question"));
    out["exact_match"] = exact_match(text_field(doc, task, "answer"), py_strip(filtered));
  } else if (task == "gqa") {
    out["exact_match"] = exact_match(text_field(doc, task, "answer"), py_strip(raw));
  } else if (task == "docvqa_val") {
    const json& answers = field(doc, task, "answers");
    MLAB_CHECK(answers.is_array(), task, ": doc field 'answers' must be a list of strings");
    std::vector<std::u32string> golds;
    for (const json& a : answers) {
      MLAB_CHECK(a.is_string(), task, ": doc field 'answers' must hold strings, got ",
                 a.type_name());
      golds.push_back(utf8_decode(a.get_ref<const std::string&>(), task + " answer"));
    }
    const double value = anls(golds, py_strip(raw));
    out["anls"] = value < 0.5 ? json(0) : json(value);  // lmms-eval returns the int 0
  } else if (task == "chartqa") {
    const std::u32string type = text_field(doc, task, "type");
    const double score =
        relaxed_correctness(py_strip(raw), text_field(doc, task, "answer")) ? 1.0 : 0.0;
    out["relaxed_overall"] = score;
    out[type == U"human_test" ? "relaxed_human_split" : "relaxed_augmented_split"] = score;
  } else if (task == "pope") {
    const PopeRecord r = pope_score(py_strip(raw), text_field(doc, task, "answer"));
    const json record = {{"question_id", field(doc, task, "question_id")},
                         {"score", r.score},
                         {"prediction", u8(r.prediction)},
                         {"ground_truth", u8(r.ground_truth)}};
    for (const char* key :
         {"pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio"}) {
      out[key] = record;
    }
  } else if (task == "seedbench") {
    const json record = {{"pred", u8(seed_prediction(py_strip(raw)))},
                         {"answer", field(doc, task, "answer")},
                         {"question_id", field(doc, task, "question_id")}};
    out["seed_" + utf8_encode(text_field(doc, task, "data_type"))] = record;
    out["seed_all"] = record;
  } else if (task == "mmbench_en_dev") {
    const json record = mmbench_record(doc, task, py_strip(py_strip(raw)));
    out["gpt_eval_score"] = record;
    out["submission"] = record;
  }
  return out;
}

json aggregate_impl(const std::string& task, const std::vector<json>& samples,
                    const AggregateOptions& options) {
  json out = json::object();
  auto collect = [&](const char* key) {
    std::vector<const json*> values;
    for (const json& s : samples) {
      auto it = s.find(key);
      if (it != s.end()) values.push_back(&*it);
    }
    return values;
  };
  auto mean_of = [&](const char* key) {
    std::vector<double> values;
    for (const json* v : collect(key)) values.push_back(v->get<double>());
    if (!values.empty()) out[key] = mean(values);
  };
  if (task == "ai2d" || task == "realworldqa" || task == "gqa") {
    mean_of("exact_match");
  } else if (task == "docvqa_val") {
    mean_of("anls");
  } else if (task == "chartqa") {
    for (const char* key : {"relaxed_overall", "relaxed_human_split", "relaxed_augmented_split"}) {
      mean_of(key);
    }
  } else if (task == "pope") {
    for (const char* key :
         {"pope_accuracy", "pope_precision", "pope_recall", "pope_f1_score", "pope_yes_ratio"}) {
      std::vector<PopeRecord> records;
      for (const json* v : collect(key)) {
        records.push_back({v->at("score").get<double>(),
                           utf8_decode(v->at("prediction").get<std::string>()),
                           utf8_decode(v->at("ground_truth").get<std::string>())});
      }
      if (records.empty()) continue;
      const PopeAggregate agg = pope_aggregate(records);
      const std::string name = key;
      out[key] = name == "pope_accuracy"    ? agg.accuracy
                 : name == "pope_precision" ? agg.precision
                 : name == "pope_recall"    ? agg.recall
                 : name == "pope_f1_score"  ? agg.f1_score
                                            : agg.yes_ratio;
    }
  } else if (task == "seedbench") {
    for (const char* key : {"seed_image", "seed_video", "seed_all"}) {
      std::vector<const json*> records = collect(key);
      if (records.empty()) continue;
      std::int64_t correct = 0;
      for (const json* r : records) {
        const json& answer = r->at("answer");
        MLAB_CHECK(answer.is_string(), "seedbench: answer must be a string");
        correct += py_strip(py_lower(utf8_decode(r->at("pred").get<std::string>()))) ==
                           py_strip(py_lower(utf8_decode(answer.get<std::string>())))
                       ? 1
                       : 0;
      }
      out[key] = static_cast<double>(correct) / static_cast<double>(records.size());
    }
  } else if (task == "mmbench_en_dev") {
    std::vector<MmbenchRow> rows;
    for (const json* r : collect("gpt_eval_score")) {
      MmbenchRow row;
      MLAB_CHECK(r->at("index").is_number_integer(), "mmbench_en_dev: index must be an integer");
      row.index = r->at("index").get<std::int64_t>();
      row.answer = utf8_decode(r->at("answer").get<std::string>());
      row.prediction = utf8_decode(r->at("prediction").get<std::string>());
      for (int k = 0; k < 4; ++k) {
        const char key[2] = {static_cast<char>('A' + k), '\0'};
        row.options[k] = mmbench_option(*r, key);
      }
      rows.push_back(std::move(row));
    }
    if (!rows.empty()) {
      out["gpt_eval_score"] =
          mmbench_circular_eval(std::move(rows), options.mmbench).gpt_eval_score;
    }
  }
  return out;
}

}  // namespace
}  // namespace mlab::evaluators
