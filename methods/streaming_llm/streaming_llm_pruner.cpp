#include "methods/streaming_llm/streaming_llm_pruner.hpp"

#include <ATen/ATen.h>

#include <utility>

namespace mlab::methods {

StreamingLlmPruner::StreamingLlmPruner(StreamingLlmOptions options)
    : ScorePruner(options.budget), options_(std::move(options)) {
  const PruneBudget& b = options_.budget;
  name_ = "streaming_llm:" + format_budget_size(b) + ",sink=" + std::to_string(b.sink);
  if (b.recent != 0) name_ += ",recent=" + std::to_string(b.recent);
  if (b.recent_ratio != 0) name_ += ",recent_ratio=" + format_real(b.recent_ratio);
  if (b.protect_image) name_ += ",protect_image=1";
}

std::unique_ptr<StreamingLlmPruner> StreamingLlmPruner::from_options(
    const std::map<std::string, std::string>& options) {
  StreamingLlmOptions o;
  o.budget = parse_prune_budget(options, o.budget);
  return std::make_unique<StreamingLlmPruner>(std::move(o));
}

at::Tensor StreamingLlmPruner::score(const at::Tensor&, const at::Tensor&, int64_t, int64_t) {
  return at::Tensor();
}

}  // namespace mlab::methods
