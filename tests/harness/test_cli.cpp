#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;

namespace {
struct Result {
  int code = -1;
  std::string output;  // stdout, then stderr
};

// Runs the built mla-bench with `args` (shell words) and captures its output and exit code.
Result run(const std::string& args) {
  const auto r = mlab::test::run_mla_bench(args);
  return {r.code, r.out + r.err};
}
}  // namespace

TEST_CASE("every subcommand of DESIGN.md §1 has --help", "[harness][cli]") {
  for (const char* sub :
       {"quickstart", "convert", "train", "eval", "report", "dashboard", "regress", "export",
        "bench", "list", "inspect", "tokenize", "generate", "score", "prompt", "memory"}) {
    const auto r = run(std::string(sub) + " --help");
    INFO(sub << ": " << r.output);
    CHECK(r.code == 0);
    CHECK_THAT(r.output, Contains("Usage:") && Contains(sub));
  }
  const auto top = run("--help");
  CHECK(top.code == 0);
  CHECK_THAT(top.output, Contains("quickstart") && Contains("fine-tuning"));
}

TEST_CASE("train without --steps or --epochs is a usage error (exit 2)", "[harness][cli]") {
  const auto r = run("train --model x --stage 1 --data y --out z");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Contains("--steps N or --epochs E"));
}

TEST_CASE("list prints each registry, unknown names get the closest match", "[harness][cli]") {
  const auto methods = run("list methods");
  CHECK(methods.code == 0);
  CHECK_THAT(methods.output, Contains("mha2mla") && Contains("h2o") && Contains("streaming_llm") &&
                                 Contains("budget [kept fraction of the tokens, in (0, 1)]"));
  CHECK_THAT(methods.output, !Contains("planned"));  // every method is implemented (F7)
  const auto tasks = run("list tasks");
  CHECK(tasks.code == 0);
  CHECK_THAT(tasks.output, Contains("docvqa_val") && Contains("mmbench_en_dev"));
  CHECK_THAT(run("list models").output, Contains("qwen2_5_vl"));
  CHECK_THAT(run("list metrics").output, Contains("anls"));
  const auto bad = run("list methds");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.output, Contains("did you mean 'methods'?"));
}

TEST_CASE("bad usage exits 2 with a hint", "[harness][cli]") {
  const auto typo = run("quickstrat");
  CHECK(typo.code == 2);
  CHECK_THAT(typo.output, Contains("did you mean 'quickstart'?"));
  CHECK(run("").code == 2);
  CHECK(run("list").code == 2);  // missing positional
  CHECK(run("quickstart --threads notanumber").code == 2);
}

TEST_CASE("runtime failures exit 1 naming the file", "[harness][cli]") {
  const auto r = run("inspect /nonexistent/model-dir");
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains("/nonexistent/model-dir"));
}

TEST_CASE("tokenize encodes and decodes with a real tokenizer.json", "[harness][cli]") {
  const std::string dir =
      (mlab::test::data_dir() / ".." / ".." / ".." / "shared" / "tokenizers" / "mistral-7b")
          .string();
  if (!std::filesystem::exists(dir + "/tokenizer.json")) {
    WARN("skipped: " << dir << " not present (the shared tokenizer files are not in this clone)");
    return;
  }
  // Mistral-7B: "Hello world" -> 22557 1526 after BOS 1 (issue F2's reference ids).
  const auto encoded = run("tokenize --tokenizer " + dir + " --text 'Hello world'");
  CHECK(encoded.code == 0);
  CHECK(encoded.output == "[1,22557,1526]\n");
  const auto decoded =
      run("tokenize --tokenizer " + dir + " --decode --skip-special --text '[1,22557,1526]'");
  CHECK(decoded.code == 0);
  CHECK(decoded.output == "Hello world\n");
  const auto missing = run("tokenize --tokenizer /nonexistent/tok --text hi");
  CHECK(missing.code == 1);
  CHECK_THAT(missing.output, Contains("/nonexistent/tok"));
}

TEST_CASE("bench: runs the benchmark executables of the build with the filter", "[harness][cli]") {
  auto r = run("bench --format xml");
  CHECK(r.code == 2);
  CHECK_THAT(r.output, Contains("console, json or csv"));
  r = run("bench --bench-dir /nonexistent");
  CHECK(r.code == 1);
  CHECK_THAT(r.output, Contains("/nonexistent") && Contains("MLAB_BENCH"));
  if (!std::filesystem::exists(std::filesystem::path(MLAB_BINARY_DIR) / "bench" /
                               "mlab_bench_kernels")) {
    WARN("built with -DMLAB_BENCH=OFF: the benchmark run is not checked");
    return;
  }
  r = run("bench --list --filter rms_norm/cpu/f32");
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Contains("== mlab_bench_kernels") &&
                           Contains("rms_norm/cpu/f32/mlab/1/4096") &&
                           Contains("rms_norm/cpu/f32/aten_fused/1/4096"));
  // One real (short) run: the kernel and its peers in the same report.
  r = run("bench --filter 'rms_norm/cpu/f32/(mlab|aten_fused)/1/4096' --format csv");
  CHECK(r.code == 0);
  CHECK_THAT(r.output, Contains("\"rms_norm/cpu/f32/mlab/1/4096\"") &&
                           Contains("\"rms_norm/cpu/f32/aten_fused/1/4096\""));
}
