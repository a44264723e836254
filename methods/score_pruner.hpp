#pragma once
// ScorePruner: the budget and eviction logic shared by the token-pruning methods (H2O, TOVA,
// StreamingLLM; specs/baselines.md §4.3, §5.4, §6.3). As kvpress's ScorerPress, a policy is "a
// per-slot score, then keep()": a subclass scores the cached slots after every attention forward,
// this base decides how many slots stay and which.
//
// Eviction order (the slots evicted first come first), lexicographic in
//   1. tier: invalid slots (left padding) < ordinary slots < image slots (protect_image)
//            < the recent window < the sinks,
//   2. score, lowest first,
//   3. age: on equal tier and score the OLDER slot (lower slot index) is evicted first
//      (specs/baselines.md §4.3 "ties: lowest index first", as EasyKV's topk(largest=False)
//      eviction over ascending slots; kvpress's topk defines no tie order, and its fixtures
//      (tests/data/pruning) have none).
// Exactly cap slots stay after a forward that leaves S > cap: protection is a priority, not an
// exception to the cap, so when more slots are protected than fit, the lower tiers go first
// (image before recent before sinks) and within a tier the rule above applies.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "models/runtime/kv_cache.hpp"

namespace mlab::methods {

// How many slots a pruned cache keeps and which are protected.
struct PruneBudget {
  // Exactly one of ratio and tokens is set (> 0).
  double ratio = 0;            // kept fraction of the slots seen so far (padding included), <= 1
  int64_t tokens = 0;          // or a fixed number of kept slots
  int64_t sink = 0;            // the first `sink` valid tokens of a row are never evicted
  int64_t recent = 0;          // the newest recent + floor(recent_ratio * cap) slots are
  double recent_ratio = 0;     // never evicted
  bool protect_image = false;  // image tokens are never evicted
};

// The budget keys of a method's options (budget | tokens, sink, recent, recent_ratio,
// protect_image), over `defaults` for the keys that are absent. Throws mlab::Error naming the key
// when a value is not a number; ranges are validated by the method-spec parser
// (methods/kv_memory.cpp).
PruneBudget parse_prune_budget(const std::map<std::string, std::string>& options,
                               PruneBudget defaults);
// "budget=0.5" or "tokens=64" (the shortest text that reads back as the same double).
std::string format_budget_size(const PruneBudget& budget);
// "<method>:<size>,sink=..,recent=..,recent_ratio=..,protect_image=0|1": a pruner's name with
// every budget field written out (the spec's order).
std::string format_budget_spec(std::string_view method, const PruneBudget& budget);
// Integer option `key` of `options` (0 | 1 flags included), `fallback` when absent.
int64_t option_int(const std::map<std::string, std::string>& options, const std::string& key,
                   int64_t fallback);
// Real option `key`, `fallback` when absent.
double option_real(const std::map<std::string, std::string>& options, const std::string& key,
                   double fallback);
// The shortest decimal text of `value` that parses back to it ("0.1", "0.375", "1").
std::string format_real(double value);

class ScorePruner : public models::TokenPruner {
 public:
  // Throws mlab::Error unless exactly one of budget.ratio / budget.tokens is set (> 0).
  explicit ScorePruner(PruneBudget budget);

  // The TokenPruner contract (models/runtime/kv_cache.hpp): updates the subclass's scores with
  // this forward's statistic, then, when the S cached slots exceed capacity(), returns the
  // i64 [B, kv_heads, cap] ascending slots to keep (a per-layer set repeated for every KV head)
  // and gathers its own per-slot state with them; undefined when every slot stays.
  // stat: f32 [B, H, S] or undefined; valid: bool [B, 1 | H_kv, S] or undefined (all valid);
  // image: bool [B, L] or undefined (text). Only host integers are read on the host.
  at::Tensor select(const at::Tensor& stat, const at::Tensor& valid, const at::Tensor& image,
                    int64_t new_tokens, int64_t kv_heads) final;

  const PruneBudget& budget() const { return budget_; }
  // Slots ever appended (padding included): the n of the ratio budget.
  int64_t seen() const { return seen_; }
  // Slots kept once `seen` slots were appended: budget.tokens, or floor(ratio * seen) (at least
  // 1, as kvpress's compute_n_kept).
  int64_t capacity(int64_t seen) const;
  // Width of the protected recent window at capacity `cap`.
  int64_t recent_window(int64_t cap) const;

 protected:
  // The subclass's part, called once per select() before the decision. Updates its state with
  // the statistic of the forward that appended the last `new_tokens` of the S slots and returns
  // the per-slot scores, f32 [B, 1 | kv_heads, S] (1: one token set per layer), or an undefined
  // tensor when the policy has no scores (every slot scores the same: positions decide).
  // valid: bool [B, 1 | H_kv, S] (never undefined here).
  virtual at::Tensor score(const at::Tensor& stat, const at::Tensor& valid, int64_t new_tokens,
                           int64_t kv_heads) = 0;
  // Keeps the subclass's per-slot state in step with the cache: `keep` i64 [B, h, cap] ascending,
  // h = the width of the scores score() returned (before the expansion to kv_heads).
  virtual void gather(const at::Tensor& keep) { (void)keep; }

 private:
  PruneBudget budget_;
  int64_t seen_ = 0;
  at::Tensor image_;  // bool [B, h, S]: image flag per slot (protect_image only)
};

}  // namespace mlab::methods
