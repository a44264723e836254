// `mla-bench bench`: the speed benchmarks of the build (bench/*.cpp, Google Benchmark; STYLE.md
// rule 17: each kernel is measured beside its peers in the same run). They stay separate
// executables so that the mla-bench binary does not link Google Benchmark; this command finds
// them next to the binary and runs them in turn with the same filter and format.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <regex>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "harness/commands.hpp"

namespace mlab::harness {
namespace {

namespace fs = std::filesystem;

// Runs argv, copying its stdout to `out`; returns the exit status (-1 killed).
int run_child(const std::vector<std::string>& argv, std::ostream& out) {
  int pipe_fd[2];
  MLAB_CHECK(::pipe(pipe_fd) == 0, "bench: pipe() failed");
  const pid_t pid = ::fork();
  MLAB_CHECK(pid >= 0, "bench: fork() failed");
  if (pid == 0) {
    ::dup2(pipe_fd[1], 1);
    ::close(pipe_fd[0]);
    ::close(pipe_fd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror(argv[0].c_str());
    ::_exit(127);
  }
  ::close(pipe_fd[1]);
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(pipe_fd[0], buffer, sizeof buffer)) > 0) {
    out.write(buffer, n);
    out.flush();
  }
  ::close(pipe_fd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int run_bench(const BenchOptions& o, std::ostream& out) {
  if (o.format != "console" && o.format != "json" && o.format != "csv") {
    throw UsageError("mla-bench bench: --format must be console, json or csv, got '" + o.format +
                     "'");
  }
  // F11 D14: Google Benchmark prints "Could not compile benchmark re" for a bad --filter and
  // still exits 0; check it here as its re.h does (std::regex, POSIX extended; a leading '-'
  // negates the filter, benchmark.cc FindBenchmarksInternal).
  if (!o.filter.empty()) {
    const std::string spec = o.filter[0] == '-' ? o.filter.substr(1) : o.filter;
    try {
      std::regex re(spec, std::regex_constants::extended);
    } catch (const std::regex_error& e) {
      throw UsageError("mla-bench bench: --filter '" + o.filter +
                       "' is not a valid regular expression (POSIX extended): " + e.what());
    }
  }
  std::vector<fs::path> executables;
  if (fs::is_directory(o.bench_dir)) {
    for (const auto& entry : fs::directory_iterator(o.bench_dir)) {
      const auto name = entry.path().filename().string();
      if (entry.is_regular_file() && name.rfind("mlab_bench_", 0) == 0 &&
          ::access(entry.path().c_str(), X_OK) == 0) {
        executables.push_back(entry.path());
      }
    }
  }
  std::sort(executables.begin(), executables.end());
  MLAB_CHECK(!executables.empty(), o.bench_dir.string(),
             ": no benchmark executables (mlab_bench_*); build with -DMLAB_BENCH=ON (the default) "
             "or give --bench-dir");
  if (!o.out.empty()) fs::create_directories(o.out);
  int failures = 0;
  for (const auto& exe : executables) {
    std::vector<std::string> argv{exe.string()};
    if (o.list) argv.push_back("--benchmark_list_tests=true");
    if (!o.filter.empty()) argv.push_back("--benchmark_filter=" + o.filter);
    argv.push_back("--benchmark_format=" + o.format);
    if (!o.out.empty()) {
      argv.push_back("--benchmark_out=" + (o.out / (exe.filename().string() + ".json")).string());
      argv.push_back("--benchmark_out_format=json");
    }
    if (o.format == "console") out << "== " << exe.filename().string() << "\n";
    const int code = run_child(argv, out);
    if (code != 0) {
      out << exe.filename().string() << ": exit " << code << "\n";
      ++failures;
    }
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace mlab::harness
