// PCRE2 wrapper. Oniguruma (the engine of Hugging Face tokenizers) and PCRE2 10.42 with UCP
// differ on classes the shipped patterns use: Oniguruma's \s is the White_Space property (with
// U+0085, without U+180E, which PCRE2 counts as space) and its \p{L} / \p{N} follow Unicode 16,
// PCRE2 10.42's Unicode 14. translate_pattern rewrites \s, \S, \p{L} and \p{N} into explicit
// classes built from Oniguruma's own sets (unicode_tables.cpp, measured by
// tools/make_unicode_tables.py through tokenizers).
#include "models/tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread match state: one match-data block (the whole-match pair is all we read) and a JIT
// stack large enough for long runs of whitespace.
struct ThreadMatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
  ThreadMatchState() {
    if (stack != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    if (stack != nullptr) pcre2_jit_stack_free(stack);
  }
};

std::string ranges_class(const uint32_t* rows, std::size_t count) {
  std::string out;
  char buffer[40];
  for (std::size_t i = 0; i < count; ++i) {
    if (rows[2 * i] == rows[2 * i + 1]) {
      std::snprintf(buffer, sizeof(buffer), "\\x{%X}", rows[2 * i]);
    } else {
      std::snprintf(buffer, sizeof(buffer), "\\x{%X}-\\x{%X}", rows[2 * i], rows[2 * i + 1]);
    }
    out += buffer;
  }
  return out;
}

// Rewrites the Oniguruma-sensitive classes of `pattern` for PCRE2 (see the file comment).
std::string translate_pattern(std::string_view pattern) {
  static const std::string space = ranges_class(tables::kRegexSpace, tables::kRegexSpaceCount);
  static const std::string letters =
      "\\p{L}" + ranges_class(tables::kRegexLetterExtra, tables::kRegexLetterExtraCount);
  static const std::string numbers =
      "\\p{N}" + ranges_class(tables::kRegexNumberExtra, tables::kRegexNumberExtraCount);
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const std::string_view rest = pattern.substr(i);
      const char next = pattern[i + 1];
      if (next == 'Q') {  // \Q...\E quotes verbatim
        const std::size_t close = pattern.find("\\E", i + 2);
        const std::size_t end = close == std::string_view::npos ? pattern.size() : close + 2;
        out += pattern.substr(i, end - i);
        i = end - 1;
        continue;
      }
      if (next == 's') {
        out += in_class ? space : "[" + space + "]";
      } else if (next == 'S' && !in_class) {
        out += "[^" + space + "]";
      } else if (rest.starts_with("\\p{L}")) {
        out += in_class ? letters : "[" + letters + "]";
        i += 4;
        continue;
      } else if (rest.starts_with("\\p{N}")) {
        out += in_class ? numbers : "[" + numbers + "]";
        i += 4;
        continue;
      } else {
        out += c;
        out += next;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const std::size_t close = pattern.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out += pattern.substr(i, close + 2 - i);
        i = close + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

ThreadMatchState& thread_state() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

Regex::Regex(std::string pattern) : pattern_(std::move(pattern)) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  const std::string translated = translate_pattern(pattern_);
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  MLAB_CHECK(code != nullptr, "bad regex '", pattern_, "': ", pcre2_message(error), " at offset ",
             offset);
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Regex::Regex(Regex&& other) noexcept
    : pattern_(std::move(other.pattern_)), code_(other.code_), jit_(other.jit_) {
  other.code_ = nullptr;
}

Regex& Regex::operator=(Regex&& other) noexcept {
  if (this != &other) {
    if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
    pattern_ = std::move(other.pattern_);
    code_ = other.code_;
    jit_ = other.jit_;
    other.code_ = nullptr;
  }
  return *this;
}

bool Regex::find(std::string_view subject, std::size_t start, std::size_t& match_begin,
                 std::size_t& match_end) const {
  auto& state = thread_state();
  const auto* code = static_cast<const pcre2_code*>(code_);
  const auto* data = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = jit_ ? pcre2_jit_match(code, data, subject.size(), start, PCRE2_NO_UTF_CHECK, state.data,
                                  state.context)
                : pcre2_match(code, data, subject.size(), start, PCRE2_NO_UTF_CHECK, state.data,
                              state.context);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    rc = pcre2_match(code, data, subject.size(), start, PCRE2_NO_UTF_CHECK, state.data,
                     state.context);
  }
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  MLAB_CHECK(rc >= 0, "regex '", pattern_, "' failed on a ", subject.size(),
             "-byte piece: ", pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.data);
  match_begin = ovector[0];
  match_end = ovector[1];
  return true;
}

std::string Regex::escape(std::string_view literal) {
  std::string out = "\\Q";
  for (std::size_t i = 0; i < literal.size(); ++i) {
    if (literal.compare(i, 2, "\\E") == 0) {
      out += "\\E\\\\E\\Q";
      ++i;
    } else {
      out.push_back(literal[i]);
    }
  }
  out += "\\E";
  return out;
}

Pattern parse_pattern(const nlohmann::json& config, const std::string& key,
                      const std::string& where) {
  const auto& pattern = json_access::field(config, key, where);
  MLAB_CHECK(pattern.is_object() && pattern.size() == 1 &&
                 (pattern.contains("String") || pattern.contains("Regex")),
             where, ": field '", key, "' must be {\"String\": ...} or {\"Regex\": ...}, got ",
             pattern.dump());
  Pattern out;
  if (pattern.contains("String")) {
    out.literal = json_access::get_string(pattern, "String", where + "." + key);
    out.regex = std::make_unique<Regex>(Regex::escape(out.literal));
  } else {
    out.is_regex = true;
    try {
      out.regex =
          std::make_unique<Regex>(json_access::get_string(pattern, "Regex", where + "." + key));
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
  }
  return out;
}

}  // namespace mlab::tokenizer
