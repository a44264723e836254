#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/io/safetensors.hpp"
#include "models/io/tensor_io.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Contains;
using namespace mlab::models;
using mlab::test::hex;
using mlab::test::read_json;
using mlab::test::read_file;

std::string tensor_hex(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return hex(c.data_ptr(), c.nbytes());
}

// A safetensors file image: u64 header length, `header` (space-padded to a multiple of 8 when
// `pad`), then `data`.
std::string file_image(std::string header, std::string_view data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), sizeof(n));
  return out + header + std::string(data);
}

bool inside_mapping(const SafetensorsFile& file, const at::Tensor& t) {
  const auto* p = static_cast<const std::byte*>(t.data_ptr());
  const std::byte* base = file.mapping().get();
  return p >= base && p < base + file.file_size();
}

// Compares a loaded tensor with its sidecar entry: header dtype and shape, ATen dtype and sizes,
// raw bytes, and (where the sidecar has them) the element values as doubles.
void check_against_sidecar(const TensorInfo& info, const at::Tensor& t, const json& expected) {
  INFO("tensor '" << info.name << "' " << dtype_name(info.dtype));
  CHECK(std::string(dtype_name(info.dtype)) == expected.at("dtype").get<std::string>());
  CHECK(info.shape == expected.at("shape").get<std::vector<int64_t>>());
  CHECK(t.sizes().vec() == info.shape);
  CHECK(t.scalar_type() == to_scalar_type(info.dtype));
  CHECK(t.device().is_cpu());
  CHECK(tensor_hex(t) == expected.at("hex").get<std::string>());
  if (!expected.contains("values")) return;
  const auto& strings = expected.at("values");
  const at::Tensor values = t.reshape(-1).to(at::kDouble).contiguous();  // f64 [numel]
  REQUIRE(values.numel() == static_cast<int64_t>(strings.size()));
  const double* v = values.data_ptr<double>();
  for (std::size_t i = 0; i < strings.size(); ++i) {
    const double e = std::stod(strings[i].get<std::string>());
    INFO("element " << i << ": expected " << strings[i] << ", got " << v[i]);
    if (std::isnan(e)) {
      CHECK(std::isnan(v[i]));
    } else {
      CHECK(v[i] == e);
      CHECK(std::signbit(v[i]) == std::signbit(e));
    }
  }
}

const fs::path kAllDtypes = mlab::test::data_dir() / "safetensors" / "all_dtypes.safetensors";

}  // namespace

TEST_CASE("safetensors: Python-written file with every dtype reads bit-exactly", "[safetensors]") {
  const auto file = SafetensorsFile::open(kAllDtypes);
  const json sidecar =
      read_json(mlab::test::data_dir() / "safetensors" / "all_dtypes.expected.json");

  std::set<std::string> expected_names;
  for (const auto& item : sidecar.at("tensors").items()) expected_names.insert(item.key());
  const auto names = file.names();
  CHECK(std::set<std::string>(names.begin(), names.end()) == expected_names);
  CHECK(file.metadata() == sidecar.at("metadata").get<std::map<std::string, std::string>>());
  CHECK(file.path() == kAllDtypes);

  std::set<Dtype> dtypes;
  for (const auto& info : file.tensors()) {
    check_against_sidecar(info, load_tensor(file, info), sidecar.at("tensors").at(info.name));
    dtypes.insert(info.dtype);
  }
  CHECK(dtypes.size() == 16);  // BOOL U8 I8 I16 U16 I32 U32 I64 U64 F16 BF16 F32 F64 F8 x2 C64

  // tensors() is in data-offset order and tiles the data section.
  uint64_t offset = 0;
  for (const auto& info : file.tensors()) {
    CHECK(info.begin == offset);
    offset = info.end;
  }
  CHECK(offset == file.file_size() - file.data_start());
}

