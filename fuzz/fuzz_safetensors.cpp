// libFuzzer harness for the safetensors header parser (specs/anchors.md §4.4): any input must
// either parse or throw mlab::Error; a crash, a sanitizer report or another exception is a bug.
// Build: cmake -DMLAB_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && ./fuzz/fuzz_safetensors corpus/
#include "core/error.hpp"
#include "models/io/safetensors.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = mlab::models::SafetensorsFile::from_bytes(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    // Touch every validated tensor's bytes: they must lie inside the buffer.
    std::size_t sum = 0;
    for (const auto& info : file.tensors()) {
      for (const std::byte b : file.bytes(info)) sum += static_cast<std::size_t>(b);
      (void)file.at(info.name);
    }
    (void)file.metadata();
    return sum == SIZE_MAX ? 1 : 0;
  } catch (const mlab::Error&) {
    return 0;
  }
}
