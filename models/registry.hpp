#pragma once
// The model registry: the explicit list in models/models.def (STYLE.md rule 3).
#include <string_view>
#include <vector>

#include "core/registry.hpp"

namespace mlab::models {

// Every registered model, in file order; duplicates are rejected at first use.
const std::vector<RegistryEntry>& model_entries();

// The model called `name`; throws mlab::Error with the known names and the closest match.
const RegistryEntry& find_model(std::string_view name, bool allow_planned = false);

}  // namespace mlab::models
