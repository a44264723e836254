#pragma once
// The synthetic suite's random numbers (issue F9): std::mt19937_64, whose output sequence the
// C++ standard fixes, with our own integer -> range mapping (rejection sampling), never
// std::uniform_*_distribution (implementation-defined). Same seed, same draws, on any platform.
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace mlab::synth {

class SynthRng {
 public:
  explicit SynthRng(std::uint64_t seed) : engine_(seed) {}

  // Uniform integer in [0, n); n > 0. Rejection keeps it exactly uniform.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // multiple of n
    std::uint64_t v;
    do {
      v = engine_();
    } while (v >= limit);
    return v % n;
  }
  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  // Fisher-Yates shuffle of `v` (the order of draws is part of the format).
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }
  // 0..n-1 in random order.
  std::vector<int> permutation(int n) {
    std::vector<int> p(n);
    for (int i = 0; i < n; ++i) p[i] = i;
    shuffle(p);
    return p;
  }

 private:
  std::mt19937_64 engine_;
};

// splitmix64 finaliser (Steele et al. 2014), used to mix seeds.
inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The seed of one stream: (suite seed, task, split) hashed (FNV-1a over the names, splitmix64
// mixing), so eval and train streams of every task are disjoint functions of the seed.
inline std::uint64_t stream_seed(std::uint64_t seed, std::string_view task,
                                 std::string_view split) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::string_view part : {task, std::string_view("/"), split}) {
    for (char c : part) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
  return mix64(mix64(seed) ^ h);
}

}  // namespace mlab::synth
