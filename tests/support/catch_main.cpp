// Catch2's main(), compiled once and linked into every test executable.
#define CATCH_CONFIG_MAIN
#include "tests/support/catch_torch.hpp"

#include <atomic>
#include <chrono>

#include <unistd.h>

namespace mlab::test {

std::filesystem::path scratch_dir(const std::string& name) {
  static std::atomic<int> counter{0};
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  auto dir = std::filesystem::path(MLAB_TEST_SCRATCH_DIR) /
             (name + "-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" +
              std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace mlab::test
