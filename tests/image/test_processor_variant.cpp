// ProcessorVariant::kTransformers4_51 against transformers 4.51's slow LlavaNextImageProcessor
// with Pillow 10.4, the processor of the paper's numbers (tests/data/processor451, written by
// tools/fixtures/make_processor451_fixtures.py in .venv-authors): 35 seeded images (RGB, grey,
// RGBA; every pinpoint of both configs), the tiny fixture's config (all pixel values stored) and
// llama3-llava-next-8b-hf's (SHA-256 of all pixel values, a sample, the sum, one tensor whole).
// The 4.51 variant must be bit-exact on all of them; the default 5.x variant must differ on
// exactly the images whose padding is odd. MLAB_TEST_REPORT=1 prints the figures.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "models/image/image_processor_factory.hpp"
#include "models/image/qwen2_vl_image_processor.hpp"
#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

using mlab::image::ProcessorVariant;
using mlab::image::Rgb8Image;

std::filesystem::path fixture_dir() { return mlab::test::data_dir() / "processor451"; }

nlohmann::json manifest() {
  std::ifstream in(fixture_dir() / "manifest.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// What 4.51's convert_to_rgb makes of the stored source array (mode L: replicated; RGBA: alpha
// dropped, PIL's convert("RGB")).
Rgb8Image input_image(const mlab::models::SafetensorsFile& images, const std::string& name,
                      const nlohmann::json& entry) {
  const std::vector<uint8_t> src = mlab::test::read_tensor<uint8_t>(images, name);
  const int64_t w = entry.at("width").get<int64_t>(), h = entry.at("height").get<int64_t>();
  const std::string mode = entry.at("mode").get<std::string>();
  if (mode == "L") return mlab::image::rgb8_from_gray(w, h, src);
  if (mode == "RGBA") return mlab::image::rgb8_drop_alpha(w, h, src);
  REQUIRE(mode == "RGB");
  return mlab::image::make_rgb8_image(w, h, src);
}

std::vector<uint8_t> sha256_of(const std::vector<float>& values) {
  mlab::Sha256 sha;
  sha.update(std::string_view(reinterpret_cast<const char*>(values.data()),
                              values.size() * sizeof(float)));
  const auto digest = sha.digest();
  return {digest.begin(), digest.end()};
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
  return m;
}

// Checks `out` against the stored 4.51 outputs of `name`; returns whether it is bit-exact.
bool matches_451(const mlab::models::SafetensorsFile& ref, const std::string& name,
                 const mlab::image::ProcessedImages& out, bool whole, double& max_diff) {
  const bool sizes =
      out.image_sizes == mlab::test::read_tensor<int64_t>(ref, name + ".image_sizes");
  if (whole) {
    const auto expect = mlab::test::read_tensor<float>(ref, name + ".pixel_values");
    max_diff = max_abs_diff(out.pixel_values, expect);
    return sizes && out.shape == std::vector<int64_t>(ref.at(name + ".pixel_values").shape) &&
           out.pixel_values == expect;
  }
  const auto shape = mlab::test::read_tensor<int64_t>(ref, name + ".shape");
  // The sampled values give the size of a difference; the SHA-256 decides exactness.
  const auto sample = mlab::test::read_tensor<float>(ref, name + ".values");
  const int64_t n = static_cast<int64_t>(out.pixel_values.size());
  std::vector<int64_t> idx;
  for (int64_t i = 0, step = std::max<int64_t>(1, n / 2000); i < n; i += step) idx.push_back(i);
  if (!idx.empty() && idx.back() != n - 1) idx.push_back(n - 1);
  max_diff = out.shape == shape && idx.size() == sample.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; std::isfinite(max_diff) && i < idx.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(out.pixel_values[idx[i]]) - sample[i]));
  }
  if (ref.find(name + ".pixel_values") != nullptr) {
    const auto expect = mlab::test::read_tensor<float>(ref, name + ".pixel_values");
    max_diff = std::max(max_diff, max_abs_diff(out.pixel_values, expect));
  }
  return sizes && out.shape == shape &&
         sha256_of(out.pixel_values) == mlab::test::read_tensor<uint8_t>(ref, name + ".sha256");
}

}  // namespace

