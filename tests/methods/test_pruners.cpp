// Token pruning (F7, specs/baselines.md §4-§7): H2O, TOVA and StreamingLLM as TokenPruners.
//   - the hand-derived cases T7 (H2O real drop), T8 (EasyKV per-token eviction), T9 (TOVA),
//   - a plain-C++ f64 reference of each policy's definition driven through a real DenseKvCache
//     (prefill with left padding, decode steps, GQA, deliberate ties),
//   - kvpress's own presses (tests/data/pruning, tools/fixtures/make_pruning_fixtures.py).
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "methods/h2o/h2o_pruner.hpp"
#include "methods/score_pruner.hpp"
#include "methods/streaming_llm/streaming_llm_pruner.hpp"
#include "methods/tova/tova_pruner.hpp"
#include "models/io/safetensors.hpp"
#include "models/io/tensor_io.hpp"
#include "models/runtime/dense_kv_cache.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

using mlab::methods::H2oOptions;
using mlab::methods::H2oPruner;
using mlab::methods::PruneBudget;
using mlab::methods::ScorePruner;
using mlab::methods::StreamingLlmOptions;
using mlab::methods::StreamingLlmPruner;
using mlab::methods::TovaOptions;
using mlab::methods::TovaPruner;
using mlab::models::AttentionStat;
using Vec = std::vector<int64_t>;

// f32 [1, 1, n] statistic of one head.
at::Tensor row(std::vector<float> values) {
  const auto n = static_cast<int64_t>(values.size());
  return at::tensor(at::ArrayRef<float>(values)).view({1, 1, n});
}

