#pragma once
// Runs the built mla-bench as a user would (a child process) and captures what it printed.
// Include after tests/support/catch_torch.hpp.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace mlab::test {

struct BinaryResult {
  int code = -1;    // exit status, -1 when killed by a signal
  std::string out;  // stdout
  std::string err;  // stderr
};

// `args` are shell words appended to the binary's path (quote them yourself).
inline BinaryResult run_mla_bench(const std::string& args) {
  const auto dir = scratch_dir("mla_bench_cli");
  const std::string err_path = (dir / "stderr.txt").string();
  const std::string command =
      std::string(MLAB_BINARY_DIR) + "/mla-bench " + args + " 2>" + err_path;
  BinaryResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 65536> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.out.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  result.err.assign(std::istreambuf_iterator<char>(err), {});
  return result;
}

}  // namespace mlab::test
