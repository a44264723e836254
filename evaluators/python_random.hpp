#pragma once
// CPython 3.11's `random.Random` (Modules/_randommodule.c + Lib/random.py): MT19937 seeded like
// `random.seed(int)` (init_by_array over the 32-bit words of |seed|), and the draws lmms-eval's
// MMBench fallback makes (`rd.seed(2680)`; `rd.randint(0, 4)`), bit-exactly.
#include <array>
#include <cstdint>

namespace mlab::evaluators {

class PythonRandom {
 public:
  // random.seed(seed) with an int seed (the sign is dropped, as CPython does).
  explicit PythonRandom(std::int64_t seed);
  void seed(std::int64_t seed);

  // random.getrandbits(k), 0 <= k <= 64.
  std::uint64_t getrandbits(int k);
  // random.random(): 53-bit float in [0, 1).
  double random();
  // random._randbelow(n) (rejection sampling on getrandbits(n.bit_length())); n >= 1.
  std::uint64_t randbelow(std::uint64_t n);
  // random.randint(a, b), a <= b.
  std::int64_t randint(std::int64_t a, std::int64_t b);
  // The index random.choice(seq) picks for len(seq) == size (size >= 1).
  std::size_t choice_index(std::size_t size);

 private:
  std::uint32_t next_uint32();

  static constexpr int kN = 624;
  std::array<std::uint32_t, kN> mt_{};
  int index_ = kN + 1;
};

}  // namespace mlab::evaluators
