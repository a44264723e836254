// Quanto- and HQQ-style KV quantizers (specs/baselines.md §2, §3, §7) against the packages they
// reproduce: tests/data/quant/*.safetensors hold optimum-quanto 0.2.7's and hqq 0.2.2's packed
// bytes, scales, shifts/zeros and reconstructions (tools/fixtures/make_quant_fixtures.py), which
// must match bit for bit; plus the hand-derived cases T1-T5 of §7 and the byte accounting.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "methods/hqq/hqq_quantizer.hpp"
#include "methods/quanto/quanto_quantizer.hpp"
#include "models/io/safetensors.hpp"
#include "models/io/tensor_io.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

namespace fs = std::filesystem;
using mlab::methods::HqqOptions;
using mlab::methods::HqqQuantizer;
using mlab::methods::HqqTensor;
using mlab::methods::QuantoOptions;
using mlab::methods::QuantoQuantizer;
using mlab::methods::QuantoTensor;
using mlab::models::SafetensorsFile;

fs::path quant_dir() { return mlab::test::data_dir() / "quant"; }

at::Tensor load(const SafetensorsFile& file, const std::string& name) {
  return mlab::models::load_tensor(file, file.at(name));
}

nlohmann::json cases_of(const SafetensorsFile& file) {
  return nlohmann::json::parse(file.metadata().at("cases"));
}

// "" when got and want have the same dtype, shape and bytes; else the first difference.
std::string bitwise_mismatch(const at::Tensor& got, const at::Tensor& want) {
  std::ostringstream out;
  if (got.scalar_type() != want.scalar_type()) {
    out << "dtype " << got.scalar_type() << " != expected " << want.scalar_type();
    return out.str();
  }
  if (got.sizes() != want.sizes()) {
    out << "shape " << got.sizes() << " != expected " << want.sizes();
    return out.str();
  }
  const at::Tensor g = got.contiguous();
  const at::Tensor w = want.contiguous();
  const auto es = static_cast<int64_t>(g.element_size());
  const auto* gp = static_cast<const unsigned char*>(g.data_ptr());
  const auto* wp = static_cast<const unsigned char*>(w.data_ptr());
  int64_t count = 0;
  int64_t first = -1;
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (std::memcmp(gp + i * es, wp + i * es, es) != 0) {
      if (first < 0) first = i;
      ++count;
    }
  }
  if (first < 0) return "";
  out.precision(17);
  out << count << " of " << g.numel() << " elements differ; first at flat index " << first
      << ": got " << g.reshape(-1)[first].item<double>() << ", expected "
      << w.reshape(-1)[first].item<double>();
  return out.str();
}

// Checks one component of a fixture case; a mismatch fails the test with the case name.
void expect_same(const std::string& name, const std::string& part, const at::Tensor& got,
                 const at::Tensor& want) {
  const std::string m = bitwise_mismatch(got, want);
  if (!m.empty()) FAIL_CHECK(name << "/" << part << ": " << m);
}

at::Tensor bf16(std::vector<float> values) {
  return at::tensor(values, at::kFloat).to(at::kBFloat16);
}

std::vector<double> as_vector(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous().reshape(-1);
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

std::vector<int64_t> codes_vector(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kLong).contiguous().reshape(-1);
  return std::vector<int64_t>(d.data_ptr<int64_t>(), d.data_ptr<int64_t>() + d.numel());
}

}  // namespace

