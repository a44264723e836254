#include "methods/tova/tova_pruner.hpp"

#include <ATen/ATen.h>

#include <utility>

namespace mlab::methods {

TovaPruner::TovaPruner(TovaOptions options)
    : ScorePruner(options.budget), options_(std::move(options)) {
  name_ = format_budget_spec("tova", options_.budget);
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