TEST_CASE("safetensors: find and at with closest-match errors", "[safetensors]") {
  const auto file = SafetensorsFile::open(kAllDtypes);
  REQUIRE(file.find("float.f32") != nullptr);
  CHECK(file.find("float.f32")->dtype == Dtype::F32);
  CHECK(file.find("nope") == nullptr);
  CHECK(&file.at("int.u64") == file.find("int.u64"));
  CHECK(file.at("scalar.f32").shape.empty());
  REQUIRE_THROWS_AS(file.at("float.f33"), mlab::Error);
  REQUIRE_THROWS_WITH(file.at("float.f33"), Contains("all_dtypes.safetensors") &&
                                                Contains("no tensor 'float.f33'") &&
                                                Contains("did you mean 'float.f32'"));
}

TEST_CASE("safetensors: dtype table", "[safetensors]") {
  for (int i = 0; i <= static_cast<int>(Dtype::U64); ++i) {
    const auto dtype = static_cast<Dtype>(i);
    CHECK(parse_dtype(dtype_name(dtype)) == dtype);
  }
  CHECK(dtype_size(Dtype::BF16) == 2);
  CHECK(dtype_size(Dtype::C64) == 8);
  CHECK(dtype_size(Dtype::F8_E8M0) == 1);
  CHECK(dtype_bits(Dtype::F4) == 4);
  CHECK(dtype_bits(Dtype::F6_E3M2) == 6);
  REQUIRE_THROWS_WITH(dtype_size(Dtype::F4), Contains("F4") && Contains("not a whole number"));
  REQUIRE_THROWS_WITH(parse_dtype("BF61"), Contains("unknown dtype 'BF61'"));
  REQUIRE_THROWS_WITH(parse_dtype("f32"), Contains("did you mean 'F32'"));
}

TEST_CASE("safetensors: ATen dtype mapping", "[safetensors]") {
  for (const Dtype dtype : {Dtype::BOOL, Dtype::U8, Dtype::I8, Dtype::I16, Dtype::U16, Dtype::I32,
                            Dtype::U32, Dtype::I64, Dtype::U64, Dtype::F16, Dtype::BF16, Dtype::F32,
                            Dtype::F64, Dtype::F8_E4M3, Dtype::F8_E5M2, Dtype::C64}) {
    INFO(dtype_name(dtype));
    const at::ScalarType type = to_scalar_type(dtype);
    CHECK(from_scalar_type(type) == dtype);
    CHECK(static_cast<std::size_t>(c10::elementSize(type)) == dtype_size(dtype));
  }
  CHECK(to_scalar_type(Dtype::BF16) == at::kBFloat16);
  CHECK(to_scalar_type(Dtype::U8) == at::kByte);
  for (const Dtype dtype : {Dtype::F4, Dtype::F6_E2M3, Dtype::F6_E3M2, Dtype::F8_E8M0}) {
    REQUIRE_THROWS_WITH(to_scalar_type(dtype),
                        Contains(std::string(dtype_name(dtype))) && Contains("no ATen dtype"));
  }
  REQUIRE_THROWS_WITH(from_scalar_type(at::kComplexDouble), Contains("cannot be stored"));
  REQUIRE_THROWS_AS(from_scalar_type(at::kQInt8), mlab::Error);
}

TEST_CASE("safetensors: aligned tensors are zero-copy views of the mapping", "[safetensors]") {
  at::Tensor kept;
  std::string kept_hex;
  {
    auto file = SafetensorsFile::open(kAllDtypes);
    for (const auto& info : file.tensors()) {
      if (info.numel() == 0) continue;
      INFO(info.name);
      const at::Tensor t = load_tensor(file, info);
      CHECK(inside_mapping(file, t));
      CHECK(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % dtype_size(info.dtype) == 0);
    }
    kept = load_tensor(file, file.at("float.f64"));
    kept_hex = hex(file.bytes(file.at("float.f64")).data(), file.at("float.f64").nbytes());
  }
  // The tensor keeps the mapping alive after the file object is gone.
  CHECK(tensor_hex(kept) == kept_hex);

  // Writes are copy-on-write: visible through the tensor, never in the file.
  const std::string before = read_file(kAllDtypes);
  kept.fill_(42.0);
  CHECK(kept.eq(42.0).all().item<bool>());
  CHECK(read_file(kAllDtypes) == before);
}

