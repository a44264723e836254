#include "datasets/registry.hpp"

namespace mlab::datasets {

const std::vector<RegistryEntry>& task_entries() {
  static const std::vector<RegistryEntry> entries = [] {
#define MLAB_TASK(key, doc, issue) RegistryEntry{#key, doc, issue},
    std::vector<RegistryEntry> list = {
#include "datasets/datasets.def"
    };
#undef MLAB_TASK
    check_unique("task", list);
    return list;
  }();
  return entries;
}

const RegistryEntry& find_task(std::string_view name, bool allow_planned) {
  return find_entry("task", task_entries(), name, allow_planned);
}

}  // namespace mlab::datasets
