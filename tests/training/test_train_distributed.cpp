// Data-parallel `mla-bench train` (issue F8, acceptance 3; training/distributed.hpp): 2 CPU
// processes joined through c10d's TCPStore (the CPU sum goes through it), each taking 1 sample of
// every step's window, against 1 process taking both as 2 accumulation steps (the same global
// batch), on the tiny stage-1 LLaVA
// (tests/data/authors/llava/stage1_mkl). The ranks are started by hand with torchrun's variables
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and, when the configured Python has it,
// by torchrun itself. Compared: every logged loss, grad norm and token count, and every tensor of
// the final checkpoint. With 2 ranks the sum of two gradients is the same addition one process
// performs (a + b), so fp32 CPU is expected bit for bit; 2 ranks x 2 accumulation steps regroup
// the four-term sum ((g1 + g2) + (g3 + g4)), a rounding-level difference, bounded here.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/io/checkpoint.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/training/train_cli_support.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kModel = test::data_dir() / "authors" / "llava" / "stage1_mkl";
constexpr int64_t kSteps = 10;  // WSD with T >= 10 (T < 10 squares the LR)

// Six LLaVA-format records over the test images, copied beside the JSON.
fs::path write_dataset(const fs::path& dir) {
  return test::write_llava_dataset(dir, {{"What is in the picture?", "A small square."},
                                         {"Describe the colours.", "Grey, mostly."},
                                         {"Is it transparent?", "Partly, yes."},
                                         {"How tall is it?", "Taller than it is wide."},
                                         {"Name a shape you see.", "A rectangle."},
                                         {"What would you call it?", "A test image, I think."}});
}

std::string train_args(const fs::path& data, const fs::path& out, int64_t batch, int64_t accum) {
  return test::train_command(1, kModel, data, out) + " --steps " + std::to_string(kSteps) +
         " --lr 1e-3 --seed 7" + " --batch-size " + std::to_string(batch) + " --grad-accum " +
         std::to_string(accum);
}

// A TCP port nobody listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct RankRun {
  int code = -1;
  std::string out, err;
};

// `world` copies of the binary with torchrun's variables, started together; waits for all.
std::vector<RankRun> run_ranks(int world, const std::string& args, const fs::path& logs) {
  fs::create_directories(logs);
  const int port = free_port();
  std::string script;
  for (int r = 0; r < world; ++r) {
    const std::string base = (logs / ("rank" + std::to_string(r))).string();
    script += "(RANK=" + std::to_string(r) + " LOCAL_RANK=" + std::to_string(r) +
              " WORLD_SIZE=" + std::to_string(world) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
              std::to_string(port) + " " + MLAB_BINARY_DIR + "/mla-bench " + args + " >" + base +
              ".out 2>" + base + ".err; echo $? >" + base + ".rc) & ";
  }
  script += "wait";
  REQUIRE(std::system(script.c_str()) == 0);
  std::vector<RankRun> runs(static_cast<std::size_t>(world));
  for (int r = 0; r < world; ++r) {
    const fs::path base = logs / ("rank" + std::to_string(r));
    auto& run = runs[static_cast<std::size_t>(r)];
    run.out = slurp(base.string() + ".out");
    run.err = slurp(base.string() + ".err");
    std::ifstream(base.string() + ".rc") >> run.code;
  }
  return runs;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-30); }

struct Diff {
  double loss_rel = 0, grad_norm_rel = 0, weight_abs = 0, weight_max = 0;
  int64_t tensors_differ = 0, tensors = 0;
};

