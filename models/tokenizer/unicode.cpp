// UTF-8 handling and NFC (Unicode Standard Annex #15: canonical decomposition, canonical ordering
// by combining class, canonical composition of primary composites, Hangul done algorithmically).
#include "models/tokenizer/unicode.hpp"

#include <algorithm>
#include <vector>

namespace mlab::tokenizer {
namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

// Length of the well-formed UTF-8 sequence at bytes[pos], or the length of its maximal invalid
// subpart as a negative number (Unicode §3.9, "U+FFFD substitution of maximal subparts").
int sequence_length(std::string_view bytes, std::size_t pos) {
  const auto b0 = static_cast<uint8_t>(bytes[pos]);
  if (b0 < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int i = 1; i <= need; ++i) {
    if (pos + i >= bytes.size()) return -i;
    const auto b = static_cast<uint8_t>(bytes[pos + i]);
    if (b < lo || b > hi) return -i;
    lo = 0x80;
    hi = 0xBF;
  }
  return need + 1;
}

uint32_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  std::size_t lo = 0, hi = tables::kCombiningClassCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t key = tables::kCombiningClass[2 * mid];
    if (key == cp) return tables::kCombiningClass[2 * mid + 1];
    if (key < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

// Row index of cp in kDecomposition, or -1.
long decomposition_row(uint32_t cp) {
  if (cp < 0xC0) return -1;
  std::size_t lo = 0, hi = tables::kDecompositionCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t key = tables::kDecomposition[3 * mid];
    if (key == cp) return static_cast<long>(mid);
    if (key < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

// The primary composite of (a, b), or 0.
uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  std::size_t lo = 0, hi = tables::kCompositionCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t ka = tables::kComposition[3 * mid], kb = tables::kComposition[3 * mid + 1];
    if (ka == a && kb == b) return tables::kComposition[3 * mid + 2];
    if (ka < a || (ka == a && kb < b))
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

bool nfc_quick_check_yes(uint32_t cp) {
  if (cp < 0x300) return true;
  std::size_t lo = 0, hi = tables::kNfcQuickCheckNoCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (tables::kNfcQuickCheckNo[2 * mid + 1] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo == tables::kNfcQuickCheckNoCount || tables::kNfcQuickCheckNo[2 * lo] > cp;
}

void decompose_into(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const long row = decomposition_row(cp);
  if (row < 0) {
    out.push_back(cp);
    return;
  }
  decompose_into(tables::kDecomposition[3 * row + 1], out);
  if (const uint32_t second = tables::kDecomposition[3 * row + 2]; second != 0) {
    decompose_into(second, out);
  }
}

// Decomposes and canonically orders text into code points.
std::vector<uint32_t> canonical_decomposition(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) decompose_into(next_code_point(text, pos), cps);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(cps.begin() + i, cps.begin() + j, [](uint32_t a, uint32_t b) {
        return combining_class(a) < combining_class(b);
      });
    }
    i = j;
  }
  return cps;
}

}  // namespace

std::size_t find_invalid_utf8(std::string_view text) {
  for (std::size_t pos = 0; pos < text.size();) {
    const auto b = static_cast<uint8_t>(text[pos]);
    if (b < 0x80) {
      ++pos;
      continue;
    }
    const int n = sequence_length(text, pos);
    if (n < 0) return pos;
    pos += static_cast<std::size_t>(n);
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  out.reserve(out.size() + bytes.size());
  for (std::size_t pos = 0; pos < bytes.size();) {
    const int n = sequence_length(bytes, pos);
    if (n > 0) {
      out.append(bytes.substr(pos, static_cast<std::size_t>(n)));
      pos += static_cast<std::size_t>(n);
    } else {
      out.append("\xEF\xBF\xBD");
      pos += static_cast<std::size_t>(-n);
    }
  }
}

void nfd_in_place(std::string& text) {
  bool simple = true;
  for (std::size_t pos = 0; pos < text.size() && simple;) {
    const uint32_t cp = next_code_point(text, pos);
    simple = cp < 0xC0;
  }
  if (simple) return;
  std::string out;
  out.reserve(text.size() + 8);
  for (const uint32_t cp : canonical_decomposition(text)) append_utf8(out, cp);
  text.swap(out);
}

void nfc_in_place(std::string& text) {
  bool quick = true;
  for (std::size_t pos = 0; pos < text.size() && quick;) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    quick = nfc_quick_check_yes(next_code_point(text, pos));
  }
  if (quick) return;
  std::vector<uint32_t> cps = canonical_decomposition(text);
  // Canonical composition: each character may combine with the last starter unless blocked
  // (a character of equal or higher class, or a starter, stands between them).
  std::size_t starter = std::string::npos;
  uint32_t last_class = 0;
  std::size_t write = 0;
  for (std::size_t read = 0; read < cps.size(); ++read) {
    const uint32_t cp = cps[read];
    const uint32_t cls = combining_class(cp);
    bool composed = false;
    if (starter != std::string::npos) {
      const bool adjacent = write == starter + 1;
      const bool unblocked = adjacent ? true : (last_class != 0 && last_class < cls);
      if (unblocked) {
        if (const uint32_t c = compose_pair(cps[starter], cp); c != 0) {
          cps[starter] = c;
          composed = true;
        }
      }
    }
    if (composed) continue;
    if (cls == 0) {
      starter = write;
      last_class = 0;
    } else {
      last_class = cls;
    }
    cps[write++] = cp;
  }
  cps.resize(write);
  std::string out;
  out.reserve(text.size());
  for (const uint32_t cp : cps) append_utf8(out, cp);
  text.swap(out);
}

}  // namespace mlab::tokenizer
