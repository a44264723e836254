// MHA2MLA-VLM partial RoPE (F6, specs/method.md §2): keep-sets of the fixed strategies, the q/k
// re-layout of §2.6, the converted MKL rank files of configs/mha2mla/ranks, ranks from scores and
// the 2-norm scorer against a brute-force computation.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "methods/mha2mla/partial_rope.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using mlab::methods::KeepSets;
using mlab::methods::RopeStrategy;
using Vec = std::vector<int64_t>;

fs::path ranks_dir() {
  return mlab::test::data_dir().parent_path().parent_path() / "configs" / "mha2mla" / "ranks";
}

Vec range(int64_t from, int64_t to, int64_t step = 1) {
  Vec v;
  for (int64_t i = from; i < to; i += step) v.push_back(i);
  return v;
}

// Hand-made keep-sets: freqs[l][g] given, one layer.
KeepSets hand_sets(int64_t head_dim, int64_t rope_dim, std::vector<Vec> per_kv_head) {
  KeepSets ks{.layers = 1,
              .kv_heads = static_cast<int64_t>(per_kv_head.size()),
              .head_dim = head_dim,
              .rope_dim = rope_dim,
              .freqs = {std::move(per_kv_head)}};
  ks.validate();
  return ks;
}

}  // namespace

TEST_CASE("partial rope: strategy names", "[mha2mla][partial_rope]") {
  using mlab::methods::parse_rope_strategy;
  CHECK(parse_rope_strategy("high") == RopeStrategy::kHigh);
  CHECK(parse_rope_strategy("low") == RopeStrategy::kLow);
  CHECK(parse_rope_strategy("uniform") == RopeStrategy::kUniform);
  CHECK(parse_rope_strategy("2norm") == RopeStrategy::kTwoNorm);
  CHECK(parse_rope_strategy("2-norm") == RopeStrategy::kTwoNorm);
  CHECK(parse_rope_strategy("mkl") == RopeStrategy::kMkl);
  CHECK(mlab::methods::rope_strategy_name(RopeStrategy::kTwoNorm) == "2norm");
  CHECK_THROWS_WITH(parse_rope_strategy("hihg"),
                    Contains("unknown partial-RoPE strategy 'hihg'; did you mean 'high'?") &&
                        Contains("known: high, low, uniform, 2norm, mkl"));
  CHECK_THROWS_AS(parse_rope_strategy("MKL"), mlab::Error);
}

TEST_CASE("partial rope: fixed strategies keep the hand-derived frequencies",
          "[mha2mla][partial_rope]") {
  using mlab::methods::fixed_keep_sets;
  // D = 128, r = 32: 16 frequencies. high = 0..15, low = 48..63, uniform step 128/32 = 4.
  const KeepSets high = fixed_keep_sets(RopeStrategy::kHigh, 3, 2, 128, 32);
  const KeepSets low = fixed_keep_sets(RopeStrategy::kLow, 3, 2, 128, 32);
  const KeepSets uni = fixed_keep_sets(RopeStrategy::kUniform, 3, 2, 128, 32);
  const KeepSets uni2 = fixed_keep_sets(RopeStrategy::kUniform, 3, 2, 128, 32, 3);
  for (const KeepSets* ks : {&high, &low, &uni, &uni2}) {
    REQUIRE_NOTHROW(ks->validate());
    CHECK(ks->layers == 3);
    CHECK(ks->kv_heads == 2);
    CHECK(ks->head_dim == 128);
    CHECK(ks->rope_dim == 32);
  }
  for (int64_t l = 0; l < 3; ++l) {
    for (int64_t g = 0; g < 2; ++g) {
      CHECK(high.freqs[l][g] == range(0, 16));
      CHECK(low.freqs[l][g] == range(48, 64));
      CHECK(uni.freqs[l][g] == range(0, 64, 4));
      CHECK(uni2.freqs[l][g] == range(3, 64, 4));
    }
  }
  // The authors' uniform mask marks dims s, s+4, ... over all 128 dims: exactly K ∪ (K + 64).
  Vec authors = range(3, 128, 4);
  CHECK(uni2.head_rope_dims(0, 0).size() == authors.size());
  Vec dims = uni2.head_rope_dims(0, 0);
  std::sort(dims.begin(), dims.end());
  CHECK(dims == authors);
  // r = D keeps everything; r = 2 keeps one frequency.
  CHECK(fixed_keep_sets(RopeStrategy::kHigh, 1, 1, 128, 128).freqs[0][0] == range(0, 64));
  CHECK(fixed_keep_sets(RopeStrategy::kLow, 1, 1, 128, 2).freqs[0][0] == Vec{63});
  CHECK(fixed_keep_sets(RopeStrategy::kUniform, 1, 1, 8, 4, 1).freqs[0][0] == Vec{1, 3});
}

