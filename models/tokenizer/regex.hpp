#pragma once
// Regex: the PCRE2 (8-bit, UTF + UCP, JIT when available) patterns of tokenizer.json `Split`
// pre-tokenizers and `Replace` normalizers/decoders. Hugging Face tokenizers runs them on
// Oniguruma; the differences that matter for the shipped patterns are handled here (see
// translate_pattern in regex.cpp).
#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace mlab::tokenizer {

class Regex {
 public:
  // Compiles `pattern`; throws mlab::Error naming the pattern, PCRE2's message and the offset.
  explicit Regex(std::string pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The next match in subject[start, end) as [begin, end) offsets into subject; false when none.
  // `subject` must be valid UTF-8 (not re-checked). Throws mlab::Error on a matching failure
  // (e.g. resource limits), never returns a wrong split.
  bool find(std::string_view subject, std::size_t start, std::size_t& match_begin,
            std::size_t& match_end) const;

  const std::string& pattern() const { return pattern_; }

  // A pattern that matches `literal` verbatim (for {"String": ...} patterns).
  static std::string escape(std::string_view literal);

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

// A tokenizer.json pattern field, {"String": s} or {"Regex": r}.
struct Pattern {
  std::string literal;           // the String pattern (empty for a Regex pattern)
  std::unique_ptr<Regex> regex;  // the Regex pattern, or the escaped literal
  bool is_regex = false;
};
// Reads config[key] as a Pattern; throws mlab::Error prefixed by `where` when malformed or when
// the regex does not compile.
Pattern parse_pattern(const nlohmann::json& config, const std::string& key,
                      const std::string& where);

}  // namespace mlab::tokenizer
