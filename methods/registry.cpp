#include "methods/registry.hpp"

namespace mlab::methods {

const std::vector<RegistryEntry>& method_entries() {
  static const std::vector<RegistryEntry> entries = [] {
#define MLAB_METHOD(key, doc, issue) RegistryEntry{#key, doc, issue},
    std::vector<RegistryEntry> list = {
#include "methods/methods.def"
    };
#undef MLAB_METHOD
    check_unique("method", list);
    return list;
  }();
  return entries;
}

const RegistryEntry& find_method(std::string_view name, bool allow_planned) {
  return find_entry("method", method_entries(), name, allow_planned);
}

}  // namespace mlab::methods