Vec to_vec(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous().view(-1);
  return Vec(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous().view(-1);
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// `positions` of the slots at `keep` (1-D).
Vec gather(const Vec& positions, const Vec& keep) {
  Vec out;
  for (int64_t k : keep) out.push_back(positions.at(k));
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options, names, budget arithmetic.

TEST_CASE("pruners: from_options defaults and canonical names", "[pruners]") {
  auto h2o = H2oPruner::from_options({{"budget", "0.5"}});
  CHECK(
      h2o->name() ==
      "h2o:budget=0.5,sink=4,recent=0,recent_ratio=0.1,protect_image=0,per_kv_head=1,normalize=0");
  CHECK(h2o->stat() == AttentionStat::kQuerySum);
  CHECK(h2o->budget().sink == 4);
  CHECK(h2o->options().per_kv_head);
  auto h2o2 = H2oPruner::from_options({{"tokens", "64"},
                                       {"sink", "0"},
                                       {"recent", "3"},
                                       {"recent_ratio", "0"},
                                       {"protect_image", "1"},
                                       {"per_kv_head", "0"},
                                       {"normalize", "1"}});
  CHECK(h2o2->name() ==
        "h2o:tokens=64,sink=0,recent=3,recent_ratio=0,protect_image=1,per_kv_head=0,normalize=1");
  auto tova = TovaPruner::from_options({{"budget", "0.375"}});
  CHECK(tova->name() == "tova:budget=0.375,sink=0,recent=0,recent_ratio=0,protect_image=0");
  CHECK(tova->stat() == AttentionStat::kLastQuery);
  auto streaming = StreamingLlmPruner::from_options({{"budget", "0.25"}});
  CHECK(streaming->name() == "streaming_llm:budget=0.25,sink=4");
  CHECK(streaming->stat() == AttentionStat::kNone);
  CHECK(StreamingLlmPruner::from_options({{"tokens", "32"}, {"sink", "2"}})->name() ==
        "streaming_llm:tokens=32,sink=2");

  CHECK_THROWS_AS(H2oPruner::from_options({{"budget", "half"}}), mlab::Error);
  CHECK_THROWS_AS(TovaPruner::from_options({{"budget", "0.5"}, {"sink", "1.5"}}), mlab::Error);
  CHECK_THROWS_AS(TovaPruner::from_options({}), mlab::Error);  // no budget at all
}

TEST_CASE("pruners: capacity is floor(ratio * seen), at least one, and the recent window",
          "[pruners]") {
  TovaPruner ratio(TovaOptions{.budget = {.ratio = 1.0 - 0.4}});
  CHECK(ratio.capacity(5) == 3);  // kvpress int(5 * (1 - 0.4))
  CHECK(ratio.capacity(1) == 1);
  CHECK(ratio.capacity(100) == 60);
  TovaPruner fixed(TovaOptions{.budget = {.tokens = 7, .recent = 2, .recent_ratio = 0.25}});
  CHECK(fixed.capacity(3) == 7);
  CHECK(fixed.capacity(1000) == 7);
  CHECK(fixed.recent_window(7) == 2 + 1);
  H2oPruner easykv(H2oOptions{.budget = {.tokens = 1088, .sink = 4, .recent_ratio = 0.1}});
  CHECK(easykv.recent_window(1088) == 108);  // T10: int(0.1 * Bgt)
}

TEST_CASE("pruners: ties evict the older slot first, padding goes first", "[pruners]") {
  TovaPruner p(TovaOptions{.budget = {.tokens = 2}});
  at::Tensor keep = p.select(row({0.25f, 0.25f, 0.25f, 0.25f}), {}, {}, 4, 1);
  CHECK(to_vec(keep) == Vec{2, 3});
  TovaPruner q(TovaOptions{.budget = {.tokens = 2}});
  const at::Tensor valid = at::tensor({1, 1, 1, 0}).to(at::kBool).view({1, 1, 4});
  keep = q.select(row({0.1f, 0.3f, 0.3f, 0.3f}), valid, {}, 4, 1);
  CHECK(to_vec(keep) == Vec{1, 2});
  StreamingLlmPruner s(StreamingLlmOptions{.budget = {.tokens = 3, .sink = 1}});
  keep = s.select({}, at::tensor({0, 1, 1, 1, 1, 1}).to(at::kBool).view({1, 1, 6}), {}, 6, 1);
  CHECK(to_vec(keep) == Vec{1, 4, 5});  // the first valid token is the sink
}

TEST_CASE("pruners: more protected slots than the cap: sinks, then recent, then image",
          "[pruners]") {
  // 8 slots, cap 3: sinks {0, 1}, recent {6, 7}, image {3, 4}; the lowest tier goes first, equal
  // scores in the recent window keep the newer slot.
  TovaPruner p(TovaOptions{.budget = {.tokens = 3, .sink = 2, .recent = 2, .protect_image = true}});
  const at::Tensor image = at::tensor({0, 0, 0, 1, 1, 0, 0, 0}).to(at::kBool);
  at::Tensor keep = p.select(row({0.1f, 0.1f, 0.3f, 0.2f, 0.2f, 0.0f, 0.05f, 0.05f}), {},
                             image.view({1, 8}), 8, 1);
  CHECK(to_vec(keep) == Vec{0, 1, 7});
  TovaPruner q(TovaOptions{.budget = {.tokens = 6, .sink = 2, .recent = 2, .protect_image = true}});
  keep = q.select(row({0.1f, 0.1f, 0.3f, 0.2f, 0.2f, 0.9f, 0.05f, 0.05f}), {}, image.view({1, 8}),
                  8, 1);
  CHECK(to_vec(keep) == Vec{0, 1, 3, 4, 6, 7});  // slot 5's 0.9 does not beat the image tier
}

// ---------------------------------------------------------------------------------------------
// specs/baselines.md §7, hand-derived cases.

TEST_CASE("h2o: T7 real drop, prefill then one decode step", "[pruners][h2o]") {
  // 1 head, hh_size 2 + recent 2 = cache 4, no sinks.
  H2oPruner p(H2oOptions{.budget = {.tokens = 4, .sink = 0, .recent = 2, .recent_ratio = 0}});
  Vec tokens{0, 1, 2, 3, 4};
  at::Tensor keep = p.select(row({2.2f, 1.4f, 0.6f, 0.5f, 0.3f}), {}, {}, 5, 1);
  REQUIRE(keep.defined());
  CHECK(keep.sizes() == at::IntArrayRef({1, 1, 4}));
  tokens = gather(tokens, to_vec(keep));
  CHECK(tokens == Vec{0, 1, 3, 4});
  check_close(to_doubles(p.accumulated()), {2.2, 1.4, 0.5, 0.3}, 1e-6);

  tokens.push_back(5);
  keep = p.select(row({0.1f, 0.2f, 0.3f, 0.1f, 0.3f}), {}, {}, 1, 1);
  REQUIRE(keep.defined());
  tokens = gather(tokens, to_vec(keep));
  CHECK(tokens == Vec{0, 1, 4, 5});
  check_close(to_doubles(p.accumulated()), {2.3, 1.6, 0.4, 0.3}, 1e-6);
}

namespace {

// T8: EasyKV encoding, stride 1, sink 1, recent 1, idx 4: tokens 0..3 enter without scores
// (keep_attention = False: their statistic is zero), then t = 4 and t = 5 as single-token appends.
Vec run_t8(ScorePruner& p, std::vector<double>* accumulated_after_t4 = nullptr,
           const H2oPruner* h2o = nullptr) {
  Vec tokens;
  for (int64_t t = 0; t < 4; ++t) {
    tokens.push_back(t);
    const at::Tensor none = at::zeros({1, 1, t + 1});
    REQUIRE_FALSE(p.select(none, {}, {}, 1, 1).defined());
  }
  tokens.push_back(4);
  at::Tensor keep = p.select(row({0.30f, 0.10f, 0.25f, 0.15f, 0.20f}), {}, {}, 1, 1);
  REQUIRE(keep.defined());
  tokens = gather(tokens, to_vec(keep));
  CHECK(tokens == Vec{0, 2, 3, 4});
  if (accumulated_after_t4 != nullptr) *accumulated_after_t4 = to_doubles(h2o->accumulated());
  tokens.push_back(5);
  keep = p.select(row({0.38f, 0.02f, 0.10f, 0.20f, 0.30f}), {}, {}, 1, 1);
  REQUIRE(keep.defined());
  return gather(tokens, to_vec(keep));
}

}  // namespace

TEST_CASE("h2o / tova: T8 EasyKV per-token eviction with a token budget", "[pruners][h2o][tova]") {
  const PruneBudget budget{.tokens = 4, .sink = 1, .recent = 1, .recent_ratio = 0};
  H2oPruner h2o(H2oOptions{.budget = budget});
  std::vector<double> after_t4;
  CHECK(run_t8(h2o, &after_t4, &h2o) == Vec{0, 2, 4, 5});
  check_close(after_t4, {0.30, 0.25, 0.15, 0.20}, 1e-6);
  check_close(to_doubles(h2o.accumulated()), {0.68, 0.27, 0.40, 0.30}, 1e-6);

  TovaPruner tova(TovaOptions{.budget = budget});
  CHECK(run_t8(tova) == Vec{0, 3, 4, 5});
}

TEST_CASE("tova: T9 official keep set and the kvpress-style last-token protection",
          "[pruners][tova]") {
  // 2 query heads, 1 KV head, n = 5; the last query's rows.
  const at::Tensor stat =
      at::tensor({0.10f, 0.30f, 0.05f, 0.15f, 0.40f, 0.30f, 0.12f, 0.23f, 0.05f, 0.30f})
          .view({1, 2, 5});
  TovaPruner official(TovaOptions{.budget = {.tokens = 3}});
  CHECK(to_vec(official.select(stat, {}, {}, 5, 1)) == Vec{0, 1, 4});
  TovaPruner kvpress(TovaOptions{.budget = {.ratio = 1.0 - 0.4, .recent = 1}});
  CHECK(to_vec(kvpress.select(stat, {}, {}, 5, 1)) == Vec{0, 1, 4});
  // Per-layer sets are repeated for every KV head the cache has.
  TovaPruner wide(TovaOptions{.budget = {.tokens = 3}});
  const at::Tensor keep = wide.select(stat, {}, {}, 5, 2);
  CHECK(keep.sizes() == at::IntArrayRef({1, 2, 3}));
  CHECK(to_vec(keep) == Vec{0, 1, 4, 0, 1, 4});
}

// ---------------------------------------------------------------------------------------------
// Brute force: a plain f64 reference of each policy, against the pruner driving a DenseKvCache.

namespace {

enum class Policy { kH2o, kTova, kStreaming };

struct Config {
  std::string label;
  Policy policy = Policy::kH2o;
  PruneBudget budget;
  bool per_kv_head = true;
  bool normalize = false;
};

std::unique_ptr<ScorePruner> make_pruner(const Config& c) {
  switch (c.policy) {
    case Policy::kH2o:
      return std::make_unique<H2oPruner>(
          H2oOptions{.budget = c.budget, .per_kv_head = c.per_kv_head, .normalize = c.normalize});
    case Policy::kTova:
      return std::make_unique<TovaPruner>(TovaOptions{.budget = c.budget});
    case Policy::kStreaming:
      return std::make_unique<StreamingLlmPruner>(StreamingLlmOptions{.budget = c.budget});
  }
  return nullptr;
}

struct Slot {
  int64_t pos = 0;
  bool valid = true;
  bool image = false;
  double acc = 0;        // H2O: accumulated attention (mean over the set's heads)
  double observers = 0;  // H2O normalize: valid queries at or after the slot
  double score = 0;
};

// The policies' definitions with loops over std::vector in f64 (specs/baselines.md §4.3, §5.4,
// StreamingLLM), including attention itself over each set's slots.
class Reference {
 public:
  Reference(Config c, at::Tensor q, at::Tensor k, std::vector<std::vector<bool>> valid,
            std::vector<std::vector<bool>> image)
      : c_(std::move(c)),
        q_(q.to(at::kDouble).contiguous()),
        k_(k.to(at::kDouble).contiguous()),
        valid_(std::move(valid)),
        image_(std::move(image)) {
    B_ = q_.size(0);
    H_ = q_.size(1);
    D_ = q_.size(3);
    Hkv_ = k_.size(1);
    sets_ = (c_.policy == Policy::kH2o && c_.per_kv_head) ? Hkv_ : 1;
    scale_ = 1.0 / std::sqrt(static_cast<double>(D_));
    slots_.assign(B_, std::vector<std::vector<Slot>>(sets_));
  }

  int64_t sets() const { return sets_; }
  int64_t decisive_ties() const { return decisive_ties_; }
  int64_t evictions() const { return evictions_; }
  const std::vector<Slot>& slots(int64_t b, int64_t set) const { return slots_[b][set]; }

  int64_t capacity() const {
    if (c_.budget.tokens > 0) return c_.budget.tokens;
    return std::max<int64_t>(1, static_cast<int64_t>(std::floor(c_.budget.ratio * seen_)));
  }

  // The forward of tokens [start, start + len).
  void forward(int64_t start, int64_t len) {
    seen_ += len;
    const auto q = q_.accessor<double, 4>();
    const auto k = k_.accessor<double, 4>();
    const int64_t G = H_ / Hkv_;
    for (int64_t b = 0; b < B_; ++b) {
      for (int64_t s = 0; s < sets_; ++s) {
        for (int64_t p = start; p < start + len; ++p) {
          slots_[b][s].push_back({.pos = p, .valid = valid_[b][p], .image = image_[b][p]});
        }
      }
      for (int64_t s = 0; s < sets_; ++s) {
        std::vector<Slot>& slots = slots_[b][s];
        const auto n = static_cast<int64_t>(slots.size());
        // Heads attending over this set: its group (per KV head) or all of them.
        const int64_t h0 = sets_ > 1 ? s * G : 0, h1 = sets_ > 1 ? (s + 1) * G : H_;
        std::vector<double> sum(n, 0.0), last(n, 0.0);
        for (int64_t h = h0; h < h1; ++h) {
          const int64_t g = h / G;
          for (int64_t p = start; p < start + len; ++p) {
            std::vector<double> logit(n, -INFINITY);
            for (int64_t j = 0; j < n; ++j) {
              const bool self = slots[j].pos == p;
              const bool seen = valid_[b][p] && slots[j].valid && slots[j].pos <= p;
              if (!self && !seen) continue;
              double dot = 0;
              for (int64_t d = 0; d < D_; ++d) dot += q[b][h][p][d] * k[b][g][slots[j].pos][d];
              logit[j] = dot * scale_;
            }
            const double m = *std::max_element(logit.begin(), logit.end());
            double z = 0;
            for (double l : logit) z += std::exp(l - m);
            for (int64_t j = 0; j < n; ++j) {
              const double prob = std::exp(logit[j] - m) / z;
              sum[j] += prob;
              if (p == start + len - 1) last[j] += prob;
            }
          }
        }
        const auto heads = static_cast<double>(h1 - h0);
        for (int64_t j = 0; j < n; ++j) {
          Slot& slot = slots[j];
          if (c_.policy == Policy::kH2o) {
            slot.acc += sum[j] / heads;
            for (int64_t p = start; p < start + len; ++p) {
              if (valid_[b][p] && p >= slot.pos) slot.observers += 1;
            }
            slot.score = c_.normalize ? slot.acc / std::max(1.0, slot.observers) : slot.acc;
          } else if (c_.policy == Policy::kTova) {
            slot.score = last[j] / heads;
          } else {
            slot.score = 0;
          }
        }
        evict(slots);
      }
    }
  }

 private:
  void evict(std::vector<Slot>& slots) {
    const auto n = static_cast<int64_t>(slots.size());
    const int64_t cap = capacity();
    if (n <= cap) return;
    const int64_t recent =
        c_.budget.recent + static_cast<int64_t>(std::floor(c_.budget.recent_ratio * cap));
    std::vector<int> tier(n, 1);
    int64_t valid_rank = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (c_.budget.protect_image && slots[j].image) tier[j] = 2;
      if (j >= n - recent) tier[j] = 3;
      if (slots[j].valid && ++valid_rank <= c_.budget.sink) tier[j] = 4;
      if (!slots[j].valid) tier[j] = 0;
    }
    // Eviction order: (tier, score, slot index) ascending.
    std::vector<int64_t> order(n);
    for (int64_t j = 0; j < n; ++j) order[j] = j;
    auto key = [&](int64_t j) { return std::make_tuple(tier[j], slots[j].score); };
    std::sort(order.begin(), order.end(),
              [&](int64_t a, int64_t b) { return key(a) != key(b) ? key(a) < key(b) : a < b; });
    const int64_t evict = n - cap;
    if (key(order[evict - 1]) == key(order[evict])) ++decisive_ties_;
    evictions_ += evict;
    std::vector<bool> drop(n, false);
    for (int64_t i = 0; i < evict; ++i) drop[order[i]] = true;
    std::vector<Slot> kept;
    for (int64_t j = 0; j < n; ++j) {
      if (!drop[j]) kept.push_back(slots[j]);
    }
    slots = std::move(kept);
  }

  Config c_;
  at::Tensor q_, k_;                              // f64 [B, H, T, D], [B, H_kv, T, D]
  std::vector<std::vector<bool>> valid_, image_;  // [B][T]
  int64_t B_ = 0, H_ = 0, Hkv_ = 0, D_ = 0, sets_ = 1, seen_ = 0;
  double scale_ = 1;
  std::vector<std::vector<std::vector<Slot>>> slots_;  // [B][set][slot]
  int64_t decisive_ties_ = 0, evictions_ = 0;
};

void run_brute_force(const Config& config) {
  constexpr int64_t B = 2, H = 4, Hkv = 2, D = 8, L = 20, kSteps = 24, T = L + kSteps;
  constexpr int64_t kPadding = 3;  // row 1 is left-padded
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::manual_seed(1234);
  at::Tensor q = at::randn({B, H, T, D});
  at::Tensor k = at::randn({B, Hkv, T, D});
  at::Tensor v = at::randn({B, Hkv, T, D});
  // Every query has channel 0 in [1, 2]; "dead" tokens have the key (-1e4, 0, ...): logits below
  // -3500, probabilities exactly 0 in f32 and f64 for every query, so their scores tie exactly
  // (decided by the tie rule: the older slot goes first).
  q.select(3, 0).uniform_(1, 2);
  std::vector<int64_t> dead{6, 7, 8, 9, 10, 11, 12, 13, L + 4, L + 5, L + 6, L + 7};
  for (int64_t p : dead) {
    k.select(2, p).zero_();
    k.select(2, p).select(2, 0).fill_(-1e4);
  }
  v.select(3, 0).copy_(at::arange(T, at::kFloat).view({1, 1, T}));  // channel 0 = position
  std::vector<std::vector<bool>> valid(B, std::vector<bool>(T, true));
  std::vector<std::vector<bool>> image(B, std::vector<bool>(T, false));
  for (int64_t p = 0; p < kPadding; ++p) valid[1][p] = false;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t p = 2; p <= 4; ++p) image[b][p] = true;  // row 1: position 2 is padding
  }
  auto bool_tensor = [&](const std::vector<std::vector<bool>>& m, int64_t from, int64_t len) {
    at::Tensor t = at::zeros({B, len}, at::kBool);
    bool* data = t.data_ptr<bool>();
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < len; ++i) data[b * len + i] = m[b][from + i];
    }
    return t;
  };

  Reference ref(config, q, k, valid, image);
  mlab::models::DenseKvCache cache(mlab::models::AttentionImpl::kEager);
  cache.set_pruner(make_pruner(config));
  auto* pruner = dynamic_cast<ScorePruner*>(cache.pruner());
  REQUIRE(pruner != nullptr);

  int64_t start = 0;
  int64_t heads_differ = 0;  // steps at which the KV heads of a row hold different tokens
  for (int64_t step = 0; step <= kSteps; ++step) {
    const int64_t len = step == 0 ? L : 1;
    INFO(config.label << ", " << (step == 0 ? "prefill" : "decode step " + std::to_string(step)));
    const at::Tensor qn = q.narrow(2, start, len);
    cache.append(k.narrow(2, start, len), v.narrow(2, start, len), bool_tensor(valid, start, len));
    const at::Tensor out = cache.attend(qn, scale);
    REQUIRE(at::isfinite(out).all().item<bool>());
    const AttentionStat which = cache.pruner()->stat();
    cache.prune(
        which == AttentionStat::kNone ? at::Tensor() : cache.attention_stat(qn, scale, which),
        bool_tensor(image, start, len), len);
    ref.forward(start, len);
    start += len;

    const int64_t cap = ref.capacity();
    REQUIRE(pruner->seen() == start);
    REQUIRE(pruner->capacity(start) == cap);
    const int64_t S = cache.tokens();
    CHECK(S <= cap);
    CHECK(S == std::min(start, cap));
    const at::Tensor positions = cache.values().select(3, 0).round().to(at::kLong);  // [B, H_kv, S]
    const int64_t recent = std::min<int64_t>(
        S,
        config.budget.recent + static_cast<int64_t>(std::floor(config.budget.recent_ratio * cap)));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t g = 0; g < Hkv; ++g) {
        const int64_t set = ref.sets() > 1 ? g : 0;
        Vec want;
        for (const Slot& s : ref.slots(b, set)) want.push_back(s.pos);
        const Vec got = to_vec(positions[b][g]);
        INFO("row " << b << ", KV head " << g);
        REQUIRE(got == want);
        const std::set<int64_t> kept(got.begin(), got.end());
        // Sinks: the first `sink` valid tokens of the row.
        int64_t sinks = 0;
        for (int64_t p = 0; p < start && sinks < std::min(config.budget.sink, cap); ++p) {
          if (!valid[b][p]) continue;
          ++sinks;
          CHECK(kept.count(p) == 1);
        }
        // The newest `recent` tokens.
        for (int64_t p = start - recent; p < start; ++p) CHECK(kept.count(p) == 1);
        // Image tokens (this test's budgets leave room for all of them).
        if (config.budget.protect_image) {
          for (int64_t p = 0; p < start; ++p) {
            if (image[b][p] && valid[b][p]) CHECK(kept.count(p) == 1);
          }
        }
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      if (!at::equal(positions[b][0], positions[b][1])) ++heads_differ;
    }
    if (config.policy == Policy::kH2o) {
      // The pruner's own state was gathered with the cache: its scores are the reference's.
      const at::Tensor acc = dynamic_cast<H2oPruner*>(pruner)->accumulated();  // [B, sets, S]
      REQUIRE(acc.size(1) == ref.sets());
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t s = 0; s < ref.sets(); ++s) {
          std::vector<double> want;
          for (const Slot& slot : ref.slots(b, s)) want.push_back(slot.acc);
          const std::vector<double> got = to_doubles(acc[b][s]);
          REQUIRE(got.size() == want.size());
          for (size_t j = 0; j < got.size(); ++j) {
            if (!ref.slots(b, s)[j].valid) continue;
            CHECK(std::abs(got[j] - want[j]) <= 1e-4 * std::max(1.0, std::abs(want[j])));
          }
        }
      }
    }
  }
  INFO(config.label << ": " << ref.evictions() << " evictions, " << ref.decisive_ties()
                    << " decided by the tie rule");
  CHECK(ref.evictions() > 0);
  CHECK(ref.decisive_ties() > 0);
  if (ref.sets() > 1) {
    CHECK(heads_differ > 0);  // per-KV-head sets really differ
  } else {
    CHECK(heads_differ == 0);
  }
}

}  // namespace

