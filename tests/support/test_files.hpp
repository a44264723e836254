#pragma once
// File helpers shared by the tests: whole-file reads, JSON fixtures, hex dumps of raw bytes.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.hpp"

namespace mlab::test {

// The whole file as bytes; throws mlab::Error naming the path when it cannot be opened.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  MLAB_CHECK(in.good(), path.string(), ": cannot open");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The file parsed as JSON; throws (nlohmann or mlab::Error) naming nothing more than the parser.
inline nlohmann::json read_json(const std::filesystem::path& path) {
  return nlohmann::json::parse(read_file(path));
}

// Lower-case hex of `size` bytes at `data` ("00ff...").
inline std::string hex(const void* data, std::size_t size) {
  static const char* kDigits = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

}  // namespace mlab::test
