#pragma once
// A nesting-depth cap for the JSON files the project reads (config.json, generation_config.json,
// preprocessor_config.json, dataset.json, samples.jsonl lines, task configs). nlohmann's parser
// is iterative, but copying and walking a parsed value recurse once per level, so a 120 KB file of
// 60,000 '[' overflows the stack (F11 D1). check_json_depth scans the text once, counting '[' and
// '{' outside strings, and throws mlab::Error before anything is parsed.
#include <cstddef>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mlab {

// Default cap on JSON nesting: 512 levels (real configs nest < 10; nlohmann's own tests use 512
// as a "deep" document; a 512-level recursion uses well under 1 MB of stack).
inline constexpr int kMaxJsonDepth = 512;

// Throws mlab::Error("SOURCE: JSON nested deeper than N levels (at byte B)") when `text` nests
// arrays/objects deeper than max_depth. Brackets inside strings (with \" escapes) do not count.
// Malformed text is left to the parser that runs next.
inline void check_json_depth(std::string_view text, const std::string& source,
                             int max_depth = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character (\" does not end the string)
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          MLAB_FAIL(source, ": JSON nested deeper than ", max_depth, " levels (at byte ", i, ")");
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
}

}  // namespace mlab