// Every log line and every tensor of the final checkpoints of `a` (data parallel) and `b`.
Diff compare_runs(const fs::path& a, const fs::path& b) {
  Diff d;
  const auto la = test::read_train_log(a), lb = test::read_train_log(b);
  REQUIRE(la.size() == static_cast<std::size_t>(kSteps));
  REQUIRE(lb.size() == la.size());
  for (std::size_t i = 0; i < la.size(); ++i) {
    INFO("step " << i);
    CHECK(la[i].at("step") == lb[i].at("step"));
    CHECK(la[i].at("tokens") == lb[i].at("tokens"));
    CHECK(la[i].at("supervised") == lb[i].at("supervised"));
    CHECK(la[i].at("lr").get<double>() == lb[i].at("lr").get<double>());
    d.loss_rel = std::max(d.loss_rel, rel(la[i].at("loss"), lb[i].at("loss")));
    d.grad_norm_rel = std::max(d.grad_norm_rel, rel(la[i].at("grad_norm"), lb[i].at("grad_norm")));
  }
  const std::string last = "checkpoint-" + std::to_string(kSteps);
  const auto x = models::Checkpoint::open(a / last), y = models::Checkpoint::open(b / last);
  REQUIRE(x.names() == y.names());
  for (const auto& name : x.names()) {
    const at::Tensor tx = x.get(name).to(at::kDouble), ty = y.get(name).to(at::kDouble);
    ++d.tensors;
    d.tensors_differ += !at::equal(tx, ty);
    d.weight_abs = std::max(d.weight_abs, (tx - ty).abs().max().item<double>());
    d.weight_max = std::max(d.weight_max, ty.abs().max().item<double>());
  }
  std::cout << "  loss max rel " << d.loss_rel << ", grad_norm max rel " << d.grad_norm_rel
            << ", final weights max abs " << d.weight_abs << " (max |w| " << d.weight_max << "), "
            << d.tensors_differ << " of " << d.tensors << " tensors not bitwise equal\n";
  return d;
}

// One intra-op thread in every process (torchrun sets OMP_NUM_THREADS=1 for its workers; the
// thread count changes ATen's CPU reduction order, hence the last bits).
fs::path single_run(const fs::path& dir, const fs::path& data) {
  ::setenv("OMP_NUM_THREADS", "1", 1);
  const fs::path single = dir / "single";
  // --grad-accum 2 (2 one-row micro-batches; --batch-size 2 would pad both rows into one).
  const auto r = test::run_mla_bench(train_args(data, single, 1, 2));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  return single;
}

}  // namespace

// N ranks x batch 1 against one process x accumulation N, both from scratch in scratch dir
// `name`: the CPU sum adds the ranks' buffers in rank order, (g1 + g2) + g3 ..., the additions
// one process accumulating N micro-batches performs, so the match is bitwise for any N (a ring
// or tree all-reduce would regroup the sum from 3 ranks on). Returns the ranks' outputs.
namespace {

std::vector<RankRun> expect_ranks_equal_accumulation(int n, const std::string& name) {
  const auto dir = test::scratch_dir(name);
  const fs::path data = write_dataset(dir / "data");
  ::setenv("OMP_NUM_THREADS", "1", 1);
  const fs::path single = dir / "single";
  const auto r = test::run_mla_bench(train_args(data, single, 1, n));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const fs::path dp = dir / "dp";
  auto ranks = run_ranks(n, train_args(data, dp, 1, 1), dir / "dp_logs");
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    INFO("rank " << i << ":\n" << ranks[i].out << ranks[i].err);
    REQUIRE(ranks[i].code == 0);
  }
  CHECK(ranks[0].out.find("x " + std::to_string(n) + " ranks (store)") != std::string::npos);
  std::cout << n << " ranks x batch 1 vs 1 process x accumulation " << n << " (" << kSteps
            << " steps):\n";
  const Diff d = compare_runs(dp, single);
  CHECK(d.loss_rel == 0);
  CHECK(d.grad_norm_rel == 0);
  CHECK(d.tensors_differ == 0);
  return ranks;
}

}  // namespace

TEST_CASE("train, data parallel: 2 CPU ranks x batch 1 == 1 process x accumulation 2",
          "[training][cli][distributed]") {
  const auto ranks = expect_ranks_equal_accumulation(2, "train_ddp");
  // Rank 0 prints, logs and saves; rank 1 is quiet.
  CHECK(ranks[0].out.find("step 10/10 loss") != std::string::npos);
  CHECK(ranks[1].out.empty());
}

TEST_CASE("train, data parallel: 3 CPU ranks x batch 1 == 1 process x accumulation 3",
          "[training][cli][distributed]") {
  expect_ranks_equal_accumulation(3, "train_ddp3");
}