TEST_CASE("partial rope: q permutation and k rows, hand case (specs §2.6)",
          "[mha2mla][partial_rope]") {
  // n_q = 2, n_kv = 1, D = 8, r = 4, K = {1, 3}: kept dims of a head {1, 3} ∪ {5, 7}.
  const KeepSets ks = hand_sets(8, 4, {Vec{1, 3}});
  CHECK(ks.head_rope_dims(0, 0) == Vec{1, 3, 5, 7});
  CHECK(ks.q_permutation(0, 2) == Vec{1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 14});
  CHECK(ks.q_rope_rows(0, 2) == Vec{1, 3, 5, 7, 9, 11, 13, 15});
  CHECK(ks.k_rope_rows(0) == Vec{1, 3, 5, 7});
  CHECK(ks.k_nope_rows(0) == Vec{0, 2, 4, 6});

  // The same set as a fixed strategy: uniform D = 8, r = 4 (step 2), start 1.
  const KeepSets uni = mlab::methods::fixed_keep_sets(RopeStrategy::kUniform, 1, 1, 8, 4, 1);
  CHECK(uni.q_permutation(0, 2) == ks.q_permutation(0, 2));
}

TEST_CASE("partial rope: GQA query heads use their KV head's set", "[mha2mla][partial_rope]") {
  // n_q = 4, n_kv = 2 (G = 2), D = 8, r = 4; KV head 0 keeps {1, 3}, KV head 1 keeps {0, 2}.
  // q heads 0, 1 -> g 0: dims {1,3,5,7}; q heads 2, 3 -> g 1: dims {0,2,4,6}.
  const KeepSets ks = hand_sets(8, 4, {Vec{1, 3}, Vec{0, 2}});
  CHECK(ks.q_permutation(0, 4) == Vec{1, 3, 5, 7, 9, 11, 13, 15, 16, 18, 20, 22, 24, 26, 28, 30,
                                      0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31});
  CHECK(ks.k_rope_rows(0) == Vec{1, 3, 5, 7, 8, 10, 12, 14});
  CHECK(ks.k_nope_rows(0) == Vec{0, 2, 4, 6, 9, 11, 13, 15});
  CHECK_THROWS_WITH(ks.q_permutation(0, 3),
                    Contains("3 query heads are not a multiple of the 2 KV heads"));

  // Generic properties on a random ranking (H = 6, H_kv = 2, D = 16, r = 6): the permutation is
  // a permutation; inside each head's kept block, element j pairs with j + r/2 at distance D/2
  // (rotate_half on the r-vector rotates the original pair (K_j, K_j + D/2)).
  at::manual_seed(7);
  const at::Tensor ranks = at::stack({at::randperm(8), at::randperm(8)}).view({1, 2, 8});
  const KeepSets r = mlab::methods::keep_sets_from_ranks(ranks, 6);
  const Vec perm = r.q_permutation(0, 6);
  Vec sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == range(0, 96));
  for (int64_t h = 0; h < 6; ++h) {
    for (int64_t j = 0; j < 3; ++j) {
      const int64_t a = perm[h * 6 + j], b = perm[h * 6 + j + 3];
      CHECK(a / 16 == h);
      CHECK(b - a == 8);
      CHECK(a % 16 == r.freqs[0][h / 3][j]);
    }
  }
  const Vec kr = r.k_rope_rows(0), kn = r.k_nope_rows(0);
  CHECK(kr.size() == 12);
  CHECK(kn.size() == 20);
  Vec all = kr;
  all.insert(all.end(), kn.begin(), kn.end());
  std::sort(all.begin(), all.end());
  CHECK(all == range(0, 32));
}

