// One handcrafted corrupted file per validation rule of the safetensors reader (specs/anchors.md
// §4.3, in the style of llama.cpp's tests/test-gguf.cpp) and per rule of the checkpoint index;
// each must fail with an mlab::Error naming the file and the problem, never crash.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/safetensors.hpp"
#include "models/io/tensor_io.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using namespace mlab::models;
using mlab::test::read_file;

// u64 length + header (space-padded to a multiple of 8) + data.
std::string file_image(std::string header, std::string_view data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), sizeof(n)) + header + std::string(data);
}

// A file whose first 8 bytes claim `header_length` followed by `rest`.
std::string raw_image(uint64_t header_length, std::string_view rest) {
  return std::string(reinterpret_cast<const char*>(&header_length), sizeof(header_length)) +
         std::string(rest);
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

// A header entry: "name":{"dtype":..,"shape":..,"data_offsets":[begin,end]}.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":[" + std::to_string(begin) + "," + std::to_string(end) + "]}";
}

struct BadFile {
  std::string name;    // file name stem, also the section name
  std::string bytes;   // the whole file
  std::string phrase;  // what the error must say
};

std::vector<BadFile> bad_files() {
  const std::string data16(16, '\0');
  const std::string w = entry("w", "F32", "[2,2]", 0, 16);
  return {
      {"empty", "", "header too small"},
      {"seven_bytes", std::string(7, '\0'), "header too small"},
      {"header_too_large", raw_image(100'000'001, "{}"), "header too large"},
      {"header_length_max", raw_image(UINT64_MAX, "{}"), "header too large"},
      {"header_past_end", raw_image(64, "{}      "), "invalid header length"},
      {"not_utf8", file_image("{\"w\xff\":{}}", ""), "not valid UTF-8"},
      {"overlong_utf8", file_image("{\"w\xc0\xaf\":{}}", ""), "not valid UTF-8"},
      {"surrogate_utf8", file_image("{\"w\xed\xa0\x80\":{}}", ""), "not valid UTF-8"},
      {"not_json", file_image("{\"w\": nope}", ""), "not valid JSON"},
      {"trailing_garbage", file_image("{}x", ""), "not valid JSON"},
      {"deep_nesting", file_image(std::string(200, '[') + std::string(200, ']'), ""),
       "nesting deeper"},
      {"not_object", file_image("[1,2]", ""), "must be a JSON object"},
      {"entry_not_object", file_image("{\"w\":5}", ""), "entry must be a JSON object"},
      {"missing_dtype", file_image(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", data16),
       "missing key 'dtype'"},
      {"missing_shape", file_image(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", data16),
       "missing key 'shape'"},
      {"missing_offsets", file_image(R"({"w":{"dtype":"F32","shape":[1]}})", data16),
       "missing key 'data_offsets'"},
      {"dtype_not_string",
       file_image(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", data16),
       "'dtype' must be a string"},
      {"unknown_dtype", file_image("{" + entry("w", "F17", "[2,2]", 0, 16) + "}", data16),
       "unknown dtype 'F17'"},
      {"shape_not_array",
       file_image(R"({"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})", data16),
       "'shape' must be an array"},
      {"negative_dim", file_image("{" + entry("w", "F32", "[-2,2]", 0, 16) + "}", data16),
       "negative dimension"},
      {"float_dim", file_image("{" + entry("w", "F32", "[2.5,2]", 0, 16) + "}", data16),
       "non-integer dimension"},
      {"string_dim", file_image("{" + entry("w", "F32", "[\"2\",2]", 0, 16) + "}", data16),
       "non-integer dimension"},
      {"huge_dim", file_image("{" + entry("w", "U8", "[9223372036854775808]", 0, 16) + "}", data16),
       "too large for int64"},
      {"offsets_three",
       file_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}})", data16),
       "'data_offsets' must be two non-negative integers"},
      {"offsets_negative",
       file_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[-4,12]}})", data16),
       "'data_offsets' must be two non-negative integers"},
      {"offsets_not_array",
       file_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":"0-16"}})", data16),
       "'data_offsets' must be two non-negative integers"},
      {"begin_after_end", file_image("{" + entry("w", "F32", "[0]", 16, 0) + "}", data16),
       "begin > end"},
      {"gap",
       file_image(
           "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[2]", 8, 16) + "}",
           data16),
       "gap of 4 bytes"},
      {"overlap",
       file_image("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) +
                      "," + entry("c", "F32", "[1]", 12, 16) + "}",
                  data16),
       "overlap"},
      {"first_not_at_zero", file_image("{" + entry("w", "F32", "[3]", 4, 16) + "}", data16),
       "must start at 0"},
      {"numel_overflow",
       file_image("{" + entry("w", "F32", "[4294967296,4294967296]", 0, 16) + "}", data16),
       "overflows 64 bits"},
      {"size_mismatch", file_image("{" + entry("w", "F32", "[2,2]", 0, 12) + "}", data16),
       "hold 12 bytes but F32 [2, 2] needs 16"},
      {"sub_byte_misaligned", file_image("{" + entry("w", "F4", "[3]", 0, 16) + "}", data16),
       "misaligned slice"},
      {"trailing_bytes", file_image("{" + w + "}", data16 + "xyz"), "3 trailing bytes"},
      {"truncated", file_image("{" + w + "}", data16.substr(0, 10)), "truncated"},
      {"no_tensors_but_data", file_image("{}", "abc"), "trailing bytes"},
      {"duplicate_name",
       file_image(
           "{" + entry("w", "F32", "[2]", 0, 8) + "," + entry("w", "F32", "[2]", 8, 16) + "}",
           data16),
       "duplicate key 'w'"},
      {"duplicate_field",
       file_image(R"({"w":{"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                  data16),
       "duplicate key 'dtype'"},
      {"metadata_not_object", file_image(R"({"__metadata__":["a"]})", ""),
       "__metadata__ must be a JSON object"},
      {"metadata_not_strings", file_image(R"({"__metadata__":{"epoch":3}})", ""),
       "__metadata__ must map strings to strings"},
      {"unknown_entry_key",
       file_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"crc":1}})", data16),
       "unknown key 'crc'"},
  };
}

