// `mla-bench export`: placeholder (this issue, F5).
#include "core/error.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {

int run_export(const ExportOptions&, std::ostream&) {
  throw UsageError("mla-bench export: not implemented yet (issue F5)");
}

}  // namespace mlab::harness
