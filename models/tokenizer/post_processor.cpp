// Post-processors (tokenizers/src/processors: template.rs, byte_level.rs trims offsets only,
// sequence.rs, roberta.rs, bert.rs).
#include "models/tokenizer/post_processor.hpp"

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/error.hpp"
#include "models/tokenizer/json_access.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

// The single-sequence template as a list of pieces: fixed ids, or the sequence itself (empty
// `ids` with is_sequence).
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

class TemplatePostProcessor final : public PostProcessor {
 public:
  explicit TemplatePostProcessor(std::vector<TemplatePiece> pieces) : pieces_(std::move(pieces)) {}
  void process(std::vector<int32_t>& ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& piece : pieces_) {
      if (piece.is_sequence)
        out.insert(out.end(), ids.begin(), ids.end());
      else
        out.insert(out.end(), piece.ids.begin(), piece.ids.end());
    }
    ids.swap(out);
  }

 private:
  std::vector<TemplatePiece> pieces_;
};

class NoOpPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& step : steps_) step->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// ids of a special token named in a template, from the processor's "special_tokens" map.
std::vector<int32_t> special_ids(const nlohmann::json& config, const std::string& name,
                                 const std::string& where) {
  const auto& specials = ja::field(config, "special_tokens", where);
  MLAB_CHECK(specials.is_object() && specials.contains(name), where,
             ": template names special token '", name, "', which is missing from 'special_tokens'");
  std::vector<int32_t> ids;
  for (const auto& id :
       ja::get_array(specials.at(name), "ids", where + ".special_tokens." + name)) {
    MLAB_CHECK(id.is_number_integer(), where, ": special token '", name,
               "' ids must be integers, got ", id.dump());
    ids.push_back(id.get<int32_t>());
  }
  return ids;
}

std::unique_ptr<PostProcessor> template_from_json(const nlohmann::json& config,
                                                  const std::string& where) {
  const auto& single = ja::field(config, "single", where);
  std::vector<TemplatePiece> pieces;
  if (single.is_string()) {  // "<s> $A" short form
    std::istringstream words(single.get<std::string>());
    for (std::string word; words >> word;) {
      const std::string name = word.substr(0, word.find(':'));
      if (name == "$" || name == "$A" || name == "$0")
        pieces.push_back({true, {}});
      else
        pieces.push_back({false, special_ids(config, name, where)});
    }
  } else {
    MLAB_CHECK(single.is_array(), where, ": field 'single' must be an array or a string, got ",
               single.type_name());
    for (const auto& item : single) {
      if (item.is_object() && item.contains("Sequence")) {
        pieces.push_back({true, {}});
      } else if (item.is_object() && item.contains("SpecialToken")) {
        pieces.push_back(
            {false,
             special_ids(config, ja::get_string(item.at("SpecialToken"), "id", where), where)});
      } else {
        MLAB_FAIL(where,
                  ": template item must be {\"Sequence\": ...} or {\"SpecialToken\": ...}, got ",
                  item.dump());
      }
    }
  }
  return std::make_unique<TemplatePostProcessor>(std::move(pieces));
}

// [token, id] pairs of RobertaProcessing/BertProcessing.
int32_t pair_id(const nlohmann::json& config, const char* key, const std::string& where) {
  const auto& pair = ja::field(config, key, where);
  MLAB_CHECK(pair.is_array() && pair.size() == 2 && pair[1].is_number_integer(), where, ": field '",
             key, "' must be [token, id], got ", pair.dump());
  return pair[1].get<int32_t>();
}

}  // namespace

std::unique_ptr<PostProcessor> PostProcessor::from_json(const nlohmann::json& config) {
  const std::string type = ja::type_of(config, "post_processor");
  const std::string where = "post_processor." + type;
  if (type == "TemplateProcessing") return template_from_json(config, where);
  if (type == "ByteLevel") return std::make_unique<NoOpPostProcessor>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const auto& step : ja::get_array(config, "processors", where))
      steps.push_back(from_json(step));
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    std::vector<TemplatePiece> pieces = {{false, {pair_id(config, "cls", where)}},
                                         {true, {}},
                                         {false, {pair_id(config, "sep", where)}}};
    return std::make_unique<TemplatePostProcessor>(std::move(pieces));
  }
  MLAB_FAIL(
      "unsupported post_processor type '", type,
      "' (supported: TemplateProcessing, ByteLevel, Sequence, RobertaProcessing, BertProcessing)");
}

}  // namespace mlab::tokenizer
