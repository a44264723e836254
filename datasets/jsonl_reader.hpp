#pragma once
// Streaming reader of JSON Lines files (one JSON value per line), used for dataset dirs
// (samples.jsonl), `mla-bench score` inputs and prediction logs. Lines are read one at a time,
// never the whole file; every error names "file:line" and the reason.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace mlab::datasets {

class JsonlReader {
 public:
  // Opens `path`; throws mlab::Error naming the path when it cannot be read.
  explicit JsonlReader(std::filesystem::path path);

  // Reads the next non-blank line into `value` (blank lines are skipped, a final line without
  // '\n' is read). Returns false at end of file. Throws mlab::Error "file:line: reason" for a
  // line that is not valid JSON (invalid UTF-8 included) or, with `require_object`, is not a
  // JSON object.
  bool next(nlohmann::json& value, bool require_object = true);

  // 1-based number of the line `next` returned last (0 before the first call).
  std::int64_t line() const { return line_; }
  const std::filesystem::path& path() const { return path_; }
  // "file:line" of the line `next` returned last, for callers' own checks.
  std::string where() const;

 private:
  std::filesystem::path path_;
  std::ifstream in_;
  std::int64_t line_ = 0;
};

// The string field `key` of a JSONL record; throws mlab::Error "<where>: field 'key' ..." when
// it is missing or not a string.
const std::string& required_string(const nlohmann::json& record, const char* key,
                                   const std::string& where);

}  // namespace mlab::datasets