TEST_CASE("train, data parallel: accumulation, --resume and torchrun (2 CPU ranks)",
          "[training][cli][distributed]") {
  const auto dir = test::scratch_dir("train_ddp_more");
  const fs::path data = write_dataset(dir / "data");
  const fs::path single = single_run(dir, data);

  {  // 2 ranks x accumulation 2 == 1 process x accumulation 4 (a regrouped four-term sum)
    const fs::path single4 = dir / "single4";
    const auto r4 = test::run_mla_bench(train_args(data, single4, 1, 4));
    INFO(r4.out << r4.err);
    REQUIRE(r4.code == 0);
    const fs::path dp2 = dir / "dp2";
    const auto ranks2 = run_ranks(2, train_args(data, dp2, 1, 2), dir / "dp2_logs");
    for (const auto& rr : ranks2) {
      INFO(rr.out << rr.err);
      REQUIRE(rr.code == 0);
    }
    std::cout << "2 ranks x accum 2 vs 1 process x accum 4:\n";
    const Diff d4 = compare_runs(dp2, single4);
    CHECK(d4.loss_rel <= 1e-6);
    CHECK(d4.grad_norm_rel <= 1e-5);
    CHECK(d4.weight_abs <= 1e-6 * d4.weight_max);
  }

  {  // --resume: every rank loads rank 0's checkpoint
    const fs::path part = dir / "dp_resumed";
    auto rr = run_ranks(2, train_args(data, part, 1, 1) + " --save-every 5 --stop-after 5",
                        dir / "part_logs");
    for (const auto& x : rr) {
      INFO(x.out << x.err);
      REQUIRE(x.code == 0);
    }
    REQUIRE(test::read_train_log(part).size() == 5);
    rr = run_ranks(2, train_args(data, part, 1, 1) + " --resume", dir / "resume_logs");
    for (const auto& x : rr) {
      INFO(x.out << x.err);
      REQUIRE(x.code == 0);
    }
    CHECK(rr[0].out.find("resumed from") != std::string::npos);
    std::cout << "2 ranks, 5 steps + --resume vs 1 process, 10 steps:\n";
    const Diff dr = compare_runs(part, single);
    CHECK(dr.loss_rel == 0);
    CHECK(dr.tensors_differ == 0);
  }

  // Under torchrun --no-python --nproc-per-node 2 (its agent serves the store; OMP_NUM_THREADS=1
  // as it would set anyway).
  const fs::path torchrun = fs::path(test::python()).parent_path() / "torchrun";
  if (test::python().empty() || !fs::exists(torchrun)) {
    WARN("no torchrun beside '" << test::python() << "': the torchrun launch is not exercised");
  } else {
    const fs::path tr = dir / "torchrun";
    const std::string cmd = torchrun.string() + " --no-python --nproc-per-node 2 --master-port " +
                            std::to_string(free_port()) + " " + MLAB_BINARY_DIR + "/mla-bench " +
                            train_args(data, tr, 1, 1) + " >" + (dir / "torchrun.out").string() +
                            " 2>&1";
    const int code = std::system(cmd.c_str());
    INFO(slurp(dir / "torchrun.out"));
    REQUIRE(code == 0);
    std::cout << "torchrun, 2 ranks x batch 1 vs 1 process x accumulation 2:\n";
    const Diff dt = compare_runs(tr, single);
    CHECK(dt.loss_rel == 0);
    CHECK(dt.tensors_differ == 0);
  }
}

TEST_CASE("train, data parallel: bad torchrun variables are refused", "[training][cli]") {
  const auto dir = test::scratch_dir("train_ddp_env");
  const fs::path data = write_dataset(dir / "data");
  // The child inherits this process's environment.
  auto run = [&](const std::vector<std::pair<const char*, const char*>>& env) {
    for (const auto& [k, v] : env) ::setenv(k, v, 1);
    auto r = test::run_mla_bench(train_args(data, dir / "out", 1, 1));
    for (const char* k : {"WORLD_SIZE", "RANK", "MASTER_PORT"}) ::unsetenv(k);
    return r;
  };
  auto r = run({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_PORT", "1"}});
  CHECK(r.code == 1);
  CHECK(r.err.find("RANK=2 is not below WORLD_SIZE=2") != std::string::npos);
  r = run({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}});
  CHECK(r.code == 1);
  CHECK(r.err.find("RANK is not set") != std::string::npos);
  r = run({{"WORLD_SIZE", "two"}, {"RANK", "0"}, {"MASTER_PORT", "1"}});
  CHECK(r.code == 1);
  CHECK(r.err.find("WORLD_SIZE='two'") != std::string::npos);
}
