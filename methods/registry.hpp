#pragma once
// The method registry: the explicit list in methods/methods.def (STYLE.md rule 3), each line
// binding a name to the factory of its KvMethod.
#include <memory>
#include <string_view>
#include <vector>

#include "core/registry.hpp"
#include "methods/kv_method.hpp"

namespace mlab::methods {

// Every registered method, in file order; duplicates are rejected at first use. The doc line
// ends with the method's options and their defaults.
const std::vector<RegistryEntry>& method_entries();

// The method called `name`; throws mlab::Error with the known names and the closest match.
const RegistryEntry& find_method(std::string_view name, bool allow_planned = false);

// Builds the method of a validated spec through its registry line.
std::unique_ptr<KvMethod> make_method(const MethodSpec& spec);

}  // namespace mlab::methods
