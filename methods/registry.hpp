#pragma once
// The method registry: the explicit list in methods/methods.def (STYLE.md rule 3).
#include <string_view>
#include <vector>

#include "core/registry.hpp"

namespace mlab::methods {

// Every registered method, in file order; duplicates are rejected at first use.
const std::vector<RegistryEntry>& method_entries();

// The method called `name`; throws mlab::Error with the known names and the closest match.
const RegistryEntry& find_method(std::string_view name, bool allow_planned = false);

}  // namespace mlab::methods
