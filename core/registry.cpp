#include "core/registry.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab {

std::vector<std::string> entry_names(const std::vector<RegistryEntry>& entries) {
  std::vector<std::string> names;
  names.reserve(entries.size());
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

const RegistryEntry& find_entry(std::string_view kind, const std::vector<RegistryEntry>& entries,
                                std::string_view name, bool allow_planned) {
  for (const auto& e : entries) {
    if (e.name != name) continue;
    MLAB_CHECK(allow_planned || e.implemented(), kind, " '", name,
               "' is registered but not implemented yet (planned in issue ", e.issue, ")");
    return e;
  }
  throw Error(unknown_name_message(kind, name, entry_names(entries)));
}

void check_unique(std::string_view kind, const std::vector<RegistryEntry>& entries) {
  std::set<std::string> seen;
  for (const auto& e : entries) {
    MLAB_CHECK(seen.insert(e.name).second, "duplicate ", kind, " name '", e.name,
               "' in the registry");
  }
}

std::string format_entries(const std::vector<RegistryEntry>& entries) {
  std::size_t width = 0;
  for (const auto& e : entries) width = std::max(width, e.name.size());
  std::string out;
  for (const auto& e : entries) {
    out += e.name + std::string(width - e.name.size() + 2, ' ') + e.doc;
    if (!e.implemented()) out += "  [planned: " + e.issue + "]";
    out += '\n';
  }
  return out;
}

}  // namespace mlab
