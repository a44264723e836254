// mla-bench list models|methods|tasks|metrics: prints the explicit registries (STYLE.md rule 3).
#include <ostream>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "datasets/registry.hpp"
#include "evaluators/registry.hpp"
#include "harness/commands.hpp"
#include "methods/registry.hpp"
#include "models/registry.hpp"

namespace mlab::harness {

int run_list(const ListOptions& options, std::ostream& out) {
  const std::vector<std::pair<std::string, const std::vector<RegistryEntry>*>> registries = {
      {"models", &models::model_entries()},
      {"methods", &methods::method_entries()},
      {"tasks", &datasets::task_entries()},
      {"metrics", &evaluators::metric_entries()},
  };
  for (const auto& [name, entries] : registries) {
    if (name == options.what) {
      out << format_entries(*entries);
      return 0;
    }
  }
  std::vector<std::string> names;
  for (const auto& r : registries) names.push_back(r.first);
  throw UsageError("mla-bench list: " + unknown_name_message("registry", options.what, names));
}

}  // namespace mlab::harness
