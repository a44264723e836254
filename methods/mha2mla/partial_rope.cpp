#include "methods/mha2mla/partial_rope.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <utility>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "models/io/checkpoint.hpp"

namespace mlab::methods {
namespace {

const std::vector<std::pair<std::string, RopeStrategy>>& strategy_names() {
  static const std::vector<std::pair<std::string, RopeStrategy>> names = {
      {"high", RopeStrategy::kHigh},
      {"low", RopeStrategy::kLow},
      {"uniform", RopeStrategy::kUniform},
      {"2norm", RopeStrategy::kTwoNorm},
      {"mkl", RopeStrategy::kMkl}};
  return names;
}

std::string shape_str(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

void check_dims(int64_t head_dim, int64_t rope_dim) {
  MLAB_CHECK(head_dim > 0 && head_dim % 2 == 0, "partial RoPE: head_dim ", head_dim,
             " must be positive and even");
  MLAB_CHECK(rope_dim > 0 && rope_dim % 2 == 0 && rope_dim <= head_dim, "partial RoPE: rope_dim ",
             rope_dim, " must be even and in (0, head_dim = ", head_dim, "]");
}

// True when row[0 .. n) holds every value 0 .. n-1 exactly once.
bool is_permutation(const int64_t* row, int64_t n) {
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = row[i];
    if (v < 0 || v >= n || seen[static_cast<std::size_t>(v)]) return false;
    seen[static_cast<std::size_t>(v)] = 1;
  }
  return true;
}

}  // namespace

RopeStrategy parse_rope_strategy(std::string_view name) {
  if (name == "2-norm") return RopeStrategy::kTwoNorm;
  std::vector<std::string> known;
  for (const auto& [n, s] : strategy_names()) {
    if (n == name) return s;
    known.push_back(n);
  }
  MLAB_FAIL(unknown_name_message("partial-RoPE strategy", name, known));
}

std::string rope_strategy_name(RopeStrategy strategy) {
  for (const auto& [n, s] : strategy_names()) {
    if (s == strategy) return n;
  }
  MLAB_FAIL("partial RoPE: invalid strategy value ", static_cast<int>(strategy));
}

// ---------------------------------------------------------------------------------------------
// KeepSets

void KeepSets::validate() const {
  check_dims(head_dim, rope_dim);
  MLAB_CHECK(layers >= 0 && kv_heads > 0, "partial RoPE: keep-sets with ", layers, " layers and ",
             kv_heads, " KV heads");
  MLAB_CHECK(static_cast<int64_t>(freqs.size()) == layers, "partial RoPE: keep-sets hold ",
             freqs.size(), " layers, expected ", layers);
  const int64_t F = head_dim / 2, n = rope_dim / 2;
  for (int64_t l = 0; l < layers; ++l) {
    MLAB_CHECK(static_cast<int64_t>(freqs[l].size()) == kv_heads, "partial RoPE: layer ", l,
               " holds ", freqs[l].size(), " KV-head sets, expected ", kv_heads);
    for (int64_t g = 0; g < kv_heads; ++g) {
      const auto& k = freqs[l][g];
      MLAB_CHECK(static_cast<int64_t>(k.size()) == n, "partial RoPE: layer ", l, " KV head ", g,
                 " keeps ", k.size(), " frequencies, expected rope_dim / 2 = ", n);
      for (std::size_t i = 0; i < k.size(); ++i) {
        MLAB_CHECK(k[i] >= 0 && k[i] < F && (i == 0 || k[i - 1] < k[i]), "partial RoPE: layer ", l,
                   " KV head ", g, ": kept frequencies must be ascending, distinct, in [0, ", F,
                   "); position ", i, " holds ", k[i]);
      }
    }
  }
}

std::vector<int64_t> KeepSets::head_rope_dims(int64_t layer, int64_t kv_head) const {
  MLAB_CHECK(layer >= 0 && layer < layers && kv_head >= 0 && kv_head < kv_heads,
             "partial RoPE: (layer ", layer, ", KV head ", kv_head, ") out of range [0, ", layers,
             ") x [0, ", kv_heads, ")");
  const auto& k = freqs[layer][kv_head];
  std::vector<int64_t> dims(k.begin(), k.end());
  for (auto f : k) dims.push_back(f + head_dim / 2);
  return dims;
}

std::vector<int64_t> KeepSets::q_permutation(int64_t layer, int64_t q_heads) const {
  MLAB_CHECK(q_heads > 0 && q_heads % kv_heads == 0, "partial RoPE: ", q_heads,
             " query heads are not a multiple of the ", kv_heads, " KV heads");
  const int64_t G = q_heads / kv_heads;
  std::vector<int64_t> perm;
  perm.reserve(static_cast<std::size_t>(q_heads * head_dim));
  std::vector<std::vector<int64_t>> rope(static_cast<std::size_t>(kv_heads));
  for (int64_t g = 0; g < kv_heads; ++g) rope[g] = head_rope_dims(layer, g);
  for (int64_t h = 0; h < q_heads; ++h) {
    for (auto d : rope[h / G]) perm.push_back(h * head_dim + d);
  }
  for (int64_t h = 0; h < q_heads; ++h) {
    std::vector<char> kept(static_cast<std::size_t>(head_dim), 0);
    for (auto d : rope[h / G]) kept[d] = 1;
    for (int64_t d = 0; d < head_dim; ++d) {
      if (!kept[d]) perm.push_back(h * head_dim + d);
    }
  }
  return perm;
}

std::vector<int64_t> KeepSets::q_rope_rows(int64_t layer, int64_t q_heads) const {
  std::vector<int64_t> perm = q_permutation(layer, q_heads);
  perm.resize(static_cast<std::size_t>(q_heads * rope_dim));
  return perm;
}

std::vector<int64_t> KeepSets::k_rope_rows(int64_t layer) const {
  std::vector<int64_t> rows;
  for (int64_t g = 0; g < kv_heads; ++g) {
    for (auto d : head_rope_dims(layer, g)) rows.push_back(g * head_dim + d);
  }
  return rows;
}

std::vector<int64_t> KeepSets::k_nope_rows(int64_t layer) const {
  std::vector<int64_t> rows;
  for (int64_t g = 0; g < kv_heads; ++g) {
    std::vector<char> kept(static_cast<std::size_t>(head_dim), 0);
    for (auto d : head_rope_dims(layer, g)) kept[d] = 1;
    for (int64_t d = 0; d < head_dim; ++d) {
      if (!kept[d]) rows.push_back(g * head_dim + d);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Keep-sets

KeepSets fixed_keep_sets(RopeStrategy strategy, int64_t layers, int64_t kv_heads, int64_t head_dim,
                         int64_t rope_dim, int64_t uniform_start) {
  check_dims(head_dim, rope_dim);
  MLAB_CHECK(layers >= 0 && kv_heads > 0, "partial RoPE: ", layers, " layers and ", kv_heads,
             " KV heads");
  const int64_t F = head_dim / 2, n = rope_dim / 2;
  std::vector<int64_t> k(static_cast<std::size_t>(n));
  switch (strategy) {
    case RopeStrategy::kHigh:
      std::iota(k.begin(), k.end(), int64_t{0});
      break;
    case RopeStrategy::kLow:
      std::iota(k.begin(), k.end(), F - n);
      break;
    case RopeStrategy::kUniform: {
      // The authors' loop `for i in range(s, D, D // r): mask[i] = 1` keeps exactly r dims,
      // paired across the halves, only when r divides D and s < step.
      MLAB_CHECK(head_dim % rope_dim == 0,
                 "partial RoPE: uniform needs rope_dim dividing head_dim (", rope_dim,
                 " does not divide ", head_dim, ")");
      const int64_t step = head_dim / rope_dim;
      MLAB_CHECK(uniform_start >= 0 && uniform_start < step, "partial RoPE: uniform start ",
                 uniform_start, " out of range [0, ", step,
                 ") (step = head_dim / rope_dim = ", head_dim, " / ", rope_dim, ")");
      for (int64_t i = 0; i < n; ++i) k[i] = uniform_start + i * step;
      break;
    }
    case RopeStrategy::kTwoNorm:
    case RopeStrategy::kMkl:
      MLAB_FAIL("partial RoPE: strategy ", rope_strategy_name(strategy),
                " ranks frequencies per layer and KV head: it needs scores or a rank file, not a "
                "fixed keep-set");
  }
  KeepSets ks{.layers = layers,
              .kv_heads = kv_heads,
              .head_dim = head_dim,
              .rope_dim = rope_dim,
              .freqs = {}};
  ks.freqs.assign(static_cast<std::size_t>(layers),
                  std::vector<std::vector<int64_t>>(static_cast<std::size_t>(kv_heads), k));
  return ks;
}

KeepSets keep_sets_from_ranks(const at::Tensor& ranks, int64_t rope_dim) {
  MLAB_CHECK(ranks.defined() && ranks.dim() == 3, "partial RoPE: ranks must be [layers, H_kv, D/2]",
             " or [layers, H_kv, D], got ", ranks.defined() ? shape_str(ranks) : "undefined");
  const auto st = ranks.scalar_type();
  MLAB_CHECK(st == at::kByte || st == at::kShort || st == at::kInt || st == at::kLong,
             "partial RoPE: ranks must be an integer tensor (u8, i16, i32, i64), got ", st);
  const int64_t L = ranks.size(0), G = ranks.size(1), X = ranks.size(2);
  MLAB_CHECK(G > 0 && X > 0, "partial RoPE: empty ranks ", shape_str(ranks));
  const at::Tensor r = ranks.to(at::kCPU, at::kLong).contiguous();
  const int64_t* p = r.data_ptr<int64_t>();
  // The authors' form repeats the ranks; a permutation never repeats, so equal halves (in the
  // first row) identify it.
  const bool doubled = X % 2 == 0 && std::equal(p, p + X / 2, p + X / 2);
  const int64_t F = doubled ? X / 2 : X;
  check_dims(2 * F, rope_dim);
  const int64_t n = rope_dim / 2;
  KeepSets ks{.layers = L, .kv_heads = G, .head_dim = 2 * F, .rope_dim = rope_dim, .freqs = {}};
  ks.freqs.assign(static_cast<std::size_t>(L),
                  std::vector<std::vector<int64_t>>(static_cast<std::size_t>(G)));
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t g = 0; g < G; ++g) {
      const int64_t* row = p + (l * G + g) * X;
      MLAB_CHECK(is_permutation(row, F), "partial RoPE: ranks[", l, ", ", g, ", :", F,
                 "] is not a permutation of 0..", F - 1, " (ranks ", shape_str(ranks), ")");
      MLAB_CHECK(!doubled || std::equal(row, row + F, row + F), "partial RoPE: ranks[", l, ", ", g,
                 ", ", F, ":] differs from ranks[", l, ", ", g, ", :", F,
                 "] (the [layers, H_kv, D] form repeats the ranks of frequency f at f + D/2)");
      auto& k = ks.freqs[l][g];
      for (int64_t f = 0; f < F; ++f) {
        if (row[f] < n) k.push_back(f);
      }
    }
  }
  return ks;
}

KeepSets load_rank_file(const std::filesystem::path& path, int64_t rope_dim, int64_t expect_layers,
                        int64_t expect_kv_heads, int64_t expect_head_dim) {
  const models::Checkpoint ckpt = models::Checkpoint::open(path);
  MLAB_CHECK(ckpt.contains("ranks"), "rank file ", path.string(),
             ": no tensor \"ranks\" (it holds ", join(ckpt.names(), ", "), ")");
  const at::Tensor ranks = ckpt.get("ranks");
  MLAB_CHECK(ranks.dim() == 3 && ranks.size(0) == expect_layers && ranks.size(1) == expect_kv_heads,
             "rank file ", path.string(), ": ranks ", shape_str(ranks),
             " do not fit the model: expected [", expect_layers, ", ", expect_kv_heads,
             ", D/2] (layers, KV heads)");
  try {
    KeepSets ks = keep_sets_from_ranks(ranks, rope_dim);
    MLAB_CHECK(expect_head_dim <= 0 || ks.head_dim == expect_head_dim, "ranks ", shape_str(ranks),
               " rank D/2 = ", ks.head_dim / 2, " frequencies (head_dim ", ks.head_dim,
               ") but the model has head_dim ", expect_head_dim);
    return ks;
  } catch (const Error& e) {
    MLAB_FAIL("rank file ", path.string(), ": ", e.what());
  }
}

at::Tensor ranks_from_scores(const at::Tensor& scores) {
  MLAB_CHECK(scores.defined() && scores.dim() == 3,
             "partial RoPE: scores must be [layers, H_kv, F]", ", got ",
             scores.defined() ? shape_str(scores) : "undefined");
  MLAB_CHECK(scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kDouble,
             "partial RoPE: scores must be f32 or f64, got ", scores.scalar_type());
  const at::Tensor s = scores.to(at::kCPU, at::kDouble).contiguous();
  const int64_t rows = s.size(0) * s.size(1), F = s.size(2);
  at::Tensor out = at::empty(s.sizes(), at::TensorOptions().dtype(at::kLong));
  const double* sp = s.data_ptr<double>();
  int64_t* op = out.data_ptr<int64_t>();
  std::vector<int64_t> order(static_cast<std::size_t>(F));
  for (int64_t i = 0; i < rows; ++i) {
    const double* row = sp + i * F;
    for (int64_t f = 0; f < F; ++f) {
      MLAB_CHECK(!std::isnan(row[f]), "partial RoPE: NaN score at [", i / s.size(1), ", ",
                 i % s.size(1), ", ", f, "]");
    }
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [row](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int64_t pos = 0; pos < F; ++pos) op[i * F + order[pos]] = pos;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// TwoNormScorer

TwoNormScorer::TwoNormScorer(int64_t layers, int64_t q_heads, int64_t kv_heads, int64_t head_dim)
    : layers_(layers), q_heads_(q_heads), kv_heads_(kv_heads), head_dim_(head_dim) {
  MLAB_CHECK(layers > 0 && kv_heads > 0 && q_heads > 0 && q_heads % kv_heads == 0 && head_dim > 0 &&
                 head_dim % 2 == 0,
             "TwoNormScorer: bad sizes (layers ", layers, ", q heads ", q_heads, ", KV heads ",
             kv_heads, ", head_dim ", head_dim, ")");
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  q_sum_ = at::zeros({layers, q_heads, head_dim / 2}, opts);
  k_sum_ = at::zeros({layers, kv_heads, head_dim / 2}, opts);
  count_.assign(static_cast<std::size_t>(layers), 0);
}

namespace {
// f64 [heads, D/2] on the CPU: the token mean of the pair norms of x [T, heads, D].
at::Tensor mean_pair_norms(const at::Tensor& x) {
  const int64_t F = x.size(2) / 2;
  const at::Tensor xd = x.to(at::kDouble);
  const at::Tensor a = xd.narrow(2, 0, F), b = xd.narrow(2, F, F);
  return (a * a + b * b).sqrt().mean(0).cpu();
}
}  // namespace

void TwoNormScorer::add(int64_t layer, const at::Tensor& q, const at::Tensor& k) {
  MLAB_CHECK(layer >= 0 && layer < layers_, "TwoNormScorer: layer ", layer, " out of range [0, ",
             layers_, ")");
  MLAB_CHECK(q.defined() && q.dim() == 3 && q.size(0) > 0 && q.size(1) == q_heads_ &&
                 q.size(2) == head_dim_,
             "TwoNormScorer: q must be [T >= 1, ", q_heads_, ", ", head_dim_, "], got ",
             q.defined() ? shape_str(q) : "undefined");
  MLAB_CHECK(k.defined() && k.dim() == 3 && k.size(0) == q.size(0) && k.size(1) == kv_heads_ &&
                 k.size(2) == head_dim_,
             "TwoNormScorer: k must be [", q.size(0), ", ", kv_heads_, ", ", head_dim_, "], got ",
             k.defined() ? shape_str(k) : "undefined");
  q_sum_[layer] += mean_pair_norms(q);
  k_sum_[layer] += mean_pair_norms(k);
  ++count_[layer];
}

at::Tensor TwoNormScorer::scores() const {
  const int64_t F = head_dim_ / 2, G = q_heads_ / kv_heads_;
  const at::Tensor n = at::tensor(count_, at::TensorOptions().dtype(at::kLong))
                           .to(at::kDouble)
                           .clamp_min(1.0)
                           .view({layers_, 1, 1});
  const at::Tensor qbar = q_sum_ / n, kbar = k_sum_ / n;
  // Σ over the G query heads of group g (q heads gG … gG+G-1, HF repeat_kv order).
  const at::Tensor qgroup = qbar.view({layers_, kv_heads_, G, F}).sum(2);
  return qgroup * kbar;
}

int64_t TwoNormScorer::sequences(int64_t layer) const {
  MLAB_CHECK(layer >= 0 && layer < layers_, "TwoNormScorer: layer ", layer, " out of range [0, ",
             layers_, ")");
  return count_[layer];
}

}  // namespace mlab::methods