TEST_CASE("Quanto matches optimum-quanto 0.2.7 byte for byte", "[quant]") {
  const SafetensorsFile inputs = SafetensorsFile::open(quant_dir() / "inputs.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(quant_dir() / "quanto.safetensors");
  const nlohmann::json cases = cases_of(file);
  REQUIRE(cases.size() >= 70);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    const at::Tensor x = load(inputs, c.at("input"));
    const QuantoQuantizer q(QuantoOptions{.bits = c.at("bits").get<int>(),
                                          .group = c.at("group").get<int64_t>(),
                                          .axis = c.at("axis").get<int>()});
    const QuantoTensor qt = q.quantize_tensor(x);
    const at::Tensor packed = load(file, name + "/packed");
    const at::Tensor scale = load(file, name + "/scale");
    const at::Tensor shift = load(file, name + "/shift");
    expect_same(name, "packed", qt.packed(), packed);
    expect_same(name, "scale", qt.scale(), scale);
    expect_same(name, "shift", qt.shift(), shift);
    expect_same(name, "dequant", qt.dequantize(), load(file, name + "/dequant"));
    // What the package holds: packed data + scale + shift (rows padded to a multiple of 8/b; a
    // single group has per-element scale and shift).
    const int64_t es = static_cast<int64_t>(x.element_size());
    CHECK(qt.bytes() == packed.numel() + (scale.numel() + shift.numel()) * es);
  }
}

TEST_CASE("HQQ matches hqq 0.2.2 byte for byte", "[quant]") {
  const SafetensorsFile inputs = SafetensorsFile::open(quant_dir() / "inputs.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(quant_dir() / "hqq.safetensors");
  const nlohmann::json cases = cases_of(file);
  REQUIRE(cases.size() >= 100);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    const at::Tensor x = load(inputs, c.at("input"));
    const HqqQuantizer q(HqqOptions{.bits = c.at("bits").get<int>(),
                                    .group = c.at("group").get<int64_t>(),
                                    .axis = c.at("axis").get<int>(),
                                    .compute_dtype = c.at("compute").get<std::string>() == "bf16"
                                                         ? at::kBFloat16
                                                         : at::kFloat});
    const HqqTensor qt = q.quantize_tensor(x);
    expect_same(name, "packed", qt.packed(), load(file, name + "/packed"));
    expect_same(name, "scale", qt.scale(), load(file, name + "/scale"));
    expect_same(name, "zero", qt.zero(), load(file, name + "/zero"));
    expect_same(name, "dequant", qt.dequantize(), load(file, name + "/dequant"));
  }
}

TEST_CASE("HQQ proximal solver matches hqq 0.2.2 iteration by iteration", "[quant]") {
  const SafetensorsFile inputs = SafetensorsFile::open(quant_dir() / "inputs.safetensors");
  const SafetensorsFile file = SafetensorsFile::open(quant_dir() / "hqq_proximal.safetensors");
  const nlohmann::json cases = cases_of(file);
  REQUIRE(cases.size() >= 16);
  for (const auto& c : cases) {
    const std::string name = c.at("name");
    const at::Tensor x = load(inputs, c.at("input"));
    const HqqOptions options{
        .bits = c.at("bits").get<int>(),
        .group = c.at("group").get<int64_t>(),
        .axis = c.at("axis").get<int>(),
        .optimize = true,
        .compute_dtype = c.at("compute").get<std::string>() == "bf16" ? at::kBFloat16 : at::kFloat};
    // The solver alone, from the min-max start.
    const mlab::methods::HqqMinMax m = mlab::methods::hqq_minmax(x, options);
    const mlab::methods::HqqProximalResult r =
        mlab::methods::hqq_optimize_proximal(m.w, m.scale, m.zero, m.qmax, options.axis, options);
    const at::Tensor zeros = load(file, name + "/zeros");
    const std::vector<double> errors = as_vector(load(file, name + "/errors"));
    if (r.errors.size() != errors.size()) {
      FAIL_CHECK(name << ": " << r.errors.size() << " iterations, the package ran "
                      << errors.size());
    }
    for (size_t i = 0; i < std::min(r.errors.size(), errors.size()); ++i) {
      if (r.errors[i] != errors[i]) {
        FAIL_CHECK(name << ": iteration " << i << " error " << r.errors[i] << " != package "
                        << errors[i]);
        break;
      }
      const std::string mz = bitwise_mismatch(r.zeros[i], zeros[static_cast<int64_t>(i)]);
      if (!mz.empty()) {
        FAIL_CHECK(name << ": iteration " << i << " zero: " << mz);
        break;
      }
    }
    // And the whole quantizer with optimize = true.
    const HqqTensor qt = HqqQuantizer(options).quantize_tensor(x);
    expect_same(name, "packed", qt.packed(), load(file, name + "/packed"));
    expect_same(name, "scale", qt.scale(), load(file, name + "/scale"));
    expect_same(name, "zero", qt.zero(), load(file, name + "/zero"));
    expect_same(name, "dequant", qt.dequantize(), load(file, name + "/dequant"));
  }
}

