#include "methods/h2o/h2o_pruner.hpp"

#include <ATen/ATen.h>

#include <utility>

namespace mlab::methods {

H2oPruner::H2oPruner(H2oOptions options)
    : ScorePruner(options.budget), options_(std::move(options)) {
  name_ = format_budget_spec("h2o", options_.budget) +
          ",per_kv_head=" + (options_.per_kv_head ? "1" : "0") +
          ",normalize=" + (options_.normalize ? "1" : "0");
}

std::unique_ptr<H2oPruner> H2oPruner::from_options(
    const std::map<std::string, std::string>& options) {
  H2oOptions o;
  o.budget = parse_prune_budget(options, o.budget);
  o.per_kv_head = option_int(options, "per_kv_head", o.per_kv_head ? 1 : 0) != 0;
  o.normalize = option_int(options, "normalize", o.normalize ? 1 : 0) != 0;
  return std::make_unique<H2oPruner>(std::move(o));
}

at::Tensor H2oPruner::score(const at::Tensor& stat, const at::Tensor& valid, int64_t new_tokens,
                            int64_t kv_heads) {
  TORCH_CHECK(stat.defined(), name_, ": needs the query-summed attention (kQuerySum)");
  const int64_t B = stat.size(0), H = stat.size(1), S = stat.size(2), L = new_tokens;
  const int64_t h = options_.per_kv_head ? kv_heads : 1;
  TORCH_CHECK(H % h == 0, name_, ": ", H, " query heads do not split into ", h, " KV heads");
  // Mean over the query heads of each token set: f32 [B, h, S].
  const at::Tensor fresh = stat.to(at::kFloat).reshape({B, h, H / h, S}).mean(2);
  if (!accumulated_.defined()) accumulated_ = at::zeros({B, h, S - L}, fresh.options());
  TORCH_CHECK(
      accumulated_.size(0) == B && accumulated_.size(1) == h && accumulated_.size(2) == S - L,
      name_, ": its scores cover [", accumulated_.size(0), ", ", accumulated_.size(1), ", ",
      accumulated_.size(2), "] slots, the cache held [", B, ", ", h, ", ", S - L,
      "] before this forward (one pruner per layer cache; KV heads fixed)");
  // Old slots add this forward's column sums, new ones start with theirs.
  at::Tensor acc = fresh.clone();
  acc.narrow(2, 0, S - L).add_(accumulated_);
  accumulated_ = std::move(acc);
  if (!options_.normalize) return accumulated_;

  // Valid queries that saw each slot: every valid new query saw the old slots; a new slot was
  // seen by the valid new queries at or after it (causal). Head 0 speaks for the row's queries.
  const at::Tensor q_valid = valid.narrow(1, 0, 1).narrow(2, S - L, L).to(at::kFloat);  // [B,1,L]
  const at::Tensor later = q_valid.flip(2).cumsum(2).flip(2);                           // [B,1,L]
  at::Tensor seen =
      at::cat({q_valid.sum(2, true).expand({B, 1, S - L}), later}, 2).expand({B, h, S});
  if (!observers_.defined()) observers_ = at::zeros({B, h, S - L}, fresh.options());
  at::Tensor obs = seen.clone();
  obs.narrow(2, 0, S - L).add_(observers_);
  observers_ = std::move(obs);
  return accumulated_ / observers_.clamp_min(1);
}

void H2oPruner::gather(const at::Tensor& keep) {
  accumulated_ = accumulated_.gather(2, keep);
  if (observers_.defined()) observers_ = observers_.gather(2, keep);
}

}  // namespace mlab::methods
