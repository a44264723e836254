// Decoders (tokenizers/src/decoders: sequence.rs, byte_level.rs in pre_tokenizers, replace.rs
// in normalizers, byte_fallback.rs, fuse.rs, strip.rs, metaspace.rs).
#include "models/tokenizer/decoder.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "models/tokenizer/byte_level.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/regex.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {
namespace {

namespace ja = json_access;

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// Byte-level characters back to bytes (a token with a character outside the alphabet is taken
// as its own UTF-8), then lossy UTF-8 decoding of the whole byte string.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const auto& alphabet = ByteLevelAlphabet::get();
    std::string bytes, token_bytes;
    for (const auto& token : tokens) {
      token_bytes.clear();
      bool mapped = true;
      for (std::size_t pos = 0; pos < token.size() && mapped;) {
        const int b = alphabet.decode(next_code_point(token, pos));
        if (b < 0)
          mapped = false;
        else
          token_bytes.push_back(static_cast<char>(b));
      }
      bytes += mapped ? token_bytes : token;
    }
    std::string text;
    append_utf8_lossy(text, bytes);
    tokens.assign(1, std::move(text));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::string out;
      std::size_t pos = 0, begin = 0, end = 0;
      while (pos < token.size() && pattern_.regex->find(token, pos, begin, end)) {
        if (end == begin) break;
        out.append(token, pos, begin - pos);
        out += content_;
        pos = end;
      }
      if (pos == 0) continue;
      out.append(token, pos, std::string::npos);
      token.swap(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Runs of <0xXX> tokens become their UTF-8 text, or one U+FFFD per byte when not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (find_invalid_utf8(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        for (std::size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (auto& token : tokens) {
      if (token.size() == 6 && token.starts_with("<0x") && token.back() == '>' &&
          hex_digit(token[3]) >= 0 && hex_digit(token[4]) >= 0) {
        bytes.push_back(static_cast<char>(hex_digit(token[3]) * 16 + hex_digit(token[4])));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& token : tokens) all += token;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, std::size_t start, std::size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& token : tokens) {
      std::size_t begin = 0, end = token.size();
      for (std::size_t i = 0;
           i < start_ && token.compare(begin, content_.size(), content_) == 0 && begin < end; ++i) {
        begin += content_.size();
      }
      for (std::size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                              token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  std::size_t start_, stop_;
};

// The replacement character becomes ' '; in the first token it is dropped unless the prepend
// scheme is "never" (tokenizers' metaspace.rs decode_chain).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_first)
      : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (std::size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && drop_first_)) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
      tokens[i].swap(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_first_;
};

}  // namespace

std::unique_ptr<Decoder> Decoder::from_json(const nlohmann::json& config) {
  const std::string type = ja::type_of(config, "decoder");
  const std::string where = "decoder." + type;
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& step : ja::get_array(config, "decoders", where))
      steps.push_back(from_json(step));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    Pattern pattern = parse_pattern(config, "pattern", where);
    return std::make_unique<ReplaceDecoder>(std::move(pattern),
                                            ja::get_string(config, "content", where));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const int64_t start = ja::get_int(config, "start", where);
    const int64_t stop = ja::get_int(config, "stop", where);
    MLAB_CHECK(start >= 0 && stop >= 0, where, ": start/stop must be >= 0, got ", start, ", ",
               stop);
    return std::make_unique<StripDecoder>(ja::get_string(config, "content", where),
                                          static_cast<std::size_t>(start),
                                          static_cast<std::size_t>(stop));
  }
  if (type == "Metaspace") {
    bool drop_first = true;
    if (ja::has(config, "prepend_scheme")) {
      drop_first = ja::get_string(config, "prepend_scheme", where) != "never";
    } else {
      drop_first = ja::get_bool(config, "add_prefix_space", where, true);
    }
    return std::make_unique<MetaspaceDecoder>(ja::get_string(config, "replacement", where),
                                              drop_first);
  }
  MLAB_FAIL("unsupported decoder type '", type,
            "' (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace)");
}

}  // namespace mlab::tokenizer