TEST_CASE("pruners: brute force against a plain f64 reference through a DenseKvCache",
          "[pruners][h2o][tova][streaming_llm]") {
  const std::vector<Config> configs = {
      {"h2o per kv head, ratio 0.5, sink 2, recent 1 + 10%",
       Policy::kH2o,
       {.ratio = 0.5, .sink = 2, .recent = 1, .recent_ratio = 0.1},
       true,
       false},
      {"h2o per layer, ratio 0.5, sink 2, recent 10%",
       Policy::kH2o,
       {.ratio = 0.5, .sink = 2, .recent_ratio = 0.1},
       false,
       false},
      {"h2o per kv head, normalize, tokens 12, sink 1",
       Policy::kH2o,
       {.tokens = 12, .sink = 1},
       true,
       true},
      {"h2o per kv head, protect_image, ratio 0.6",
       Policy::kH2o,
       {.ratio = 0.6, .sink = 1, .recent = 1, .protect_image = true},
       true,
       false},
      {"tova official, ratio 0.5", Policy::kTova, {.ratio = 0.5}, false, false},
      {"tova, tokens 12, sink 1, recent 1, protect_image",
       Policy::kTova,
       {.tokens = 12, .sink = 1, .recent = 1, .protect_image = true},
       false,
       false},
      {"tova, ratio 0.4, sink 4, recent 10%",
       Policy::kTova,
       {.ratio = 0.4, .sink = 4, .recent_ratio = 0.1},
       false,
       false},
      {"streaming_llm, ratio 0.5, sink 4",
       Policy::kStreaming,
       {.ratio = 0.5, .sink = 4},
       false,
       false},
      {"streaming_llm, tokens 9, sink 2, protect_image",
       Policy::kStreaming,
       {.tokens = 9, .sink = 2, .protect_image = true},
       false,
       false},
  };
  for (const Config& c : configs) {
    SECTION(c.label) { run_brute_force(c); }
  }
}

