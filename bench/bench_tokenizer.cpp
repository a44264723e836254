// Tokenizer encode throughput (F2 acceptance 4): MB/s of mlab::Tokenizer::encode on a generated
// 10 MB mixed corpus (documents of ~4 KB assembled from the test corpus: many scripts, emoji,
// white space runs, numbers, code, special tokens), per tokenizer, next to Python `tokenizers`
// encoding the same documents in one thread (tools/fixtures/tokenizer_oracle.py bench, run in
// the same process's time window). Counters: python_MB_per_s and ratio (ours / Python).
//
// Run: build/bench/mlab_bench_tokenizer [--benchmark_filter=llama3]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "models/tokenizer/tokenizer.hpp"

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kCorpusBytes = 10'000'000;
constexpr std::size_t kDocumentBytes = 4096;

fs::path source_dir() { return MLAB_SOURCE_DIR; }

fs::path tokenizer_path(const std::string& name) {
  if (name == "llama2") return source_dir() / "tests/data/tokenizers/llama2/tokenizer.json";
  fs::path shared = source_dir() / ".." / "shared" / "tokenizers";
  if (const char* env = std::getenv("MLAB_TOKENIZERS_DIR"); env != nullptr && *env != 0)
    shared = env;
  return shared / (name == "mistral" ? "mistral-7b" : name) / "tokenizer.json";
}

// ~10 MB of documents from the committed corpus, seeded.
std::vector<std::string> make_documents() {
  std::ifstream in(source_dir() / "tests/data/tokenizers/corpus.jsonl");
  std::vector<std::string> pool;
  for (std::string line; std::getline(in, line);) {
    auto s = nlohmann::json::parse(line).get<std::string>();
    if (!s.empty()) pool.push_back(std::move(s));
  }
  if (pool.empty()) throw std::runtime_error("tests/data/tokenizers/corpus.jsonl missing");
  std::mt19937_64 rng(1234);
  const char* separators[] = {" ", "\n", "\n\n", " ", ". ", ", "};
  std::vector<std::string> docs;
  std::size_t total = 0;
  while (total < kCorpusBytes) {
    std::string doc;
    while (doc.size() < kDocumentBytes) {
      doc += pool[rng() % pool.size()];
      doc += separators[rng() % 6];
    }
    total += doc.size();
    docs.push_back(std::move(doc));
  }
  return docs;
}

const std::vector<std::string>& documents() {
  static const std::vector<std::string> docs = make_documents();
  return docs;
}

// Writes the documents once for the Python side.
const fs::path& documents_file() {
  static const fs::path path = [] {
    const fs::path p = fs::temp_directory_path() / "mlab_bench_tokenizer_docs.jsonl";
    std::ofstream out(p);
    for (const auto& d : documents()) out << nlohmann::json(d).dump() << "\n";
    return p;
  }();
  return path;
}

// Python tokenizers' single-thread MB/s on the same documents, or 0 when unavailable.
double python_mb_per_s(const fs::path& tokenizer) {
  const std::string command = std::string("\"") + MLAB_PYTHON + "\" \"" +
                              (source_dir() / "tools/fixtures/tokenizer_oracle.py").string() +
                              "\" bench \"" + tokenizer.string() + "\" \"" +
                              documents_file().string() + "\" 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return 0;
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  if (pclose(pipe) != 0) {
    std::cerr << "python tokenizers benchmark failed: " << output << "\n";
    return 0;
  }
  return nlohmann::json::parse(output.substr(output.find('{'))).at("mb_per_s").get<double>();
}

void bench_encode(benchmark::State& state, const std::string& name) {
  const fs::path path = tokenizer_path(name);
  if (!fs::exists(path)) {
    state.SkipWithError(("tokenizer not found: " + path.string()).c_str());
    return;
  }
  const auto tok = mlab::Tokenizer::from_file(path);
  const auto& docs = documents();
  std::size_t bytes = 0;
  for (const auto& d : docs) {
    bytes += d.size();
    benchmark::DoNotOptimize(tok.encode(d));  // warm-up pass (fills the word cache, as Python's)
  }
  const double python = python_mb_per_s(path);
  std::size_t ids = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    for (const auto& d : docs) {
      auto encoded = tok.encode(d);
      ids += encoded.size();
      benchmark::DoNotOptimize(encoded);
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double ours =
      static_cast<double>(bytes) * static_cast<double>(state.iterations()) / seconds / 1e6;
  state.SetBytesProcessed(static_cast<int64_t>(bytes * state.iterations()));
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["ids"] = static_cast<double>(ids / state.iterations());
  state.counters["our_MB_per_s"] = ours;
  state.counters["python_MB_per_s"] = python;
  state.counters["ratio"] = python > 0 ? ours / python : 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* name : {"llama2", "mistral", "llama3", "qwen2.5"}) {
    benchmark::RegisterBenchmark((std::string("encode/") + name).c_str(),
                                 [name](benchmark::State& s) { bench_encode(s, name); })
        ->Unit(benchmark::kMillisecond)
        ->Iterations(3)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
