// placeholder until the model-file API lands
#include "harness/commands.hpp"
namespace mlab::harness {
int run_quickstart(const QuickstartOptions&, std::ostream&) { return 1; }
}
