#pragma once
// The task registry: the explicit list in datasets/datasets.def (STYLE.md rule 3).
#include <string_view>
#include <vector>

#include "core/registry.hpp"

namespace mlab::datasets {

// Every registered task, in file order; duplicates are rejected at first use.
const std::vector<RegistryEntry>& task_entries();

// The task called `name`; throws mlab::Error with the known names and the closest match.
const RegistryEntry& find_task(std::string_view name, bool allow_planned = false);

}  // namespace mlab::datasets