TEST_CASE("partial rope: keep-sets from ranks, both rank-file forms", "[mha2mla][partial_rope]") {
  // One row over F = 4 frequencies: rank [2, 0, 3, 1] -> r = 2 keeps {1}, r = 4 keeps {1, 3}.
  const at::Tensor half = at::tensor({2, 0, 3, 1}, at::kByte).view({1, 1, 4});
  const at::Tensor full = at::cat({half, half}, 2);
  for (const at::Tensor& t : {half, full, half.to(at::kLong)}) {
    const KeepSets ks = mlab::methods::keep_sets_from_ranks(t, 4);
    CHECK(ks.head_dim == 8);
    CHECK(ks.freqs[0][0] == Vec{1, 3});
    CHECK(mlab::methods::keep_sets_from_ranks(t, 2).freqs[0][0] == Vec{1});
    CHECK(mlab::methods::keep_sets_from_ranks(t, 8).freqs[0][0] == Vec{0, 1, 2, 3});
  }
}

TEST_CASE("partial rope: the converted MKL rank files", "[mha2mla][partial_rope]") {
  using mlab::methods::load_rank_file;
  struct Model {
    std::string file;
    int64_t layers, kv_heads;
    Vec quarters;  // kept frequencies per quarter at r = 32, summed over (l, g)
  };
  // Quarter counts as printed by tools/fixtures/check_rank_files.py (from the authors' .pth):
  // 3143/8156/3660/1425 = 19.18/49.78/22.34/8.70 %, 1860/1674/558/4 = 45.41/40.87/13.62/0.10 %,
  // 1324/466/1/1 = 73.88/26.00/0.06/0.06 % (specs §2.3: 19/50/22/9, 45/41/14/0.1, 74/26/0.1/0.1).
  const std::vector<Model> models = {
      {"llava-1.5-7b-hf.safetensors", 32, 32, {3143, 8156, 3660, 1425}},
      {"llama3-llava-next-8b-hf.safetensors", 32, 8, {1860, 1674, 558, 4}},
      {"Qwen2.5-VL-7B-Instruct.safetensors", 28, 4, {1324, 466, 1, 1}},
  };
  for (const auto& m : models) {
    INFO(m.file);
    const fs::path path = ranks_dir() / m.file;
    for (int64_t r : {8, 16, 32, 64, 128}) {
      const KeepSets ks = load_rank_file(path, r, m.layers, m.kv_heads, 128);
      REQUIRE_NOTHROW(ks.validate());
      CHECK(ks.layers == m.layers);
      CHECK(ks.kv_heads == m.kv_heads);
      CHECK(ks.head_dim == 128);
      for (const auto& layer : ks.freqs) {
        for (const auto& k : layer) CHECK(static_cast<int64_t>(k.size()) == r / 2);
      }
      if (r != 32) continue;
      Vec quarters(4, 0);
      for (const auto& layer : ks.freqs) {
        for (const auto& k : layer) {
          for (auto f : k) ++quarters[f / 16];
        }
      }
      CHECK(quarters == m.quarters);
    }
  }
  // Keep-sets at r = 32 as printed by check_rank_files.py ("r=32 K[l][g] = ...").
  auto k32 = [&](const std::string& file, int64_t L, int64_t G, int64_t l, int64_t g) {
    return load_rank_file(ranks_dir() / file, 32, L, G).freqs.at(l).at(g);
  };
  CHECK(k32("llava-1.5-7b-hf.safetensors", 32, 32, 0, 0) ==
        Vec{0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 16, 17, 22});
  CHECK(k32("llava-1.5-7b-hf.safetensors", 32, 32, 31, 31) ==
        Vec{0, 5, 10, 15, 16, 17, 19, 20, 22, 23, 24, 27, 30, 39, 42, 52});
  CHECK(k32("llama3-llava-next-8b-hf.safetensors", 32, 8, 5, 3) ==
        Vec{0, 2, 3, 4, 5, 7, 8, 10, 12, 14, 15, 17, 18, 20, 22, 38});
  CHECK(k32("Qwen2.5-VL-7B-Instruct.safetensors", 28, 4, 27, 3) ==
        Vec{0, 1, 4, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 22, 23});
  // The re-layout against the authors' construction (patching_model_load.py:reorder_matrix_rows
  // on partial_rope_mask's masks): mask = rank < r/2 over the 128-wide rank, q mask = the k mask
  // repeat_interleave'd over the G heads of a group, rows = [where(mask), where(!mask)].
  {
    const fs::path next = ranks_dir() / "llama3-llava-next-8b-hf.safetensors";
    const at::Tensor half = mlab::models::Checkpoint::open(next).get("ranks");
    const at::Tensor rank128 = at::cat({half, half}, 2).to(at::kLong);  // [32, 8, 128]
    const KeepSets ks = load_rank_file(next, 32, 32, 8);
    for (int64_t l : {0, 5, 31}) {
      const at::Tensor kmask = rank128[l].lt(16);                        // [8, 128]
      const at::Tensor qmask = kmask.repeat_interleave(4, 0).flatten();  // [32 * 128]
      const at::Tensor q = at::cat({at::where(qmask)[0], at::where(qmask.logical_not())[0]});
      const at::Tensor kf = kmask.flatten();
      auto vec = [](const at::Tensor& t) {
        const at::Tensor c = t.contiguous();
        return Vec(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
      };
      CHECK(ks.q_permutation(l, 32) == vec(q));
      CHECK(ks.k_rope_rows(l) == vec(at::where(kf)[0]));
      CHECK(ks.k_nope_rows(l) == vec(at::where(kf.logical_not())[0]));
    }
  }
  // Qwen2.5-VL by M-RoPE section, t (f 0-15) / h (16-39) / w (40-63): 1324 / 467 / 1 (specs §2.3).
  const KeepSets q = load_rank_file(ranks_dir() / "Qwen2.5-VL-7B-Instruct.safetensors", 32, 28, 4);
  Vec sections(3, 0);
  for (const auto& layer : q.freqs) {
    for (const auto& k : layer) {
      for (auto f : k) ++sections[f < 16 ? 0 : f < 40 ? 1 : 2];
    }
  }
  CHECK(sections == Vec{1324, 467, 1});
}

TEST_CASE("partial rope: rank files that do not fit are rejected",
          "[mha2mla][partial_rope][errors]") {
  using mlab::methods::load_rank_file;
  const fs::path qwen = ranks_dir() / "Qwen2.5-VL-7B-Instruct.safetensors";
  CHECK_THROWS_WITH(load_rank_file(qwen, 32, 32, 8),
                    Contains("Qwen2.5-VL-7B-Instruct.safetensors") && Contains("[28, 4, 64]") &&
                        Contains("expected [32, 8, D/2]"));
  CHECK_THROWS_WITH(load_rank_file(qwen, 32, 28, 4, 64),
                    Contains("head_dim 128") && Contains("head_dim 64"));
  CHECK_THROWS_WITH(load_rank_file(qwen, 31, 28, 4), Contains("rope_dim 31 must be even"));

  const fs::path dir = mlab::test::scratch_dir("partial_rope");
  at::Tensor bad = at::arange(8, at::kByte).repeat({2, 3, 1});  // [2, 3, 8]
  bad[1][2][5] = 4;                                             // 4 twice, 5 missing
  mlab::models::save_safetensors(dir / "bad.safetensors", {{"ranks", bad}});
  CHECK_THROWS_WITH(
      load_rank_file(dir / "bad.safetensors", 4, 2, 3),
      Contains("bad.safetensors") && Contains("ranks[1, 2, :8] is not a permutation of 0..7"));
  at::Tensor halves =
      at::cat({at::arange(4, at::kByte), at::arange(4, at::kByte)}).repeat({1, 2, 1});
  halves[0][1][6] = 3;
  halves[0][1][7] = 2;
  mlab::models::save_safetensors(dir / "halves.safetensors", {{"ranks", halves}});
  CHECK_THROWS_WITH(load_rank_file(dir / "halves.safetensors", 4, 1, 2),
                    Contains("ranks[0, 1, 4:] differs from ranks[0, 1, :4]"));
  mlab::models::save_safetensors(dir / "named.safetensors",
                                 {{"rank", at::arange(4, at::kByte).view({1, 1, 4})}});
  CHECK_THROWS_WITH(load_rank_file(dir / "named.safetensors", 4, 1, 1),
                    Contains("no tensor \"ranks\"") && Contains("it holds rank"));
  CHECK_THROWS_AS(load_rank_file(dir / "missing.safetensors", 4, 1, 1), mlab::Error);
  CHECK_THROWS_WITH(
      mlab::methods::keep_sets_from_ranks(at::arange(4, at::kFloat).view({1, 1, 4}), 2),
      Contains("integer tensor"));
  CHECK_THROWS_WITH(mlab::methods::keep_sets_from_ranks(at::arange(4).view({1, 4}), 2),
                    Contains("[layers, H_kv, D/2]"));
}

TEST_CASE("partial rope: bad sizes are rejected with the values",
          "[mha2mla][partial_rope][errors]") {
  using mlab::methods::fixed_keep_sets;
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kHigh, 2, 2, 128, 31),
                    Contains("rope_dim 31 must be even and in (0, head_dim = 128]"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kHigh, 2, 2, 128, 0), Contains("rope_dim 0"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kLow, 2, 2, 128, 130), Contains("rope_dim 130"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kHigh, 2, 2, 127, 32), Contains("head_dim 127"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kUniform, 2, 2, 128, 32, 4),
                    Contains("uniform start 4 out of range [0, 4)"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kUniform, 2, 2, 128, 32, -1),
                    Contains("uniform start -1"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kUniform, 2, 2, 128, 48),
                    Contains("48 does not divide 128"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kMkl, 2, 2, 128, 32), Contains("rank file"));
  CHECK_THROWS_WITH(fixed_keep_sets(RopeStrategy::kTwoNorm, 2, 2, 128, 32), Contains("2norm"));
  KeepSets ks = fixed_keep_sets(RopeStrategy::kHigh, 1, 1, 8, 4);
  ks.freqs[0][0] = {2, 1};
  CHECK_THROWS_WITH(ks.validate(), Contains("ascending"));
  ks.freqs[0][0] = {1};
  CHECK_THROWS_WITH(ks.validate(), Contains("keeps 1 frequencies, expected rope_dim / 2 = 2"));
  CHECK_THROWS_WITH(ks.k_rope_rows(1), Contains("(layer 1, KV head 0) out of range"));
}