// ---------------------------------------------------------------------------------------------
// kvpress oracle: its presses' own compress() after a prefill (tools/fixtures/
// make_pruning_fixtures.py). kvpress gathers in topk order; kept sets are compared as sets.

namespace {

std::set<int64_t> as_set(const at::Tensor& t) {
  const Vec v = to_vec(t);
  return {v.begin(), v.end()};
}

void check_same_sets(const at::Tensor& ours, const at::Tensor& theirs, const std::string& what) {
  INFO(what);
  REQUIRE(ours.defined());
  REQUIRE(ours.sizes() == theirs.sizes());
  for (int64_t b = 0; b < ours.size(0); ++b) {
    for (int64_t g = 0; g < ours.size(1); ++g) {
      INFO("row " << b << ", KV head " << g);
      const Vec mine = to_vec(ours[b][g]);
      CHECK(std::is_sorted(mine.begin(), mine.end()));
      CHECK(as_set(ours[b][g]) == as_set(theirs[b][g]));
    }
  }
}

}  // namespace

TEST_CASE("pruners: one-shot after prefill equals kvpress's presses", "[pruners][kvpress]") {
  const auto file = mlab::models::SafetensorsFile::open(mlab::test::data_dir() / "pruning" /
                                                        "kvpress.safetensors");
  auto load = [&](const std::string& name) {
    return mlab::models::load_tensor(file, file.at(name));
  };
  int64_t cases = 0;
  for (const std::string& tensor : file.names()) {
    const std::string suffix = "/attentions";
    if (tensor.size() < suffix.size() || tensor.substr(tensor.size() - suffix.size()) != suffix) {
      continue;
    }
    const std::string name = tensor.substr(0, tensor.size() - suffix.size());
    INFO("case " << name);
    ++cases;
    const at::Tensor attn = load(name + "/attentions");  // f32 [B, H, n, n]
    const double cr = load(name + "/compression_ratio").item<double>();
    const int64_t n_sink = load(name + "/n_sink").item<int64_t>();
    const at::Tensor tova = load(name + "/tova");  // i64 [B, H_kv, n_kept]
    const int64_t B = attn.size(0), n = attn.size(2), Hkv = tova.size(1);
    const double ratio = 1.0 - cr;  // kvpress keeps int(n * (1 - compression_ratio))

    // TOVAPress: last query's row averaged over all heads; the last token always kept (recent 1).
    TovaPruner tova_pruner(TovaOptions{.budget = {.ratio = ratio, .recent = 1}});
    check_same_sets(tova_pruner.select(attn.select(2, n - 1), {}, {}, n, Hkv), tova, "TOVAPress");

    // ObservedAttentionPress: column sums / (n - j), mean over each KV head's group.
    H2oPruner h2o(H2oOptions{.budget = {.ratio = ratio, .sink = 0, .recent = 0, .recent_ratio = 0},
                             .per_kv_head = true,
                             .normalize = true});
    check_same_sets(h2o.select(attn.sum(2), {}, {}, n, Hkv), load(name + "/observed"),
                    "ObservedAttentionPress");
    CHECK(load(name + "/observed_margin").item<double>() > 1e-4);  // no near-ties in the fixture

    // StreamingLLMPress: n_sink first tokens and the most recent ones.
    StreamingLlmPruner streaming(StreamingLlmOptions{.budget = {.ratio = ratio, .sink = n_sink}});
    const at::Tensor all_valid = at::ones({B, 1, n}, at::kBool);
    check_same_sets(streaming.select({}, all_valid, {}, n, Hkv), load(name + "/streaming"),
                    "StreamingLLMPress");

    if (name == "t9") CHECK(to_vec(tova) == Vec{4, 1, 0});  // kvpress's own (unsorted) order
  }
  CHECK(cases == 5);
}