// §7 T1. A lone group (N == G) takes the package's per-tensor path (per-element scale 0), so the
// group is given twice: [2, 8].
TEST_CASE("T1: Quanto int4 and HQQ int4, exact case", "[quant]") {
  const at::Tensor row = bf16({-1, -0.6875, -0.5625, 0, 0.25, 0.5, 0.875, -0.125});
  const at::Tensor x = at::stack({row, row});
  const std::vector<double> expected{-1, -0.75, -0.5, 0, 0.25, 0.5, 0.875, -0.125};
  const std::vector<int64_t> q{0, 2, 4, 8, 10, 12, 15, 7};

  const QuantoTensor qt = QuantoQuantizer({.bits = 4, .group = 8, .axis = 0}).quantize_tensor(x);
  CHECK(as_vector(qt.scale()) == std::vector<double>{0.125, 0.125});
  CHECK(as_vector(qt.shift()) == std::vector<double>{1.0, 1.0});
  CHECK(codes_vector(qt.codes()[0]) == q);
  CHECK(as_vector(qt.dequantize()[0]) == expected);

  const HqqTensor ht = HqqQuantizer({.bits = 4, .group = 8, .axis = 1}).quantize_tensor(x);
  CHECK(as_vector(ht.scale()) == std::vector<double>{0.125, 0.125});  // 1 / 8
  CHECK(as_vector(ht.zero()) == std::vector<double>{8.0, 8.0});
  CHECK(codes_vector(ht.codes()[0]) == q);
  CHECK(as_vector(ht.dequantize()[0]) == expected);
}

TEST_CASE("T2: Quanto int2 and HQQ int2 round half to even", "[quant]") {
  const at::Tensor row = bf16({-1, 0, 0.5, 2});
  const at::Tensor x = at::stack({row, row, row, row});
  const std::vector<int64_t> q{0, 1, 2, 3};  // (x + 1) = 1.5 -> 2
  const std::vector<double> expected{-1, 0, 1, 2};

  const QuantoTensor qt = QuantoQuantizer({.bits = 2, .group = 4, .axis = 0}).quantize_tensor(x);
  CHECK(as_vector(qt.scale()) == std::vector<double>(4, 1.0));
  CHECK(as_vector(qt.shift()) == std::vector<double>(4, 1.0));
  CHECK(codes_vector(qt.codes()[2]) == q);
  CHECK(as_vector(qt.dequantize()[3]) == expected);

  const HqqTensor ht = HqqQuantizer({.bits = 2, .group = 4, .axis = 1}).quantize_tensor(x);
  CHECK(as_vector(ht.scale()) == std::vector<double>(4, 1.0));
  CHECK(as_vector(ht.zero()) == std::vector<double>(4, 1.0));
  CHECK(codes_vector(ht.codes()[1]) == q);
  CHECK(as_vector(ht.dequantize()[0]) == expected);
}

TEST_CASE("T3: Quanto int4 with bf16 rounding", "[quant]") {
  const at::Tensor row = bf16({0.1, -0.37, 0.52, 0.9, -0.05, 0.33, -0.61, 0.07});
  const at::Tensor x = at::stack({row, row});
  const QuantoTensor qt = QuantoQuantizer({.bits = 4, .group = 8, .axis = 0}).quantize_tensor(x);
  CHECK(qt.scale()[0][0].item<double>() == 0.1005859375);  // bf16(1.5078125 / 15)
  CHECK(qt.shift()[0][0].item<double>() == 0.609375);
  CHECK(codes_vector(qt.codes()[0]) == std::vector<int64_t>{7, 2, 11, 15, 6, 9, 0, 7});
  CHECK(as_vector(qt.dequantize()[0]) == std::vector<double>{0.09375, -0.408203125, 0.5, 0.8984375,
                                                             -0.0078125, 0.296875, -0.609375,
                                                             0.09375});
}

