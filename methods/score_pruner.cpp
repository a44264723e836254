#include "methods/score_pruner.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

#include "core/error.hpp"

namespace mlab::methods {

namespace {

// Eviction tiers (score_pruner.hpp): lower tiers are evicted first.
constexpr int kTierInvalid = 0;
constexpr int kTierImage = 2;
constexpr int kTierRecent = 3;
constexpr int kTierSink = 4;

const std::string* find_option(const std::map<std::string, std::string>& options,
                               const std::string& key) {
  const auto it = options.find(key);
  return it == options.end() ? nullptr : &it->second;
}

}  // namespace

int64_t option_int(const std::map<std::string, std::string>& options, const std::string& key,
                   int64_t fallback) {
  const std::string* text = find_option(options, key);
  if (text == nullptr) return fallback;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  MLAB_CHECK(ec == std::errc() && end == text->data() + text->size(), "option ", key, "=", *text,
             ": not an integer");
  return value;
}

double option_real(const std::map<std::string, std::string>& options, const std::string& key,
                   double fallback) {
  const std::string* text = find_option(options, key);
  if (text == nullptr) return fallback;
  double value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  MLAB_CHECK(ec == std::errc() && end == text->data() + text->size(), "option ", key, "=", *text,
             ": not a number");
  return value;
}

std::string format_real(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  TORCH_INTERNAL_ASSERT(ec == std::errc(), "format_real: 64 characters hold any double");
  return std::string(buffer, end);
}

PruneBudget parse_prune_budget(const std::map<std::string, std::string>& options,
                               PruneBudget defaults) {
  PruneBudget b = defaults;
  if (options.count("budget") || options.count("tokens")) {
    b.ratio = option_real(options, "budget", 0);
    b.tokens = option_int(options, "tokens", 0);
  }
  b.sink = option_int(options, "sink", b.sink);
  b.recent = option_int(options, "recent", b.recent);
  b.recent_ratio = option_real(options, "recent_ratio", b.recent_ratio);
  b.protect_image = option_int(options, "protect_image", b.protect_image ? 1 : 0) != 0;
  return b;
}

std::string format_budget_size(const PruneBudget& budget) {
  return budget.tokens > 0 ? "tokens=" + std::to_string(budget.tokens)
                           : "budget=" + format_real(budget.ratio);
}

std::string format_budget_spec(std::string_view method, const PruneBudget& b) {
  return std::string(method) + ":" + format_budget_size(b) + ",sink=" + std::to_string(b.sink) +
         ",recent=" + std::to_string(b.recent) + ",recent_ratio=" + format_real(b.recent_ratio) +
         ",protect_image=" + (b.protect_image ? "1" : "0");
}

ScorePruner::ScorePruner(PruneBudget budget) : budget_(budget) {
  MLAB_CHECK((budget_.tokens > 0) != (budget_.ratio > 0),
             "pruning budget: exactly one of a kept fraction (budget, got ", budget_.ratio,
             ") and a token count (tokens, got ", budget_.tokens, ") must be set");
  MLAB_CHECK(
      budget_.ratio <= 1 && budget_.sink >= 0 && budget_.recent >= 0 && budget_.recent_ratio >= 0,
      "pruning budget: budget must be <= 1 and sink, recent, recent_ratio >= 0 (got budget=",
      budget_.ratio, ", sink=", budget_.sink, ", recent=", budget_.recent,
      ", recent_ratio=", budget_.recent_ratio, ")");
}

int64_t ScorePruner::capacity(int64_t seen) const {
  if (budget_.tokens > 0) return budget_.tokens;
  // floor(ratio * n) as kvpress's int(n * (1 - compression_ratio)), at least one slot.
  return std::max<int64_t>(1, static_cast<int64_t>(std::floor(budget_.ratio * seen)));
}

int64_t ScorePruner::recent_window(int64_t cap) const {
  return budget_.recent +
         static_cast<int64_t>(std::floor(budget_.recent_ratio * static_cast<double>(cap)));
}

at::Tensor ScorePruner::select(const at::Tensor& stat, const at::Tensor& valid_in,
                               const at::Tensor& image, int64_t new_tokens, int64_t kv_heads) {
  const at::Tensor& shape_of = valid_in.defined() ? valid_in : stat;
  TORCH_CHECK(shape_of.defined() && shape_of.dim() == 3, name(),
              ": select needs the slot validity (bool [B, 1 | H_kv, S]) or a statistic "
              "(f32 [B, H, S]); got neither");
  const int64_t B = shape_of.size(0), S = shape_of.size(2), L = new_tokens;
  TORCH_CHECK(L >= 0 && L <= S && kv_heads >= 1, name(), ": select with ", L, " new tokens of ", S,
              " slots and ", kv_heads, " KV heads");
  TORCH_CHECK(!stat.defined() || (stat.dim() == 3 && stat.size(0) == B && stat.size(2) == S),
              name(), ": stat ", stat.sizes(), " must be [B, H, S] = [", B, ", H, ", S, "]");
  TORCH_CHECK(!image.defined() || (image.dim() == 2 && image.size(0) == B && image.size(1) == L),
              name(), ": image ", image.sizes(), " must be [B, L] = [", B, ", ", L, "]");
  const at::Tensor valid = valid_in.defined()
                               ? valid_in.to(at::kBool)
                               : at::ones({B, 1, S}, shape_of.options().dtype(at::kBool));
  seen_ += L;

  const at::Tensor scores = score(stat, valid, L, kv_heads);  // f32 [B, h, S] or undefined
  const int64_t h = scores.defined() ? scores.size(1) : 1;
  TORCH_CHECK(!scores.defined() || (scores.dim() == 3 && scores.size(0) == B &&
                                    scores.size(2) == S && (h == 1 || h == kv_heads)),
              name(), ": scores ", scores.sizes(), " must be [B, 1 | H_kv, S] = [", B, ", 1 | ",
              kv_heads, ", ", S, "]");

  if (budget_.protect_image) {
    const auto opts = valid.options();
    at::Tensor fresh = image.defined() ? image.to(at::kBool).unsqueeze(1).expand({B, h, L})
                                       : at::zeros({B, h, L}, opts);
    if (!image_.defined()) image_ = at::zeros({B, h, S - L}, opts);
    TORCH_CHECK(image_.size(2) == S - L, name(), ": its image flags cover ", image_.size(2),
                " slots, the cache held ", S - L,
                " before this forward (a pruner serves one cache)");
    image_ = at::cat({image_.expand({B, h, S - L}), fresh.to(opts.device())}, 2);
  }

  const int64_t cap = capacity(seen_);
  if (S <= cap) return at::Tensor();

  // The slot validity seen by each token set: per layer (h = 1) a layer's slots are the same for
  // every KV head, so head 0 speaks for all.
  at::Tensor v = valid;
  if (v.size(1) != h) {
    TORCH_CHECK(v.size(1) == 1 || h == 1, name(), ": valid ", v.sizes(), " vs ", h, " token sets");
    v = v.size(1) == 1 ? v.expand({B, h, S}) : v.narrow(1, 0, 1);
  }
  at::Tensor tier = at::ones({B, h, S}, v.options().dtype(at::kInt));
  if (budget_.protect_image) tier.masked_fill_(image_, kTierImage);
  const int64_t r = std::min(S, recent_window(cap));
  if (r > 0) tier.narrow(2, S - r, r).fill_(kTierRecent);
  if (budget_.sink > 0) {
    const at::Tensor rank = v.to(at::kInt).cumsum(2);  // 1-based rank among the valid slots
    tier.masked_fill_(v.logical_and(rank.le(budget_.sink)), kTierSink);
  }
  tier.masked_fill_(v.logical_not(), kTierInvalid);

  // Eviction order: stable ascending sorts by score, then by tier (so ties in tier keep the score
  // order, and ties in score keep the slot order: the older slot first).
  at::Tensor order;
  if (scores.defined()) {
    order = std::get<1>(at::sort(scores, true, 2, false));
    const at::Tensor by_tier = std::get<1>(at::sort(tier.gather(2, order), true, 2, false));
    order = order.gather(2, by_tier);
  } else {
    order = std::get<1>(at::sort(tier, true, 2, false));
  }
  const at::Tensor keep =
      std::get<0>(at::sort(order.narrow(2, S - cap, cap), 2));  // i64 [B, h, cap]
  gather(keep);
  if (budget_.protect_image) image_ = image_.gather(2, keep);
  return h == kv_heads ? keep : keep.expand({B, kv_heads, cap}).contiguous();
}

}  // namespace mlab::methods