TEST_CASE("safetensors: misaligned tensors are copied correctly", "[safetensors]") {
  const float values[3] = {1.5f, -2.25f, 1e30f};
  std::string data = "\x07";  // U8 [1], pushes the F32 tensor to an odd offset
  data.append(reinterpret_cast<const char*>(values), sizeof(values));
  const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("b":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}})";

  SECTION("odd offset inside an aligned data section") {
    const auto file = SafetensorsFile::from_bytes(file_image(header, data), "odd-offset");
    const at::Tensor b = load_tensor(file, file.at("b"));  // f32 [3]
    CHECK_FALSE(inside_mapping(file, b));
    CHECK(b.scalar_type() == at::kFloat);
    CHECK(std::memcmp(b.data_ptr(), values, sizeof(values)) == 0);
    const at::Tensor a = load_tensor(file, file.at("a"));  // u8 [1]: always aligned
    CHECK(inside_mapping(file, a));
    CHECK(a.item<uint8_t>() == 7);
  }
  SECTION("unpadded header misaligns the whole data section") {
    std::string unpadded = R"({"w":{"dtype":"F64","shape":[2,1],"data_offsets":[0,16]}})";
    if ((8 + unpadded.size()) % 8 == 0) unpadded += ' ';
    const double w[2] = {3.0, -0.5};
    const fs::path path = mlab::test::scratch_dir("st-misaligned") / "w.safetensors";
    {
      std::ofstream out(path, std::ios::binary);
      out << file_image(unpadded, std::string_view(reinterpret_cast<const char*>(w), sizeof(w)),
                        /*pad=*/false);
    }
    const auto file = SafetensorsFile::open(path);
    REQUIRE(file.data_start() % 8 != 0);
    const at::Tensor t = load_tensor(file, file.at("w"));  // f64 [2, 1]
    CHECK_FALSE(inside_mapping(file, t));
    CHECK(t.sizes().vec() == std::vector<int64_t>{2, 1});
    CHECK(t[0][0].item<double>() == 3.0);
    CHECK(t[1][0].item<double>() == -0.5);
  }
}

TEST_CASE("safetensors: C++ writer round trip", "[safetensors]") {
  const fs::path path = mlab::test::scratch_dir("st-write") / "out.safetensors";
  at::manual_seed(3);
  std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", at::randn({4, 3})},
      {"f32.transposed", at::randn({3, 5}).t()},  // non-contiguous input
      {"bf16", at::randn({7}).to(at::kBFloat16)},
      {"f16", at::randn({2, 2}).to(at::kHalf)},
      {"f64", at::randn({3}, at::kDouble)},
      {"f8", at::randn({5}).to(at::kFloat8_e4m3fn)},
      {"f8b", at::randn({5}).to(at::kFloat8_e5m2)},
      {"i64", at::arange(-5, 5, at::kLong)},
      {"i32", at::arange(9, at::kInt).reshape({3, 3})},
      {"i16", at::arange(3, at::kShort)},
      {"i8", at::arange(-3, 3, at::kChar)},
      {"u8", at::arange(255, 250, -1, at::kByte)},
      {"u16", at::arange(4, at::kInt).to(at::kUInt16)},
      {"u32", at::arange(4, at::kInt).to(at::kUInt32)},
      {"u64", at::arange(4, at::kLong).to(at::kUInt64)},
      {"bool", at::arange(6).remainder(2).to(at::kBool)},
      {"c64", at::randn({2}, at::kComplexFloat)},
      {"scalar", at::scalar_tensor(2.5)},
      {"empty", at::empty({0, 3})},
      {"b.offset_view", at::arange(10, at::kFloat).slice(0, 3, 7)},
  };
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"k", "v \u00e9"}};
  save_safetensors(path, tensors, metadata);

  const auto file = SafetensorsFile::open(path);
  CHECK(file.metadata() == metadata);
  CHECK(file.tensors().size() == tensors.size());
  CHECK((file.data_start() - 8) % 8 == 0);  // header padded to a multiple of 8
  for (const auto& [name, expected] : tensors) {
    INFO(name);
    const at::Tensor t = load_tensor(file, file.at(name));
    CHECK(t.scalar_type() == expected.scalar_type());
    CHECK(t.sizes() == expected.sizes());
    CHECK(tensor_hex(t) == tensor_hex(expected));
    CHECK((t.numel() == 0 || inside_mapping(file, t)));  // layout keeps every tensor aligned
  }
  // huggingface/safetensors order: descending dtype, then name.
  for (std::size_t i = 1; i < file.tensors().size(); ++i) {
    const auto& a = file.tensors()[i - 1];
    const auto& b = file.tensors()[i];
    CHECK((a.dtype > b.dtype || (a.dtype == b.dtype && a.name < b.name)));
  }
  // No temporary files left next to the output.
  CHECK(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator{}) == 1);
}

