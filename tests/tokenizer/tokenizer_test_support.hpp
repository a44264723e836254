#pragma once
// Shared helpers of the tokenizer tests: where the real tokenizer files are, and a cache of
// loaded tokenizers (loading Qwen's 11 MB tokenizer.json takes a while).
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/tokenizer/tokenizer.hpp"

namespace mlab::test {

// The four tokenizers of acceptance 1, by short name.
inline const std::vector<std::string>& tokenizer_names() {
  static const std::vector<std::string> names = {"llama2", "mistral", "llama3", "qwen2.5"};
  return names;
}

// ../shared/tokenizers of the checkout (or $MLAB_TOKENIZERS_DIR); empty when absent.
inline std::filesystem::path shared_tokenizers_dir() {
  if (const char* env = std::getenv("MLAB_TOKENIZERS_DIR"); env != nullptr && *env != 0) {
    return env;
  }
  std::vector<std::filesystem::path> candidates;
  if (const char* src = std::getenv("MLAB_SOURCE_DIR"); src != nullptr && *src != 0) {
    candidates.push_back(std::filesystem::path(src) / ".." / "shared" / "tokenizers");
  }
  candidates.push_back(std::filesystem::path(MLAB_TEST_DATA_DIR) / ".." / ".." / ".." / "shared" /
                       "tokenizers");
  for (const auto& c : candidates) {
    if (std::filesystem::exists(c / "llama3" / "tokenizer.json")) return c.lexically_normal();
  }
  return {};
}

// tokenizer.json of a short name; empty when the file is not available.
inline std::filesystem::path tokenizer_file(const std::string& name) {
  if (name == "llama2") {
    const auto path = data_dir() / "tokenizers" / "llama2" / "tokenizer.json";
    return std::filesystem::exists(path) ? path : std::filesystem::path();
  }
  const auto dir = shared_tokenizers_dir();
  if (dir.empty()) return {};
  const std::string folder = name == "mistral" ? "mistral-7b" : name;
  return dir / folder / "tokenizer.json";
}

// The loaded tokenizer, or nullptr when its file is absent (loaded once per process).
inline const Tokenizer* load_tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  if (const auto it = cache.find(name); it != cache.end()) return &it->second;
  const auto path = tokenizer_file(name);
  if (path.empty()) return nullptr;
  return &cache.emplace(name, Tokenizer::from_file(path)).first->second;
}

// An added-token entry of tokenizer.json (special, not normalized).
inline nlohmann::json added_token(int32_t id, const std::string& content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// The family's tokenizer as its model ships it: llava-hf adds <image> 32000 and <pad> 32001 to
// Llama-2's, llama3-llava-next adds <image> 128256; Qwen2.5's has <|image_pad|>. nullptr when
// the tokenizer file is not available. Cached (shared by the chat-prompt and train-template tests).
inline const Tokenizer* family_tokenizer(const std::string& family) {
  static std::map<std::string, Tokenizer> cache;
  if (const auto it = cache.find(family); it != cache.end()) return &it->second;
  const std::string name = family == "llava"        ? "llama2"
                           : family == "llava_next" ? "llama3"
                                                    : "qwen2.5";
  const auto path = tokenizer_file(name);
  if (path.empty()) return nullptr;
  std::ifstream in(path);
  nlohmann::json config = nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  if (family == "llava") {
    config["added_tokens"].push_back(added_token(32000, "<image>"));
    config["added_tokens"].push_back(added_token(32001, "<pad>"));
  } else if (family == "llava_next") {
    config["added_tokens"].push_back(added_token(128256, "<image>"));
  }
  return &cache.emplace(family, Tokenizer::from_json(config, path.string())).first->second;
}

}  // namespace mlab::test
