#include "methods/tova/tova_pruner.hpp"

#include <ATen/ATen.h>

#include <utility>

namespace mlab::methods {

TovaPruner::TovaPruner(TovaOptions options)
    : ScorePruner(options.budget), options_(std::move(options)) {
  const PruneBudget& b = options_.budget;
  name_ = "tova:" + format_budget_size(b) + ",sink=" + std::to_string(b.sink) +
          ",recent=" + std::to_string(b.recent) + ",recent_ratio=" + format_real(b.recent_ratio) +
          ",protect_image=" + (b.protect_image ? "1" : "0");
}

std::unique_ptr<TovaPruner> TovaPruner::from_options(
    const std::map<std::string, std::string>& options) {
  TovaOptions o;
  o.budget = parse_prune_budget(options, o.budget);
  return std::make_unique<TovaPruner>(std::move(o));
}

at::Tensor TovaPruner::score(const at::Tensor& stat, const at::Tensor&, int64_t, int64_t) {
  TORCH_CHECK(stat.defined(), name_, ": needs the last query's attention (kLastQuery)");
  return stat.to(at::kFloat).mean(1, true);  // the scores of this forward only
}

}  // namespace mlab::methods
