#include "evaluators/registry.hpp"

namespace mlab::evaluators {

const std::vector<RegistryEntry>& metric_entries() {
  static const std::vector<RegistryEntry> entries = [] {
#define MLAB_METRIC(key, doc, issue) RegistryEntry{#key, doc, issue},
    std::vector<RegistryEntry> list = {
#include "evaluators/metrics.def"
    };
#undef MLAB_METRIC
    check_unique("metric", list);
    return list;
  }();
  return entries;
}

const RegistryEntry& find_metric(std::string_view name, bool allow_planned) {
  return find_entry("metric", metric_entries(), name, allow_planned);
}

}  // namespace mlab::evaluators
