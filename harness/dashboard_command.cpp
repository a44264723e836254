// `mla-bench dashboard`: placeholder until results/dashboard lands (this issue, F5).
#include "core/error.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {

int run_dashboard(const DashboardOptions&, std::ostream&) {
  throw UsageError("mla-bench dashboard: not implemented yet (issue F5)");
}

}  // namespace mlab::harness
