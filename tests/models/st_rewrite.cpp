// st_rewrite: reads a safetensors checkpoint with mlab's reader and writes it back with mlab's
// writer, for tools/fixtures/check_safetensors_roundtrip.py (Python safetensors is the oracle).
//   st_rewrite <input file|dir> <output.safetensors>                 one file (save_safetensors)
//   st_rewrite <input file|dir> <output dir> [max_shard_bytes]        save_checkpoint
#include <ATen/ATen.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::cerr << "usage: st_rewrite <input file|dir> <output.safetensors | output dir "
                 "[max_shard_bytes]>\n";
    return 2;
  }
  try {
    const auto checkpoint = mlab::models::Checkpoint::open(argv[1]);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& name : checkpoint.names()) tensors.emplace_back(name, checkpoint.get(name));
    const std::string output = argv[2];
    const std::string_view suffix = ".safetensors";
    if (argc == 3 && output.size() > suffix.size() &&
        output.compare(output.size() - suffix.size(), suffix.size(), suffix) == 0) {
      mlab::models::save_safetensors(output, tensors, checkpoint.metadata());
    } else {
      const uint64_t max_shard_bytes = argc == 4 ? std::stoull(argv[3]) : 0;
      mlab::models::save_checkpoint(output, tensors, checkpoint.metadata(), max_shard_bytes);
    }
    std::cout << "st_rewrite: " << tensors.size() << " tensors from " << argv[1] << " -> " << output
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "st_rewrite: " << e.what() << "\n";
    return 1;
  }
}
