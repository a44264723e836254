#include "models/tokenizer/byte_level.hpp"

#include "models/tokenizer/unicode.hpp"

namespace mlab::tokenizer {

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  decoded_.fill(-1);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool same = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = same ? static_cast<uint32_t>(b) : next++;
    std::string utf8;
    append_utf8(utf8, cp);
    lengths_[b] = static_cast<uint8_t>(utf8.size());
    for (std::size_t i = 0; i < utf8.size(); ++i) encoded_[b][i] = utf8[i];
    decoded_[cp] = static_cast<int16_t>(b);
  }
}

}  // namespace mlab::tokenizer