TEST_CASE("partial rope: ranks from scores, descending, ties to the lower frequency",
          "[mha2mla][partial_rope]") {
  using mlab::methods::ranks_from_scores;
  // Scores [1, 3, 3, 2]: order f1, f2 (tie, lower index first), f3, f0 -> ranks [3, 0, 1, 2].
  const at::Tensor s = at::tensor({1.0, 3.0, 3.0, 2.0}, at::kDouble).view({1, 1, 4});
  const at::Tensor r = ranks_from_scores(s);
  CHECK(r.scalar_type() == at::kLong);
  CHECK(r.equal(at::tensor({3, 0, 1, 2}, at::kLong).view({1, 1, 4})));
  CHECK(ranks_from_scores(s.to(at::kFloat)).equal(r));
  // All equal: the identity.
  CHECK(ranks_from_scores(at::zeros({2, 3, 64}, at::kDouble))
            .equal(at::arange(64).expand({2, 3, 64})));
  // Random scores with many ties: deterministic, a permutation per row, and ordered.
  at::manual_seed(3);
  const at::Tensor rs = at::randint(0, 5, {4, 2, 64}, at::kDouble);
  const at::Tensor a = ranks_from_scores(rs), b = ranks_from_scores(rs.clone());
  CHECK(a.equal(b));
  CHECK(std::get<0>(a.sort(-1)).equal(at::arange(64).expand({4, 2, 64})));
  for (int64_t l = 0; l < 4; ++l) {
    for (int64_t g = 0; g < 2; ++g) {
      for (int64_t f = 0; f < 64; ++f) {
        for (int64_t e = f + 1; e < 64; ++e) {
          const double sf = rs[l][g][f].item<double>(), se = rs[l][g][e].item<double>();
          const int64_t rf = a[l][g][f].item<int64_t>(), re = a[l][g][e].item<int64_t>();
          if (sf >= se) CHECK(rf < re);  // f < e: a tie goes to f
          if (sf < se) CHECK(rf > re);
        }
      }
    }
  }
  // Round trip: scores -> ranks -> keep-sets keep the r/2 best.
  const KeepSets ks = mlab::methods::keep_sets_from_ranks(ranks_from_scores(s), 4);
  CHECK(ks.freqs[0][0] == Vec{1, 2});
  at::Tensor nan = s.clone();
  nan[0][0][2] = std::nan("");
  CHECK_THROWS_WITH(ranks_from_scores(nan), Contains("NaN score at [0, 0, 2]"));
  CHECK_THROWS_WITH(ranks_from_scores(at::zeros({1, 4}, at::kDouble)),
                    Contains("[layers, H_kv, F]"));
  CHECK_THROWS_WITH(ranks_from_scores(at::zeros({1, 1, 4}, at::kLong)), Contains("f32 or f64"));
}

