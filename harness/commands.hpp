#pragma once
// The implemented subcommands of mla-bench, one function each; harness/cli.cpp parses the
// command line into these option structs and dispatches. Each returns the process exit code
// (0 ok, 1 failure) and throws mlab::Error / mlab::UsageError / c10::Error on failure.
#include <filesystem>
#include <iosfwd>
#include <string>

namespace mlab::harness {

struct ListOptions {
  std::string what;  // models | methods | tasks | metrics
};
// Prints the registry named by options.what (names, one-line docs, planned status).
int run_list(const ListOptions& options, std::ostream& out);

struct InspectOptions {
  std::filesystem::path path;  // a model dir, a .safetensors file or a config.json
  bool json = false;           // machine-readable output
  bool check = false;          // also read every tensor (detects truncated data)
};
// Prints the model config summary and the tensor table of a Hugging Face model directory.
int run_inspect(const InspectOptions& options, std::ostream& out);

struct QuickstartOptions {
  std::filesystem::path configs_dir;  // configs/models of the source tree
  std::filesystem::path work_dir;     // scratch output (a checkpoint round trip is written here)
  std::string device = "cpu";         // cpu | cuda
  int threads = 0;                    // 0 = LibTorch's default
  int64_t seed = 0;
};
// The embedded end-to-end job; grows with every issue (DESIGN.md §6).
int run_quickstart(const QuickstartOptions& options, std::ostream& out);

}  // namespace mlab::harness
