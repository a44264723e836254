#pragma once
// Shared by the tests that run `mla-bench train` / `mla-bench mha2mla` through the binary
// (test_train_run, test_train_distributed, test_train_store, test_mha2mla_pipeline): tiny
// LLaVA-format training data over tests/data/images, the train_log.jsonl a run writes, a run
// started in the background and killed with SIGKILL, and (in Torch tests) two checkpoints
// compared tensor by tensor. Include after the project headers (it pulls the test prelude).
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if MLAB_TEST_WITH_TORCH
#include "models/io/checkpoint.hpp"
#endif
#include "tests/support/catch_torch.hpp"

namespace mlab::test {

// The test images the datasets use (tests/data/images), copied into DIR/img.
inline const std::vector<std::string>& train_images() {
  static const std::vector<std::string> images = {"tiny.png", "gray.png", "rgba.png", "tall.png"};
  return images;
}

inline void copy_train_images(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir / "img");
  for (const auto& name : train_images()) {
    std::filesystem::copy_file(data_dir() / "images" / name, dir / "img" / name,
                               std::filesystem::copy_options::overwrite_existing);
  }
}

// One LLaVA-format record: a human turn "<image>\n`question`" over img/`image`, a gpt answer.
inline nlohmann::json llava_record(const std::string& id, const std::string& image,
                                   const std::string& question, const std::string& answer) {
  return {{"id", id},
          {"image", "img/" + image},
          {"conversations",
           {{{"from", "human"}, {"value", "<image>\n" + question}},
            {{"from", "gpt"}, {"value", answer}}}}};
}

// Writes DIR/data.json: `records` (images named img/<name>, copied into DIR/img). Returns its path.
inline std::filesystem::path write_train_json(const std::filesystem::path& dir,
                                              const nlohmann::json& records) {
  copy_train_images(dir);
  const std::filesystem::path path = dir / "data.json";
  std::ofstream(path) << records.dump(1);
  return path;
}

// DIR/data.json with record i = "s<i>" asking qa[i].first over image i % 4, answering
// qa[i].second, then `extra`.
inline std::filesystem::path write_llava_dataset(
    const std::filesystem::path& dir, const std::vector<std::pair<std::string, std::string>>& qa,
    const std::vector<nlohmann::json>& extra = {}) {
  const auto& images = train_images();
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < qa.size(); ++i) {
    list.push_back(llava_record("s" + std::to_string(i), images[i % images.size()], qa[i].first,
                                qa[i].second));
  }
  for (const auto& e : extra) list.push_back(e);
  return write_train_json(dir, list);
}

// "train --stage S --model M --data D --out O": the start of a `mla-bench train` command line.
inline std::string train_command(int stage, const std::filesystem::path& model,
                                 const std::filesystem::path& data,
                                 const std::filesystem::path& out) {
  return "train --stage " + std::to_string(stage) + " --model " + model.string() + " --data " +
         data.string() + " --out " + out.string();
}

// The lines of OUT/train_log.jsonl (one JSON object per logged step; empty lines skipped).
inline std::vector<nlohmann::json> read_train_log(const std::filesystem::path& out) {
  std::ifstream in(out / "train_log.jsonl");
  std::vector<nlohmann::json> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

// Starts `mla-bench ARGS` in the background (stdout and stderr to `log`, its pid written to
// `pid_file`), waits `settle`, and returns the pid.
inline int start_mla_bench(const std::string& args, const std::filesystem::path& log,
                           const std::filesystem::path& pid_file,
                           std::chrono::milliseconds settle) {
  const std::string cmd = std::string(MLAB_BINARY_DIR) + "/mla-bench " + args + " >" +
                          log.string() + " 2>&1 & echo $! >" + pid_file.string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::this_thread::sleep_for(settle);
  int pid = 0;
  std::ifstream(pid_file) >> pid;
  REQUIRE(pid > 0);
  return pid;
}

// Polls every `poll`, `tries` times at most, until `path` exists; then kill -9 `pid` and give it
// 200 ms to die.
inline void kill_when_exists(int pid, const std::filesystem::path& path, int tries,
                             std::chrono::milliseconds poll) {
  for (int i = 0; i < tries && !std::filesystem::exists(path); ++i) {
    std::this_thread::sleep_for(poll);
  }
  ::kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

#if MLAB_TEST_WITH_TORCH
// The model files of two checkpoint dirs hold the same tensor names and equal tensors, bit for bit.
inline void check_same_weights(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto x = models::Checkpoint::open(a), y = models::Checkpoint::open(b);
  REQUIRE(x.names() == y.names());
  int64_t differ = 0;
  for (const auto& name : x.names()) {
    INFO(name);
    differ += !at::equal(x.get(name), y.get(name));
  }
  CHECK(differ == 0);
}
#endif

}  // namespace mlab::test