TEST_CASE("T4: HQQ int4 minmax on T3's input (fractional zero rounded to bf16)", "[quant]") {
  const at::Tensor row = bf16({0.1, -0.37, 0.52, 0.9, -0.05, 0.33, -0.61, 0.07});
  const at::Tensor x = at::stack({row, row});
  const HqqOptions options{.bits = 4, .group = 8, .axis = 1};
  // The f32 scale is reciprocal(1.5078125) * 15 (Python's 15 / t), one ulp below 15 / 1.5078125.
  const mlab::methods::HqqMinMax m = mlab::methods::hqq_minmax(x, options);
  CHECK(m.scale[0][0].item<float>() == 9.948185920715332f);
  CHECK(m.scale[0][0].item<float>() != static_cast<float>(15.0 / 1.5078125));
  const HqqTensor ht = HqqQuantizer(options).quantize_tensor(x);
  CHECK(ht.zero()[0][0].item<double>() == 6.0625);
  CHECK(ht.scale()[0][0].item<double>() == 0.1005859375);
  CHECK(codes_vector(ht.codes()[0]) == std::vector<int64_t>{7, 2, 11, 15, 6, 9, 0, 7});
  CHECK(as_vector(ht.dequantize()[0]) ==
        std::vector<double>{0.09423828125, -0.408203125, 0.49609375, 0.8984375, -0.00628662109375,
                            0.294921875, -0.609375, 0.09423828125});
}

