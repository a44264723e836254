#include "datasets/jsonl_reader.hpp"

#include "core/error.hpp"
#include "core/json_depth.hpp"

namespace mlab::datasets {

JsonlReader::JsonlReader(std::filesystem::path path) : path_(std::move(path)) {
  MLAB_CHECK(!std::filesystem::is_directory(path_), path_.string(),
             ": is a directory, expected a JSONL file");
  in_.open(path_, std::ios::binary);
  MLAB_CHECK(in_.good(), path_.string(), ": cannot open (missing or unreadable)");
}

std::string JsonlReader::where() const { return str_cat(path_.string(), ":", line_); }

bool JsonlReader::next(nlohmann::json& value, bool require_object) {
  std::string text;
  while (std::getline(in_, text)) {
    ++line_;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    check_json_depth(text, where());  // F11 D1: a deep line overflows the stack
    try {
      value = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      MLAB_FAIL(where(), ": malformed JSON line: ", e.what());
    }
    MLAB_CHECK(!require_object || value.is_object(), where(), ": expected a JSON object, got ",
               value.type_name());
    return true;
  }
  MLAB_CHECK(in_.eof(), path_.string(), ": read error after line ", line_);
  return false;
}

const std::string& required_string(const nlohmann::json& record, const char* key,
                                   const std::string& where) {
  auto it = record.find(key);
  MLAB_CHECK(it != record.end(), where, ": missing field '", key, "'");
  MLAB_CHECK(it->is_string(), where, ": field '", key, "' must be a string, got ", it->type_name());
  return it->get_ref<const std::string&>();
}

}  // namespace mlab::datasets