TEST_CASE("processor variants: transformers-4.51 is bit-exact with 4.51's slow LLaVA-NeXT",
          "[image]") {
  const nlohmann::json m = manifest();
  REQUIRE(m.at("transformers").get<std::string>() == "4.51.0");
  const auto images = mlab::models::SafetensorsFile::open(fixture_dir() / "images.safetensors");
  // The fixtures ran Pillow 10.4: the pass order the 4.51 variant defaults to. The 5.x variant
  // runs with the same order here, so the padding rule is the only difference measured.
  REQUIRE(m.at("pillow").get<std::string>() == "10.4.0");
  const auto order = mlab::image::default_pass_order(ProcessorVariant::kTransformers4_51);
  REQUIRE(order == mlab::image::PillowPassOrder::kHorizontalFirst);

  for (const std::string config_name : {"tiny", "llava_next_8b"}) {
    const nlohmann::json& config = m.at("configs").at(config_name);
    const auto v451 = mlab::image::make_image_processor(config, config_name, order,
                                                        ProcessorVariant::kTransformers4_51);
    const auto v5 = mlab::image::make_image_processor(config, config_name, order,
                                                      ProcessorVariant::kTransformers5);
    const auto ref =
        mlab::models::SafetensorsFile::open(fixture_dir() / (config_name + ".safetensors"));
    const bool whole = config_name == std::string("tiny");
    int exact = 0, total = 0, v5_differ = 0, odd = 0;
    double max_451 = 0.0, max_5 = 0.0;
    std::set<std::string> differ, odd_padding;
    for (const auto& [name, entry] : m.at("images").items()) {
      INFO(config_name << " / " << name);
      const std::vector<Rgb8Image> batch = {input_image(images, name, entry)};
      double diff = 0.0;
      const bool ok = matches_451(ref, name, v451->preprocess(batch), whole, diff);
      CHECK(ok);
      CHECK(diff == 0.0);
      exact += ok;
      ++total;
      max_451 = std::max(max_451, diff);
      const auto out5 = v5->preprocess(batch);
      // Same tile count (the token ids agree); different pixels where the padding is odd.
      CHECK(out5.shape == v451->preprocess(batch).shape);
      if (!matches_451(ref, name, out5, whole, diff)) {
        differ.insert(name);
        ++v5_differ;
        max_5 = std::max(max_5, diff);
      }
      if (entry.at("configs").at(config_name).at("odd_padding").get<bool>()) {
        odd_padding.insert(name);
        ++odd;
      }
    }
    CHECK(total == 35);
    CHECK(exact == total);
    // The default variant fails this fixture, on exactly the odd paddings.
    CHECK(v5_differ > 0);
    CHECK(differ == odd_padding);
    CHECK(max_5 > 0.1);
    if (std::getenv("MLAB_TEST_REPORT") != nullptr) {
      std::printf(
          "%-14s transformers-4.51: %d/%d bit-exact (max |diff| %.3g); transformers-5: %d/%d "
          "differ (odd padding %d), max |diff| %.4g%s\n",
          config_name.c_str(), exact, total, max_451, v5_differ, total, odd, max_5,
          whole ? "" : " (sampled + whole tensors)");
    }
  }
}

TEST_CASE("processor variants: a transformers-4.51 batch pads with zero tiles as 4.51 does",
          "[image]") {
  const nlohmann::json m = manifest();
  const auto images = mlab::models::SafetensorsFile::open(fixture_dir() / "images.safetensors");
  const auto ref = mlab::models::SafetensorsFile::open(fixture_dir() / "tiny.safetensors");
  const auto processor = mlab::image::make_image_processor(
      m.at("configs").at("tiny"), "tiny", mlab::image::PillowPassOrder::kHorizontalFirst,
      ProcessorVariant::kTransformers4_51);
  std::vector<Rgb8Image> batch;
  for (const auto& name : m.at("batch")) {
    batch.push_back(input_image(images, name, m.at("images").at(name.get<std::string>())));
  }
  REQUIRE(batch.size() == 3);
  const auto out = processor->preprocess(batch);
  CHECK(out.shape == std::vector<int64_t>(ref.at("batch.pixel_values").shape));
  CHECK(out.image_sizes == mlab::test::read_tensor<int64_t>(ref, "batch.image_sizes"));
  CHECK(out.pixel_values == mlab::test::read_tensor<float>(ref, "batch.pixel_values"));
}

TEST_CASE("processor variants: names, defaults and the 4.51 Qwen2-VL size check", "[image]") {
  using mlab::image::parse_processor_variant;
  using mlab::image::processor_variant_name;
  CHECK(parse_processor_variant("transformers-5") == ProcessorVariant::kTransformers5);
  CHECK(parse_processor_variant("transformers-4.51") == ProcessorVariant::kTransformers4_51);
  for (auto v : {ProcessorVariant::kTransformers5, ProcessorVariant::kTransformers4_51}) {
    CHECK(parse_processor_variant(std::string(processor_variant_name(v))) == v);
  }
  CHECK_THROWS_WITH(parse_processor_variant("transformers-4.5"),
                    Catch::Contains("unknown processor variant 'transformers-4.5'") &&
                        Catch::Contains("did you mean 'transformers-4.51'"));
  CHECK(mlab::image::default_pass_order(ProcessorVariant::kTransformers5) ==
        mlab::image::PillowPassOrder::kPillow13);

  // 4.51's smart_resize raises for a side under patch_size * merge_size; 5.x resizes it up.
  mlab::image::Qwen2VlImageProcessorOptions o;
  const Rgb8Image small = mlab::image::filled_rgb8_image(40, 27, {10, 20, 30});
  CHECK(mlab::image::Qwen2VlImageProcessor(o).resized(small).front().height == 56);
  o.variant = ProcessorVariant::kTransformers4_51;
  CHECK_THROWS_WITH(mlab::image::Qwen2VlImageProcessor(o).resized(small),
                    Catch::Contains("height:27 and width:40 must be larger than factor:28"));
  CHECK(mlab::image::Qwen2VlImageProcessor(o)
            .resized(mlab::image::filled_rgb8_image(28, 28))
            .front()
            .width == 56);
}