TEST_CASE("T5: grouping maps and packing layouts", "[quant]") {
  const at::Tensor x = at::arange(16, at::kFloat).reshape({1, 2, 2, 4});

  SECTION("Quanto axis 0: contiguous groups, int2 packed along rows") {
    const QuantoTensor qt = QuantoQuantizer({.bits = 2, .group = 4, .axis = 0}).quantize_tensor(x);
    CHECK(as_vector(qt.scale()) == std::vector<double>(4, 1.0));
    CHECK(as_vector(qt.shift()) == std::vector<double>{0, -4, -8, -12});
    CHECK(codes_vector(qt.codes()) ==
          std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    CHECK(qt.packed().sizes() == at::IntArrayRef{1, 4});
    CHECK(codes_vector(qt.packed()) == std::vector<int64_t>{0x00, 0x55, 0xAA, 0xFF});
    CHECK(at::equal(qt.dequantize(), x));
  }
  SECTION("HQQ axis 1: the same contiguous groups") {
    const HqqTensor ht = HqqQuantizer({.bits = 2, .group = 4, .axis = 1}).quantize_tensor(x);
    CHECK(codes_vector(ht.codes()) ==
          std::vector<int64_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3});
    CHECK(as_vector(ht.scale()) == std::vector<double>(4, 1.0));
    CHECK(as_vector(ht.zero()) == std::vector<double>{0, -4, -8, -12});  // -min * 1
    CHECK(at::equal(ht.dequantize(), x));
  }
  SECTION("HQQ axis 0: strided groups {j, j+4, j+8, j+12}") {
    const HqqTensor ht = HqqQuantizer({.bits = 2, .group = 4, .axis = 0}).quantize_tensor(x);
    // codes [G=4 rows i, N/G=4 columns j] = i; scale' = 1/0.25, zero = -j/4.
    CHECK(codes_vector(ht.codes()) ==
          std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
    CHECK(as_vector(ht.scale()) == std::vector<double>(4, 4.0));
    CHECK(as_vector(ht.zero()) == std::vector<double>{-0.0, -0.25, -0.5, -0.75});
    CHECK(ht.packed().sizes() == at::IntArrayRef{1, 4});
    CHECK(codes_vector(ht.packed()) == std::vector<int64_t>{0x1B, 0x1B, 0x1B, 0x1B});
    CHECK(at::equal(ht.dequantize(), x));
  }
  SECTION("int4 packing: Quanto low nibble first, HQQ first half in the high nibble") {
    const at::Tensor q3 = at::tensor({1, 2, 3, 4, 5, 6}, at::kByte).reshape({3, 2});
    CHECK(codes_vector(mlab::methods::quanto_pack(q3, 4)) ==
          std::vector<int64_t>{0x51, 0x62, 0x03, 0x04});
    CHECK(at::equal(mlab::methods::quanto_unpack(mlab::methods::quanto_pack(q3, 4), 4, 3), q3));
    const at::Tensor q4 = at::tensor({1, 2, 3, 4, 5, 6, 7, 8}, at::kByte).reshape({4, 2});
    CHECK(codes_vector(mlab::methods::hqq_pack(q4, 4)) ==
          std::vector<int64_t>{0x15, 0x26, 0x37, 0x48});
    CHECK(
        at::equal(mlab::methods::hqq_unpack(mlab::methods::hqq_pack(q4, 4), 4, 4, at::kByte), q4));
  }
}

TEST_CASE("Quantized bytes: N*b/8 + (N/G)*4 with bf16 metadata", "[quant]") {
  const at::Tensor x = at::randn({1, 8, 16, 128}, at::kFloat).to(at::kBFloat16);
  const int64_t n = x.numel();
  for (int bits : {2, 4}) {
    for (int64_t group : {32, 64, 128}) {
      const int64_t expected = n * bits / 8 + (n / group) * 4;
      CHECK(QuantoQuantizer({.bits = bits, .group = group}).quantize(x)->bytes() == expected);
      CHECK(QuantoQuantizer({.bits = bits, .group = group, .axis = -1}).quantize(x)->bytes() ==
            expected);
      CHECK(HqqQuantizer({.bits = bits, .group = group}).quantize(x)->bytes() == expected);
      CHECK(HqqQuantizer({.bits = bits, .group = group, .axis = 1}).quantize(x)->bytes() ==
            expected);
    }
  }
  // 3 bits: 10 codes per int32 word, rows padded to a multiple of 10.
  CHECK(HqqQuantizer({.bits = 3, .group = 64}).quantize(x)->bytes() ==
        7 * (n / 64) * 4 + (n / 64) * 4);
}

TEST_CASE("Quantizers reject what the packages reject", "[quant]") {
  const at::Tensor x = at::randn({1, 2, 3, 64}, at::kFloat);  // N = 384, N/D = 6
  CHECK_THROWS_AS(QuantoQuantizer({.bits = 3}), c10::Error);
  CHECK_THROWS_AS(QuantoQuantizer({.axis = 1}), c10::Error);
  CHECK_THROWS_AS(QuantoQuantizer({.group = 256}).quantize(x),
                  c10::Error);  // 256 does not divide 384
  CHECK_THROWS_AS(QuantoQuantizer({.group = 4, .axis = -1}).quantize(x),
                  c10::Error);  // nor 4 N/D = 6
  CHECK_THROWS_AS(HqqQuantizer({.bits = 5}), c10::Error);
  CHECK_THROWS_AS(HqqQuantizer({.axis = -1}), c10::Error);
  CHECK_THROWS_AS(HqqQuantizer({.group = 256}).quantize(x), c10::Error);
  // 4-bit axis 1 packs N/G = 3 rows: not a multiple of 2.
  CHECK_THROWS_AS(HqqQuantizer({.bits = 4, .group = 128, .axis = 1}).quantize(x), c10::Error);
  CHECK(QuantoQuantizer({}).describe() == "quanto:bits=4,group=64,axis=0");
  CHECK(HqqQuantizer({.bits = 2}).describe() == "hqq:bits=2,group=64,axis=0");
}
