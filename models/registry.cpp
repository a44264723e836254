#include "models/registry.hpp"

namespace mlab::models {

const std::vector<RegistryEntry>& model_entries() {
  static const std::vector<RegistryEntry> entries = [] {
#define MLAB_MODEL(key, doc, issue) RegistryEntry{#key, doc, issue},
    std::vector<RegistryEntry> list = {
#include "models/models.def"
    };
#undef MLAB_MODEL
    check_unique("model", list);
    return list;
  }();
  return entries;
}

const RegistryEntry& find_model(std::string_view name, bool allow_planned) {
  return find_entry("model", model_entries(), name, allow_planned);
}

}  // namespace mlab::models
