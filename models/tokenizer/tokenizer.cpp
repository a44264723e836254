// Tokenizer: loading tokenizer.json and the encode/decode pipelines of tokenizers'
// tokenizer/mod.rs (encode_single_sequence, decode).
#include "models/tokenizer/tokenizer.hpp"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.hpp"
#include "models/tokenizer/added_vocabulary.hpp"
#include "models/tokenizer/bpe_model.hpp"
#include "models/tokenizer/decoder.hpp"
#include "models/tokenizer/json_access.hpp"
#include "models/tokenizer/normalizer.hpp"
#include "models/tokenizer/post_processor.hpp"
#include "models/tokenizer/pre_tokenizer.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& path) {
  std::filesystem::path file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) file /= "tokenizer.json";
  std::ifstream in(file, std::ios::binary);
  MLAB_CHECK(in.good(), "tokenizer ", file.string(), ": cannot open file");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    MLAB_FAIL("tokenizer ", file.string(), ": not valid JSON (", text.size(),
              " bytes; truncated?): ", e.what());
  }
  return from_json(config, file.string());
}

Tokenizer Tokenizer::from_json(const nlohmann::json& config, std::string source) {
  namespace ja = json_access;
  Tokenizer tok;
  tok.source_ = std::move(source);
  try {
    MLAB_CHECK(config.is_object(), "top level must be a JSON object, got ", config.type_name());
    for (const char* key : {"truncation", "padding"}) {
      MLAB_CHECK(!ja::has(config, key), "'", key,
                 "' is set; truncation and padding are not supported (set them to null)");
    }
    if (ja::has(config, "normalizer"))
      tok.normalizer_ = Normalizer::from_json(config.at("normalizer"));
    if (ja::has(config, "pre_tokenizer")) {
      tok.pre_tokenizer_ = PreTokenizer::from_json(config.at("pre_tokenizer"));
    }
    const auto& model = ja::field(config, "model", "tokenizer.json");
    const std::string type = ja::has(model, "type") ? ja::type_of(model, "model") : "BPE";
    MLAB_CHECK(type == "BPE", "unsupported model type '", type, "' (supported: BPE)");
    tok.model_ = BpeModel::from_json(model);
    if (ja::has(config, "post_processor")) {
      tok.post_processor_ = PostProcessor::from_json(config.at("post_processor"));
    }
    if (ja::has(config, "decoder")) tok.decoder_ = Decoder::from_json(config.at("decoder"));
    tok.added_ = std::make_unique<AddedVocabulary>();
    tok.added_->load(
        ja::has(config, "added_tokens") ? config.at("added_tokens") : nlohmann::json::array(),
        tok.normalizer_.get());
  } catch (const Error& e) {
    throw Error("tokenizer " + tok.source_ + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    throw Error("tokenizer " + tok.source_ + ": " + e.what());
  }
  return tok;
}

void Tokenizer::encode_text(std::string_view text, bool at_origin,
                            std::vector<int32_t>& ids) const {
  std::string normalized(text);
  if (normalizer_ != nullptr) normalizer_->normalize(normalized);
  // Tokens with normalized=true are matched in the normalized text.
  std::vector<Segment> segments;
  if (added_->has_normalized_tokens()) {
    added_->split(normalized, true, segments);
  } else if (!normalized.empty()) {
    segments.push_back({0, normalized.size(), -1});
  }
  PieceList list;
  for (const auto& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
      continue;
    }
    list.text.assign(normalized, segment.begin, segment.end - segment.begin);
    list.pieces.assign(1, {0, list.text.size(), at_origin && segment.begin == 0});
    if (pre_tokenizer_ != nullptr) pre_tokenizer_->pre_tokenize(list);
    for (const auto& piece : list.pieces) model_->tokenize(list.view(piece), ids);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const std::size_t bad = find_invalid_utf8(text);
  MLAB_CHECK(bad == std::string_view::npos, "tokenizer ", source_,
             ": input is not valid UTF-8 (byte ", bad, " of ", text.size(), ")");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segments;
  added_->split(text, false, segments);
  for (const auto& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
    } else {
      encode_text(text.substr(segment.begin, segment.end - segment.begin), segment.begin == 0, ids);
    }
  }
  if (add_special_tokens && post_processor_ != nullptr) post_processor_->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    if (const AddedToken* added = added_->find_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
    } else if (const std::string* token = model_->id_to_token(id)) {
      tokens.push_back(*token);
    }
  }
  if (decoder_ == nullptr) {
    std::string out;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  decoder_->decode_chain(tokens);
  std::string out;
  for (const auto& token : tokens) out += token;
  return out;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const AddedToken* added = added_->find_content(token)) return added->id;
  const int32_t id = model_->token_to_id(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = added_->find_id(id)) return added->content;
  if (const std::string* token = model_->id_to_token(id)) return *token;
  return std::nullopt;
}

std::size_t Tokenizer::vocab_size() const {
  std::size_t extra = 0;
  for (const auto& token : added_->tokens()) {
    if (model_->token_to_id(token.content) < 0) ++extra;
  }
  return model_->vocab_size() + extra;
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* added = added_->find_id(id);
  return added != nullptr && added->special;
}

}  // namespace mlab::tokenizer
