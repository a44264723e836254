// [slow] Crash safety and real ranks of `mla-bench eval` (issue F5, acceptance 2 and 3):
// SIGKILL at random points and resume, until the run completes: every sample is stored exactly
// once and the metrics equal those of an uninterrupted run. And `torchrun --no-python` ranks
// writing into one database.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "results/results_store.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace fs = std::filesystem;

namespace {

// A POPE dataset dir of `n` samples cycling through the fixture's three (ids k0..k<n-1>), so one
// run lasts long enough to be killed in the middle.
fs::path make_pope(const fs::path& root, int n) {
  const fs::path src = mlab::test::data_dir() / "datasets" / "pope";
  const fs::path dir = root / "pope";
  fs::create_directories(dir);
  // A copy, not a symlink: images resolving outside the dataset dir are refused (F11 D2).
  fs::remove_all(dir / "images");
  fs::copy(src / "images", dir / "images", fs::copy_options::recursive);
  std::vector<nlohmann::json> base;
  {
    std::ifstream in(src / "samples.jsonl");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) base.push_back(nlohmann::json::parse(line));
    }
  }
  REQUIRE(base.size() == 3);
  std::ofstream out(dir / "samples.jsonl");
  for (int i = 0; i < n; ++i) {
    auto s = base[static_cast<std::size_t>(i) % base.size()];
    s["id"] = "k" + std::to_string(i);
    s["doc"]["question_id"] = std::to_string(1000 + i);
    out << s.dump() << "\n";
  }
  std::ifstream in(src / "dataset.json");
  auto info = nlohmann::json::parse(in);
  info["samples"] = n;
  std::ofstream(dir / "dataset.json") << info.dump(1) << "\n";
  return root;
}

std::vector<std::string> eval_argv(const fs::path& datasets, const fs::path& db) {
  return {std::string(MLAB_BINARY_DIR) + "/mla-bench",
          "eval",
          "--model",
          (mlab::test::data_dir() / "tiny_vlms" / "llava").string(),
          "--tasks",
          "pope",
          "--datasets",
          datasets.string(),
          "--db",
          db.string(),
          "--run-name",
          "k",
          "--batch-size",
          "2",
          "--threads",
          "1"};
}

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

struct Stored {
  std::map<std::string, std::string> predictions;
  std::map<std::string, double> metrics;
  int64_t rows = 0;
  bool finished = false;
};

Stored stored(const fs::path& db, const std::string& run) {
  auto store = mlab::results::ResultsStore::open(db, {.read_only = true});
  Stored s;
  const auto id = store.find_run(run);
  if (!id) return s;
  for (const auto& row : store.samples(*id)) {
    ++s.rows;
    s.predictions[row.task + "/" + row.sample_id] = row.prediction;
  }
  for (const auto& m : store.metrics(*id)) {
    if (m.metric.rfind("perf:", 0) != 0) s.metrics[m.task + "/" + m.metric] = m.value;
  }
  s.finished = !store.run(*id).finished_at.empty();
  return s;
}

// Rows stored so far; 0 while the database is still being created by the child.
int64_t rows_now(const fs::path& db) {
  try {
    return fs::exists(db) ? stored(db, "k").rows : 0;
  } catch (const mlab::Error&) {
    return 0;
  }
}

}  // namespace

