#pragma once
// Registry entries shared by the explicit X-macro lists (models/models.def, methods/methods.def,
// datasets/datasets.def, evaluators/metrics.def; STYLE.md rules 3-4). An entry names one thing a
// user can ask for; `issue` is empty when it is implemented, else the issue that will implement
// it, so `mla-bench list` can say what exists and lookups can say what is still missing.
#include <string>
#include <string_view>
#include <vector>

namespace mlab {

struct RegistryEntry {
  std::string name;   // the key users type, e.g. "h2o"
  std::string doc;    // one line
  std::string issue;  // "" = implemented; else e.g. "F7" (planned)

  bool implemented() const { return issue.empty(); }
};

// All names of `entries`, in order.
std::vector<std::string> entry_names(const std::vector<RegistryEntry>& entries);

// The entry called `name`. Throws mlab::Error naming `kind`, the known names and the closest
// match when there is none, and (unless `allow_planned`) when the entry is not implemented yet.
const RegistryEntry& find_entry(std::string_view kind, const std::vector<RegistryEntry>& entries,
                                std::string_view name, bool allow_planned = false);

// Throws mlab::Error when two entries share a name (called once per registry at first use).
void check_unique(std::string_view kind, const std::vector<RegistryEntry>& entries);

// Aligned table "name  doc  [planned: F7]", one line per entry, for `mla-bench list`.
std::string format_entries(const std::vector<RegistryEntry>& entries);

}  // namespace mlab
