// `mla-bench tokenize`: the tokenizer.json runtime (F2) from the command line, for checking
// prompts and for external comparisons against Hugging Face tokenizers.
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "harness/commands.hpp"
#include "models/tokenizer/tokenizer.hpp"

namespace mlab::harness {
namespace {

std::vector<int32_t> ids_of(const nlohmann::json& value, const std::string& where) {
  const nlohmann::json& ids = value.is_object() && value.contains("ids") ? value.at("ids") : value;
  MLAB_CHECK(ids.is_array(), where, ": expected a JSON array of ids or {\"ids\": [...]}, got ",
             ids.type_name());
  std::vector<int32_t> out;
  for (const auto& id : ids) {
    MLAB_CHECK(id.is_number_integer(), where, ": ids must be integers, got ", id.dump());
    out.push_back(id.get<int32_t>());
  }
  return out;
}

std::string text_of(const nlohmann::json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  MLAB_CHECK(value.is_object() && value.contains("text") && value.at("text").is_string(), where,
             ": expected a JSON string or {\"text\": \"...\"}, got ", value.dump().substr(0, 80));
  return value.at("text").get<std::string>();
}

std::string ids_json(const std::vector<int32_t>& ids) { return nlohmann::json(ids).dump(); }

}  // namespace

int run_tokenize(const TokenizeOptions& options, std::ostream& out) {
  if (!options.text.empty() && !options.input.empty()) {
    throw UsageError("mla-bench tokenize: give --text or --input, not both");
  }
  if (options.text.empty() && options.input.empty()) {  // F11 D14: nothing to tokenize
    throw UsageError("mla-bench tokenize: give --text TEXT or --input FILE (nothing to " +
                     std::string(options.decode ? "decode" : "encode") + ")");
  }
  const auto tok = Tokenizer::from_file(options.tokenizer);
  const bool add_special = !options.no_special;
  if (options.input.empty()) {
    if (options.decode) {
      nlohmann::json ids;
      try {
        ids = nlohmann::json::parse(options.text);
      } catch (const nlohmann::json::parse_error& e) {
        throw UsageError("mla-bench tokenize --decode: --text must be a JSON array of ids: " +
                         std::string(e.what()));
      }
      out << tok.decode(ids_of(ids, "--text"), options.skip_special) << "\n";
    } else {
      out << ids_json(tok.encode(options.text, add_special)) << "\n";
    }
    return 0;
  }
  std::ifstream in(options.input);
  MLAB_CHECK(in.good(), options.input.string(), ": cannot open file");
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty() || line == "\r") continue;
    const std::string where = options.input.string() + ":" + std::to_string(number);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      MLAB_FAIL(where, ": not valid JSON: ", e.what());
    }
    try {
      if (options.decode) {
        out << nlohmann::json(tok.decode(ids_of(value, where), options.skip_special)).dump()
            << "\n";
      } else {
        out << ids_json(tok.encode(text_of(value, where), add_special)) << "\n";
      }
    } catch (const nlohmann::json::exception& e) {
      MLAB_FAIL(where, ": ", e.what());
    }
  }
  return 0;
}

}  // namespace mlab::harness