// A valid 2-shard checkpoint in `dir`: a.w (F32 [2]) in shard 1, b.w (U8 [4]) in shard 2.
void write_valid_shards(const fs::path& dir) {
  const std::byte bytes[8] = {};
  write_safetensors(dir / "model-00001-of-00002.safetensors",
                    {{"a.w", Dtype::F32, {2}, {bytes, 8}}});
  write_safetensors(dir / "model-00002-of-00002.safetensors",
                    {{"b.w", Dtype::U8, {4}, {bytes, 4}}});
}

constexpr const char* kGoodIndex = R"({"metadata": {"total_size": 12}, "weight_map": {
  "a.w": "model-00001-of-00002.safetensors", "b.w": "model-00002-of-00002.safetensors"}})";

struct BadCheckpoint {
  std::string name;
  std::string index;   // contents of model.safetensors.index.json ("" = none)
  std::string phrase;  // what the error must say
  std::string names_file = "model.safetensors.index.json";  // the file the error must name
  void (*tweak)(const fs::path& dir) = nullptr;             // extra damage after the shards
};

std::vector<BadCheckpoint> bad_checkpoints() {
  return {
      {"index_not_json", "{\"weight_map\": {", "index is not valid JSON"},
      {"index_not_utf8", "{\"weight_map\": {\"a\xff\": 1}}", "not valid UTF-8"},
      {"index_not_object", "[]", "index must be a JSON object"},
      {"no_weight_map", R"({"metadata": {}})", "no 'weight_map'"},
      {"weight_map_not_object", R"({"weight_map": ["a.w"]})", "'weight_map' must be an object"},
      {"weight_map_value_not_string",
       R"({"weight_map": {"a.w": 1, "b.w": "model-00002-of-00002.safetensors"}})",
       "must be a shard file name"},
      {"weight_map_duplicate",
       R"({"weight_map": {"a.w": "model-00001-of-00002.safetensors",
           "a.w": "model-00001-of-00002.safetensors"}})",
       "duplicate key 'a.w'"},
      {"total_size_not_integer",
       R"({"metadata": {"total_size": "12"}, "weight_map": {
           "a.w": "model-00001-of-00002.safetensors", "b.w": "model-00002-of-00002.safetensors"}})",
       "total_size must be a non-negative integer"},
      {"shard_outside_dir", R"({"weight_map": {"a.w": "../model-00001-of-00002.safetensors"}})",
       "not a file name inside the checkpoint directory"},
      {"missing_shard",
       R"({"weight_map": {"a.w": "model-00001-of-00002.safetensors",
           "b.w": "model-00002-of-00002.safetensors", "c.w": "model-00003-of-00003.safetensors"}})",
       "shard 'model-00003-of-00003.safetensors'"},
      {"listed_but_absent",
       R"({"weight_map": {"a.w": "model-00001-of-00002.safetensors",
           "b.w": "model-00002-of-00002.safetensors", "a.x": "model-00001-of-00002.safetensors"}})",
       "tensor 'a.x' is listed in shard 'model-00001-of-00002.safetensors' but absent"},
      {"not_listed", kGoodIndex,
       "shard 'model-00001-of-00002.safetensors' holds tensors not listed in the weight_map: "
       "a.extra",
       "model.safetensors.index.json",
       [](const fs::path& dir) {
         const std::byte bytes[8] = {};
         write_safetensors(
             dir / "model-00001-of-00002.safetensors",
             {{"a.w", Dtype::F32, {2}, {bytes, 8}}, {"a.extra", Dtype::U8, {1}, {bytes, 1}}});
       }},
      {"in_two_shards", kGoodIndex, "tensor 'a.w' is present in two shards",
       "model.safetensors.index.json",
       [](const fs::path& dir) {
         const std::byte bytes[8] = {};
         write_safetensors(
             dir / "model-00002-of-00002.safetensors",
             {{"b.w", Dtype::U8, {4}, {bytes, 4}}, {"a.w", Dtype::F32, {2}, {bytes, 8}}});
       }},
      {"corrupt_shard", kGoodIndex, "truncated", "model-00002-of-00002.safetensors",
       [](const fs::path& dir) {
         const fs::path shard = dir / "model-00002-of-00002.safetensors";
         std::string bytes = read_file(shard);
         bytes.pop_back();
         write_file(shard, bytes);
       }},
      {"no_weights_in_dir", "", "no model.safetensors or model.safetensors.index.json",
       "no_weights_in_dir"},
  };
}

}  // namespace

