#pragma once
// The GPT-2 byte-to-unicode alphabet of byte-level BPE (bytes 33-126, 161-172, 174-255 map to
// the code point of the same value; the other 68 bytes to U+0100, U+0101, ... in byte order).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mlab::tokenizer {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();

  // UTF-8 of the character that stands for `byte`.
  std::string_view encode(uint8_t byte) const { return {encoded_[byte].data(), lengths_[byte]}; }
  // The byte a code point stands for, or -1 when it is not in the alphabet.
  int decode(uint32_t cp) const { return cp < decoded_.size() ? decoded_[cp] : -1; }

 private:
  ByteLevelAlphabet();
  std::array<std::array<char, 2>, 256> encoded_{};
  std::array<uint8_t, 256> lengths_{};
  std::array<int16_t, 324> decoded_{};
};

}  // namespace mlab::tokenizer
