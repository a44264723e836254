#pragma once
// The metric registry: the explicit list in evaluators/metrics.def (STYLE.md rule 3).
#include <string_view>
#include <vector>

#include "core/registry.hpp"

namespace mlab::evaluators {

// Every registered metric, in file order; duplicates are rejected at first use.
const std::vector<RegistryEntry>& metric_entries();

// The metric called `name`; throws mlab::Error with the known names and the closest match.
const RegistryEntry& find_metric(std::string_view name, bool allow_planned = false);

}  // namespace mlab::evaluators
