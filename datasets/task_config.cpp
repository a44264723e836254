#include "datasets/task_config.hpp"

#include <fstream>
#include <iterator>
#include <set>

#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "core/strings.hpp"

namespace mlab::datasets {
namespace {

using nlohmann::json;

void check_keys(const json& object, const std::string& where, const std::set<std::string>& known) {
  MLAB_CHECK(object.is_object(), where, ": expected an object, got ", object.type_name());
  for (const auto& [key, value] : object.items()) {
    if (known.count(key)) continue;
    const std::vector<std::string> names(known.begin(), known.end());
    MLAB_FAIL(where, ": ", unknown_name_message("key", key, names));
  }
}

const json& member(const json& object, const std::string& where, const char* key) {
  auto it = object.find(key);
  MLAB_CHECK(it != object.end(), where, ": missing key '", key, "'");
  return *it;
}

std::string string_member(const json& object, const std::string& where, const char* key) {
  const json& value = member(object, where, key);
  MLAB_CHECK(value.is_string(), where, ": '", key, "' must be a string, got ", value.type_name());
  return value.get<std::string>();
}

std::optional<std::string> optional_string(const json& object, const std::string& where,
                                           const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  MLAB_CHECK(it->is_string(), where, ": '", key, "' must be a string or null");
  return it->get<std::string>();
}

}  // namespace

const std::vector<std::string>& family_names() {
  static const std::vector<std::string> names = {"llava", "llava_next", "qwen2_5_vl"};
  return names;
}

TaskConfig TaskConfig::from_json(const json& config, const std::string& where) {
  check_keys(config, where,
             {"task", "doc", "dataset", "prompt", "generation", "families", "filter", "metrics",
              "headline", "scale"});
  TaskConfig out;
  try {
    out.task = string_member(config, where, "task");
    out.doc = string_member(config, where, "doc");
    const json& ds = member(config, where, "dataset");
    const std::string ds_where = where + " dataset";
    check_keys(ds, ds_where,
               {"hf_path", "hf_config", "split", "samples", "samples_verified", "images_config"});
    out.dataset.hf_path = string_member(ds, ds_where, "hf_path");
    out.dataset.hf_config = optional_string(ds, ds_where, "hf_config");
    out.dataset.split = string_member(ds, ds_where, "split");
    out.dataset.samples = member(ds, ds_where, "samples").get<std::int64_t>();
    out.dataset.samples_verified = member(ds, ds_where, "samples_verified").get<bool>();
    out.dataset.images_config = optional_string(ds, ds_where, "images_config");

    const json& prompt = member(config, where, "prompt");
    const std::string p_where = where + " prompt";
    check_keys(prompt, p_where, {"doc_to_text", "options_prompt", "lmms_eval_specific_kwargs"});
    out.doc_to_text = string_member(prompt, p_where, "doc_to_text");
    out.options_prompt = optional_string(prompt, p_where, "options_prompt").value_or("");
    out.specific_kwargs = member(prompt, p_where, "lmms_eval_specific_kwargs");
    MLAB_CHECK(out.specific_kwargs.is_null() || out.specific_kwargs.is_object(), p_where,
               ": lmms_eval_specific_kwargs must be an object or null");

    out.generation = member(config, where, "generation");
    MLAB_CHECK(out.generation.is_object(), where, ": 'generation' must be an object");
    const json& families = member(config, where, "families");
    MLAB_CHECK(families.is_object(), where, ": 'families' must be an object");
    for (const auto& [name, f] : families.items()) {
      const std::string f_where = where + " families." + name;
      check_keys(f, f_where, {"model_name", "max_new_tokens", "stop"});
      TaskFamily family;
      family.model_name = string_member(f, f_where, "model_name");
      family.max_new_tokens = member(f, f_where, "max_new_tokens").get<std::int64_t>();
      family.stop = member(f, f_where, "stop").get<std::vector<std::string>>();
      out.families[name] = std::move(family);
    }
    out.filter = string_member(config, where, "filter");
    for (const json& m : member(config, where, "metrics")) {
      const std::string m_where = where + " metrics";
      check_keys(m, m_where, {"metric", "aggregation", "higher_is_better"});
      out.metrics.push_back({string_member(m, m_where, "metric"),
                             string_member(m, m_where, "aggregation"),
                             member(m, m_where, "higher_is_better").get<bool>()});
    }
    out.headline = string_member(config, where, "headline");
    out.scale = member(config, where, "scale").get<double>();
  } catch (const json::exception& e) {
    MLAB_FAIL(where, ": ", e.what());
  }
  for (const std::string& name : family_names()) {
    MLAB_CHECK(out.families.count(name), where, ": 'families' lacks '", name, "'");
  }
  return out;
}

TaskConfig TaskConfig::load(const std::filesystem::path& configs_dir, std::string_view task) {
  const std::filesystem::path path = configs_dir / (std::string(task) + ".json");
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot open the task config");
  json config;
  try {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_json_depth(text, path.string());  // F11 D1
    config = json::parse(text);
  } catch (const json::parse_error& e) {
    MLAB_FAIL(path.string(), ": malformed JSON: ", e.what());
  }
  TaskConfig out = from_json(config, path.string());
  MLAB_CHECK(out.task == task, path.string(), ": 'task' is '", out.task, "', expected '", task,
             "'");
  return out;
}

const TaskFamily& TaskConfig::family(std::string_view name) const {
  auto it = families.find(std::string(name));
  if (it == families.end()) MLAB_FAIL(unknown_name_message("family", name, family_names()));
  return it->second;
}

json TaskConfig::model_kwargs(std::string_view family_name) const {
  const std::string model = family(family_name).model_name;
  if (specific_kwargs.is_null()) return json();
  if (auto it = specific_kwargs.find(model); it != specific_kwargs.end()) return *it;
  json kwargs = specific_kwargs;
  if (auto it = specific_kwargs.find("default"); it != specific_kwargs.end()) {
    kwargs.update(*it);
  }
  return kwargs;
}

}  // namespace mlab::datasets
