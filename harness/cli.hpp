#pragma once
// mla-bench's command line (CLI11): every subcommand of DESIGN.md §1 with --help; the ones not
// implemented yet say which issue brings them and exit 2.
#include <iosfwd>

namespace mlab::harness {

// Parses argv and runs the subcommand. Never throws: errors are printed to `err` and turned into
// exit codes 0 (ok), 1 (failure), 2 (bad usage or not implemented).
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace mlab::harness