TEST_CASE("malformed safetensors files fail with a named error", "[malformed]") {
  const fs::path dir = mlab::test::scratch_dir("st-malformed");
  const auto cases = bad_files();
  REQUIRE(cases.size() >= 25);
  for (const auto& bad : cases) {
    DYNAMIC_SECTION(bad.name) {
      const std::string file_name = bad.name + ".safetensors";
      const fs::path path = dir / file_name;
      write_file(path, bad.bytes);
      REQUIRE_THROWS_AS(SafetensorsFile::open(path), mlab::Error);
      REQUIRE_THROWS_WITH(SafetensorsFile::open(path),
                          Contains(path.string() + ": ") && Contains(bad.phrase));
      // The same bytes in memory fail the same way, under the display name.
      REQUIRE_THROWS_WITH(SafetensorsFile::from_bytes(bad.bytes, "mem:" + bad.name),
                          Contains("mem:" + bad.name + ": ") && Contains(bad.phrase));
      // And through a checkpoint.
      REQUIRE_THROWS_WITH(Checkpoint::open(path), Contains(file_name) && Contains(bad.phrase));
    }
  }
}

TEST_CASE("malformed sharded checkpoints fail with a named error", "[malformed]") {
  for (const auto& bad : bad_checkpoints()) {
    DYNAMIC_SECTION(bad.name) {
      const fs::path dir = mlab::test::scratch_dir("ckpt-malformed") / bad.name;
      fs::create_directories(dir);
      write_valid_shards(dir);
      if (!bad.index.empty()) write_file(dir / "model.safetensors.index.json", bad.index);
      if (bad.tweak) bad.tweak(dir);
      REQUIRE_THROWS_AS(Checkpoint::open(dir), mlab::Error);
      REQUIRE_THROWS_WITH(Checkpoint::open(dir), Contains(bad.names_file) && Contains(bad.phrase));
    }
  }
}