TEST_CASE("partial rope: 2-norm scores equal a brute-force computation (Eq. 1)",
          "[mha2mla][partial_rope]") {
  const int64_t layers = 2, H = 4, Hk = 2, D = 6, F = 3, G = 2;
  mlab::methods::TwoNormScorer scorer(layers, H, Hk, D);
  at::manual_seed(11);
  std::vector<at::Tensor> qs, ks;
  for (int64_t T : {5, 2}) {  // two sequences of layer 1 with different lengths
    qs.push_back(at::randn({T, H, D}));
    ks.push_back(at::randn({T, Hk, D}));
    scorer.add(1, qs.back(), ks.back());
  }
  CHECK(scorer.sequences(0) == 0);
  CHECK(scorer.sequences(1) == 2);
  const at::Tensor s = scorer.scores();
  REQUIRE(s.sizes() == at::IntArrayRef({layers, Hk, F}));
  CHECK(s.scalar_type() == at::kDouble);
  CHECK(s[0].abs().max().item<double>() == 0.0);  // layer 0 never seen

  // Brute force: per sequence the token mean of sqrt(x[f]^2 + x[f+F]^2), then the mean over
  // sequences; score[g, f] = sum over q heads h of group g (h / G == g) of Qbar[h, f] * Kbar[g, f].
  auto pair_norm = [](const at::Tensor& x, int64_t t, int64_t h, int64_t f, int64_t half) {
    const double a = x[t][h][f].item<double>(), b = x[t][h][f + half].item<double>();
    return std::sqrt(a * a + b * b);
  };
  for (int64_t g = 0; g < Hk; ++g) {
    for (int64_t f = 0; f < F; ++f) {
      double kbar = 0.0;
      std::vector<double> qbar(H, 0.0);
      for (std::size_t n = 0; n < qs.size(); ++n) {
        const int64_t T = qs[n].size(0);
        double km = 0.0;
        for (int64_t t = 0; t < T; ++t) km += pair_norm(ks[n], t, g, f, F);
        kbar += km / static_cast<double>(T) / 2.0;
        for (int64_t h = 0; h < H; ++h) {
          double qm = 0.0;
          for (int64_t t = 0; t < T; ++t) qm += pair_norm(qs[n], t, h, f, F);
          qbar[h] += qm / static_cast<double>(T) / 2.0;
        }
      }
      double want = 0.0;
      for (int64_t h = 0; h < H; ++h) {
        if (h / G == g) want += qbar[h] * kbar;
      }
      CHECK(s[1][g][f].item<double>() == Approx(want).epsilon(1e-6));
    }
  }
  // Rotation invariance: rotating every pair by any angle leaves the scores unchanged.
  mlab::methods::TwoNormScorer rotated(layers, H, Hk, D);
  auto rotate = [&](const at::Tensor& x) {
    const at::Tensor a = x.narrow(2, 0, F), b = x.narrow(2, F, F),
                     th = at::rand({x.size(0), 1, F}) * 6.0;
    return at::cat({a * th.cos() - b * th.sin(), a * th.sin() + b * th.cos()}, 2);
  };
  for (std::size_t n = 0; n < qs.size(); ++n) rotated.add(1, rotate(qs[n]), rotate(ks[n]));
  CHECK(at::allclose(rotated.scores(), s, 1e-5, 1e-6));

  CHECK_THROWS_WITH(scorer.add(2, qs[0], ks[0]), Contains("layer 2 out of range [0, 2)"));
  CHECK_THROWS_WITH(scorer.add(0, ks[0], ks[0]),
                    Contains("q must be [T >= 1, 4, 6], got [5, 2, 6]"));
  CHECK_THROWS_WITH(scorer.add(0, qs[0], ks[1]), Contains("k must be [5, 2, 6], got [2, 2, 6]"));
  CHECK_THROWS_WITH(mlab::methods::TwoNormScorer(1, 3, 2, 6), Contains("q heads 3, KV heads 2"));
}