TEST_CASE("safetensors: writer rejects bad input and never leaves partial files", "[safetensors]") {
  const fs::path dir = mlab::test::scratch_dir("st-write-bad");
  const fs::path path = dir / "bad.safetensors";
  const std::byte bytes[16] = {};
  const auto write = [&](std::vector<TensorBytes> tensors) { write_safetensors(path, tensors); };

  REQUIRE_THROWS_WITH(write({{"w", Dtype::F32, {2, 2}, {bytes, 12}}}),
                      Contains("bad.safetensors") && Contains("needs 16 bytes but 12"));
  REQUIRE_THROWS_WITH(write({{"w", Dtype::U8, {1}, {bytes, 1}}, {"w", Dtype::U8, {1}, {bytes, 1}}}),
                      Contains("bad.safetensors") && Contains("duplicate tensor name 'w'"));
  REQUIRE_THROWS_WITH(write({{"__metadata__", Dtype::U8, {1}, {bytes, 1}}}), Contains("reserved"));
  REQUIRE_THROWS_WITH(write({{"w", Dtype::U8, {-1}, {bytes, 0}}}), Contains("negative"));
  REQUIRE_THROWS_WITH(write({{"w", Dtype::F4, {3}, {bytes, 1}}}),
                      Contains("not a whole number of bytes"));
  CHECK(fs::is_empty(dir));

  REQUIRE_THROWS_WITH(write_safetensors(dir / "missing" / "x.safetensors", {}),
                      Contains("missing/x.safetensors") && Contains("cannot create"));

  // A failed write leaves an existing file untouched.
  write({{"w", Dtype::U8, {2}, {bytes, 2}}});
  const std::string good = read_file(path);
  REQUIRE_THROWS(write({{"w", Dtype::U8, {2}, {bytes, 3}}}));
  CHECK(read_file(path) == good);
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}) == 1);

  // Tensors on any device/dtype: unsupported ones are named.
  REQUIRE_THROWS_WITH(
      save_safetensors(path, {{"z", at::zeros({2}, at::kComplexDouble)}}),
      Contains("bad.safetensors") && Contains("tensor 'z'") && Contains("cannot be stored"));
}

TEST_CASE("safetensors: empty file list and metadata-only files", "[safetensors]") {
  const fs::path path = mlab::test::scratch_dir("st-empty") / "none.safetensors";
  write_safetensors(path, {}, {{"only", "metadata"}});
  const auto file = SafetensorsFile::open(path);
  CHECK(file.tensors().empty());
  CHECK(file.metadata().at("only") == "metadata");
  const auto bare = SafetensorsFile::from_bytes(file_image("{}", ""), "bare");
  CHECK(bare.tensors().empty());
  CHECK(bare.metadata().empty());
}