TEST_CASE("a valid sharded checkpoint passes the checks the malformed ones fail", "[malformed]") {
  const fs::path dir = mlab::test::scratch_dir("ckpt-good");
  write_valid_shards(dir);
  write_file(dir / "model.safetensors.index.json", kGoodIndex);
  const auto checkpoint = Checkpoint::open(dir);
  CHECK(checkpoint.names() == std::vector<std::string>{"a.w", "b.w"});
  CHECK(checkpoint.get("b.w").sizes().vec() == std::vector<int64_t>{4});
}

TEST_CASE("unsupported dtypes fail at tensor conversion and name the file and tensor",
          "[malformed]") {
  const std::string data(4, '\x11');
  const auto file =
      SafetensorsFile::from_bytes(file_image("{" + entry("e", "F8_E8M0", "[2]", 0, 2) + "," +
                                                 entry("f", "F4", "[4]", 2, 4) + "}",
                                             data),
                                  "exotic.safetensors");
  CHECK(file.at("e").dtype == Dtype::F8_E8M0);
  CHECK(file.at("f").nbytes() == 2);
  REQUIRE_THROWS_WITH(load_tensor(file, file.at("e")),
                      Contains("exotic.safetensors: tensor 'e'") && Contains("F8_E8M0"));
  REQUIRE_THROWS_WITH(load_tensor(file, file.at("f")),
                      Contains("exotic.safetensors: tensor 'f'") && Contains("F4"));
}

TEST_CASE("random corruption of a valid file never crashes", "[malformed]") {
  const std::string good =
      read_file(mlab::test::data_dir() / "safetensors" / "all_dtypes.safetensors");
  std::mt19937_64 rng(12345);
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = good;
    uint64_t header = 0;
    std::memcpy(&header, good.data(), sizeof(header));
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !bytes.empty(); ++e) {
      // Mostly hit the header, where the parser lives.
      const std::size_t limit = rng() % 4 ? 8 + header : bytes.size();
      const std::size_t at = rng() % std::max<std::size_t>(1, std::min(limit, bytes.size()));
      switch (rng() % 5) {
        case 0:
          bytes[at] = static_cast<char>(rng());
          break;
        case 1:
          bytes[at] = "0123456789[]{},:\"-. "[rng() % 20];
          break;
        case 2:
          bytes.erase(at, 1 + rng() % 8);
          break;
        case 3:
          bytes.insert(at, 1 + rng() % 3, "9,]"[rng() % 3]);
          break;
        default:
          bytes.resize(at);
          break;
      }
    }
    try {
      const auto file = SafetensorsFile::from_bytes(bytes, "fuzz");
      for (const auto& info : file.tensors()) {
        try {
          CHECK(load_tensor(file, info).clone().nbytes() == info.nbytes());
        } catch (const mlab::Error&) {
          // unsupported dtype after a mutation: fine
        }
      }
      ++accepted;
    } catch (const mlab::Error& e) {
      REQUIRE_THAT(e.what(), Catch::StartsWith("fuzz: "));
      ++rejected;
    }
  }
  CHECK(rejected > 0);
  INFO("accepted " << accepted << ", rejected " << rejected);
  CHECK(accepted + rejected == 3000);
}
