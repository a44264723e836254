// MT19937 (Matsumoto & Nishimura 1998) with CPython's seeding and float construction.
#include "evaluators/python_random.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace mlab::evaluators {

PythonRandom::PythonRandom(std::int64_t seed) { this->seed(seed); }

void PythonRandom::seed(std::int64_t seed) {
  std::uint64_t n =
      seed < 0 ? 0 - static_cast<std::uint64_t>(seed) : static_cast<std::uint64_t>(seed);
  std::vector<std::uint32_t> key;
  while (n != 0) {
    key.push_back(static_cast<std::uint32_t>(n & 0xFFFFFFFFu));
    n >>= 32;
  }
  if (key.empty()) key.push_back(0);
  // init_genrand(19650218)
  mt_[0] = 19650218u;
  for (int i = 1; i < kN; ++i) {
    mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
  }
  // init_by_array(key)
  int i = 1;
  std::size_t j = 0;
  for (std::size_t k = std::max<std::size_t>(kN, key.size()); k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] +
             static_cast<std::uint32_t>(j);
    ++i, ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= key.size()) j = 0;
  }
  for (int k = kN - 1; k > 0; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) -
             static_cast<std::uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;
  index_ = kN;
}

std::uint32_t PythonRandom::next_uint32() {
  constexpr std::uint32_t kMatrixA = 0x9908B0DFu;
  constexpr std::uint32_t kUpper = 0x80000000u;
  constexpr std::uint32_t kLower = 0x7FFFFFFFu;
  if (index_ >= kN) {
    int k = 0;
    for (; k < kN - 397; ++k) {
      const std::uint32_t y = (mt_[k] & kUpper) | (mt_[k + 1] & kLower);
      mt_[k] = mt_[k + 397] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    }
    for (; k < kN - 1; ++k) {
      const std::uint32_t y = (mt_[k] & kUpper) | (mt_[k + 1] & kLower);
      mt_[k] = mt_[k + (397 - kN)] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    }
    const std::uint32_t y = (mt_[kN - 1] & kUpper) | (mt_[0] & kLower);
    mt_[kN - 1] = mt_[396] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    index_ = 0;
  }
  std::uint32_t y = mt_[index_++];
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9D2C5680u;
  y ^= (y << 15) & 0xEFC60000u;
  y ^= (y >> 18);
  return y;
}

std::uint64_t PythonRandom::getrandbits(int k) {
  MLAB_CHECK(k >= 0 && k <= 64, "PythonRandom::getrandbits: k must be in [0, 64], got ", k);
  if (k == 0) return 0;
  if (k <= 32) return next_uint32() >> (32 - k);
  // Words from least to most significant; the last one keeps its top bits.
  const std::uint64_t low = next_uint32();
  std::uint64_t high = next_uint32();
  if (k < 64) high >>= (64 - k);
  return low | (high << 32);
}

double PythonRandom::random() {
  const std::uint32_t a = next_uint32() >> 5;
  const std::uint32_t b = next_uint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

std::uint64_t PythonRandom::randbelow(std::uint64_t n) {
  MLAB_CHECK(n >= 1, "PythonRandom::randbelow: n must be positive");
  int k = 0;
  for (std::uint64_t v = n; v != 0; v >>= 1) ++k;
  std::uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

std::int64_t PythonRandom::randint(std::int64_t a, std::int64_t b) {
  MLAB_CHECK(a <= b, "PythonRandom::randint: empty range (", a, ", ", b, ")");
  const std::uint64_t width = static_cast<std::uint64_t>(b) - static_cast<std::uint64_t>(a) + 1;
  MLAB_CHECK(width != 0, "PythonRandom::randint: range too wide");
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + randbelow(width));
}

std::size_t PythonRandom::choice_index(std::size_t size) {
  MLAB_CHECK(size >= 1, "PythonRandom::choice: cannot choose from an empty sequence");
  return static_cast<std::size_t>(randbelow(size));
}

}  // namespace mlab::evaluators