TEST_CASE("eval: SIGKILL at random points, resumed each time, ends as an uninterrupted run",
          "[harness][eval][slow]") {
  const fs::path dir = mlab::test::scratch_dir("eval_kill");
  const int n = 160;
  const fs::path datasets = make_pope(dir / "data", n);
  const fs::path reference_db = dir / "reference.sqlite", db = dir / "killed.sqlite";
  fs::remove(reference_db);
  fs::remove(db);
  // The uninterrupted run, timed to place the kills inside it.
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  pid_t pid = spawn(eval_argv(datasets, reference_db), dir / "reference.log");
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const double full_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const Stored reference = stored(reference_db, "k");
  REQUIRE(reference.rows == n);
  REQUIRE(reference.finished);

  // Each kill lands after a random number of further stored rows plus a random delay (inside a
  // batch, inside a transaction, between them: wherever the process happens to be).
  std::mt19937 rng(20261124);
  int kills = 0, attempts = 0;
  int64_t previous = 0;
  while (kills < 6 && attempts < 40) {
    ++attempts;
    pid = spawn(eval_argv(datasets, db), dir / "killed.log");
    const int64_t room = std::max<int64_t>(1, (n - previous) / (8 - kills));
    const int64_t target = previous + std::uniform_int_distribution<int64_t>(1, room)(rng);
    bool exited = false;
    while (!exited && rows_now(db) < target) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      exited = ::waitpid(pid, &status, WNOHANG) == pid;
    }
    if (exited) break;  // it finished before the kill
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 60)(rng)));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (!WIFSIGNALED(status)) continue;  // it exited in between
    ++kills;
    const Stored now = stored(db, "k");
    INFO("after kill " << kills << ": " << now.rows << " rows");
    CHECK(now.rows >= previous);  // nothing committed is ever lost
    CHECK(static_cast<int64_t>(now.predictions.size()) == now.rows);  // nor stored twice
    CHECK_FALSE(now.finished);
    previous = now.rows;
  }
  INFO("killed at " << kills << " points; the full run takes " << full_ms << " ms");
  CHECK(kills >= 5);
  // The last resume runs to the end.
  pid = spawn(eval_argv(datasets, db), dir / "killed.log");
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  const Stored final_state = stored(db, "k");
  CHECK(final_state.rows == n);
  CHECK(final_state.finished);
  CHECK(final_state.predictions == reference.predictions);
  CHECK(final_state.metrics == reference.metrics);
  CHECK_FALSE(final_state.metrics.empty());
}

TEST_CASE("eval: torchrun --no-python ranks write one database", "[harness][eval][ranks][slow]") {
  // The source tree's virtualenv (tests/data is <source>/tests/data).
  fs::path torchrun =
      mlab::test::data_dir().parent_path().parent_path() / ".venv" / "bin" / "torchrun";
  if (!fs::exists(torchrun) && std::system("command -v torchrun > /dev/null 2>&1") == 0) {
    torchrun = "torchrun";  // the CUDA machine's system PyTorch
  }
  if (torchrun != "torchrun" && !fs::exists(torchrun)) {
    WARN("no " << torchrun.string() << " (tools/setup.sh makes it) nor torchrun on PATH; not run");
    return;
  }
  // MLAB_TEST_EVAL_DEVICE=cuda runs the ranks (and the reference) on the GPU(s).
  const char* device_env = std::getenv("MLAB_TEST_EVAL_DEVICE");
  const std::string device = device_env != nullptr ? device_env : "cpu";
  const fs::path dir = mlab::test::scratch_dir("eval_torchrun");
  const fs::path datasets = make_pope(dir / "data", 24);
  const fs::path one = dir / "one.sqlite", db = dir / "ranks.sqlite";
  fs::remove(one);
  fs::remove(db);
  auto args = eval_argv(datasets, one);
  args.push_back("--device");
  args.push_back(device);
  std::string single;
  for (const auto& a : args) single += a + " ";
  REQUIRE(std::system((single + "> " + (dir / "one.log").string() + " 2>&1").c_str()) == 0);
  args = eval_argv(datasets, db);
  args.push_back("--device");
  args.push_back(device);
  std::string ranks = torchrun.string() + " --no-python --nproc-per-node 3 --master-port 29517";
  for (const auto& a : args) ranks += " " + a;
  INFO(ranks);
  REQUIRE(std::system((ranks + " > " + (dir / "ranks.log").string() + " 2>&1").c_str()) == 0);
  std::ifstream log(dir / "ranks.log");
  const std::string text((std::istreambuf_iterator<char>(log)), {});
  INFO(text);
  CHECK(text.find("rank 2 of 3") != std::string::npos);
  const Stored a = stored(one, "k"), b = stored(db, "k");
  CHECK(b.rows == 24);
  CHECK(b.finished);
  CHECK(b.predictions == a.predictions);
  CHECK(b.metrics == a.metrics);
}
