// Normalizers (tokenizers/src/normalizers: utils.rs Sequence, prepend.rs, replace.rs,
// unicode.rs NFC/NFD, strip.rs).
#include "models/tokenizer/normalizer.hpp"

#include <nlohmann/json.hpp>
#include <vector>

#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/regex.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// Prepends a string to non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

// Replaces every occurrence of a literal or every regex match by `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::unique_ptr<Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    std::string out;
    std::size_t pos = 0;
    if (regex_ == nullptr) {
      if (literal_.empty() || text.find(literal_) == std::string::npos) return;
      for (std::size_t hit; (hit = text.find(literal_, pos)) != std::string::npos;) {
        out.append(text, pos, hit - pos);
        out += content_;
        pos = hit + literal_.size();
      }
    } else {
      std::size_t begin = 0, end = 0;
      while (pos <= text.size() && regex_->find(text, pos, begin, end)) {
        out.append(text, pos, begin - pos);
        out += content_;
        if (end == begin) {  // empty match: keep one character and move on
          if (begin >= text.size()) {
            pos = text.size();
            break;
          }
          const std::size_t n = utf8_length(static_cast<uint8_t>(text[begin]));
          out.append(text, begin, n);
          end = begin + n;
        }
        pos = end;
      }
    }
    out.append(text, std::min(pos, text.size()), std::string::npos);
    text.swap(out);
  }

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class NfcNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override { nfc_in_place(text); }
};

class NfdNormalizer final : public Normalizer {
 public:
  void normalize(std::string& text) const override { nfd_in_place(text); }
};

// Strips Unicode white space (Rust char::is_whitespace) on the left and/or right.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      for (std::size_t pos = 0; pos < text.size() && is_white_space(next_code_point(text, pos));) {
        begin = pos;
      }
    }
    if (right_) {
      std::size_t last_non_space = begin;
      for (std::size_t pos = begin; pos < text.size();) {
        if (!is_white_space(next_code_point(text, pos))) last_non_space = pos;
      }
      end = last_non_space;
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> Normalizer::from_json(const nlohmann::json& config) {
  const std::string type = ja::type_of(config, "normalizer");
  const std::string where = "normalizer." + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& step : ja::get_array(config, "normalizers", where)) {
      steps.push_back(from_json(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(ja::get_string(config, "prepend", where));
  }
  if (type == "Replace") {
    Pattern pattern = parse_pattern(config, "pattern", where);
    return std::make_unique<ReplaceNormalizer>(
        std::move(pattern.literal), pattern.is_regex ? std::move(pattern.regex) : nullptr,
        ja::get_string(config, "content", where));
  }
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "NFD") return std::make_unique<NfdNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(ja::get_bool(config, "strip_left", where, true),
                                             ja::get_bool(config, "strip_right", where, true));
  }
  MLAB_FAIL("unsupported normalizer type '", type,
            "' (supported: Sequence, Prepend, Replace, NFC, NFD, Strip)");
}

}  // namespace mlab::tokenizer
