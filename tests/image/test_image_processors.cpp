// The three image processors against transformers 5.24's PIL-backend processors
// (tools/fixtures/make_image_fixtures.py): for every fixture image and every config (the tiny
// configs of models.md §6 and the real 336-px / Qwen2.5-VL ones) the uint8 images before
// normalisation are bit-exact (SHA-256 of all bytes) and the pixel values match (sampled, plus
// the float64 sum of all of them). Set MLAB_TEST_REPORT=1 to print the max diffs per config.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "models/image/clip_image_processor.hpp"
#include "models/image/llava_next_image_processor.hpp"
#include "models/image/qwen2_vl_image_processor.hpp"
#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

using mlab::image::ImageProcessor;
using mlab::image::Rgb8Image;

std::unique_ptr<ImageProcessor> make_processor(const nlohmann::json& config) {
  const std::string type = config.at("image_processor_type").get<std::string>();
  if (type == "CLIPImageProcessor" || type == "LlavaImageProcessor") {
    return std::make_unique<mlab::image::ClipImageProcessor>(
        mlab::image::ClipImageProcessorOptions::from_preprocessor_config(config));
  }
  if (type == "LlavaNextImageProcessor") {
    return std::make_unique<mlab::image::LlavaNextImageProcessor>(
        mlab::image::LlavaNextImageProcessorOptions::from_preprocessor_config(config));
  }
  REQUIRE(type == "Qwen2VLImageProcessor");
  return std::make_unique<mlab::image::Qwen2VlImageProcessor>(
      mlab::image::Qwen2VlImageProcessorOptions::from_preprocessor_config(config));
}

nlohmann::json manifest() {
  std::ifstream in(mlab::test::image_reference_dir() / "manifest.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

// The resized images stacked vertically (the fixture's layout), HWC bytes.
std::vector<uint8_t> stacked(const std::vector<Rgb8Image>& images, int64_t& height,
                             int64_t& width) {
  std::vector<uint8_t> bytes;
  height = 0;
  width = images.empty() ? 0 : images.front().width;
  for (const Rgb8Image& img : images) {
    REQUIRE(img.width == width);
    height += img.height;
    bytes.insert(bytes.end(), img.pixels.begin(), img.pixels.end());
  }
  return bytes;
}

struct ConfigStats {
  int images = 0;
  int u8_exact = 0;
  int u8_max_diff = 0;   // over the stored samples
  double max_abs = 0.0;  // pixel values, over the stored samples
  double max_sum_diff = 0.0;
};

}  // namespace

TEST_CASE("image processors: bit-exact with the transformers PIL backend", "[image]") {
  const nlohmann::json m = manifest();
  std::map<std::string, ConfigStats> stats;
  for (const auto& [config_name, config] : m.at("configs").items()) {
    const auto processor = make_processor(config.at("preprocessor_config"));
    const auto file = mlab::models::SafetensorsFile::open(mlab::test::image_reference_dir() /
                                                          (config_name + ".safetensors"));
    ConfigStats& s = stats[config_name];
    for (const std::string& image_file : mlab::test::fixture_images()) {
      const std::string stem = mlab::test::stem(image_file);
      INFO(config_name << " / " << image_file);
      const Rgb8Image input = mlab::test::pillow_input(image_file);

      // uint8 images before normalisation.
      int64_t h = 0, w = 0;
      const std::vector<uint8_t> u8 = stacked(processor->resized(input), h, w);
      const std::vector<int64_t> u8_shape =
          mlab::test::read_tensor<int64_t>(file, stem + ".u8_shape");
      CHECK(u8_shape == std::vector<int64_t>{h, w, 3});
      mlab::Sha256 sha;
      sha.update(std::string_view(reinterpret_cast<const char*>(u8.data()), u8.size()));
      const bool exact = sha.hexdigest() == file.metadata().at(stem + ".u8_sha256");
      CHECK(exact);
      s.u8_exact += exact;
      const std::vector<uint8_t> u8_expect =
          mlab::test::read_tensor<uint8_t>(file, stem + ".u8_values");
      const std::vector<int64_t> u8_idx = mlab::test::sample_indices(h * w * 3);
      REQUIRE(u8_idx.size() == u8_expect.size());
      if (static_cast<int64_t>(u8.size()) == h * w * 3) {
        for (std::size_t i = 0; i < u8_idx.size(); ++i) {
          s.u8_max_diff = std::max(s.u8_max_diff, std::abs(int(u8[u8_idx[i]]) - int(u8_expect[i])));
        }
      }

      // Pixel values and the side outputs.
      const std::vector<Rgb8Image> batch = {input};
      const mlab::image::ProcessedImages out = processor->preprocess(batch);
      CHECK(out.shape == mlab::test::read_tensor<int64_t>(file, stem + ".shape"));
      if (file.find(stem + ".image_sizes") != nullptr) {
        CHECK(out.image_sizes == mlab::test::read_tensor<int64_t>(file, stem + ".image_sizes"));
      } else {
        CHECK(out.image_sizes.empty());
      }
      if (file.find(stem + ".image_grid_thw") != nullptr) {
        CHECK(out.image_grid_thw ==
              mlab::test::read_tensor<int64_t>(file, stem + ".image_grid_thw"));
      } else {
        CHECK(out.image_grid_thw.empty());
      }
      const std::vector<float> expect = mlab::test::read_tensor<float>(file, stem + ".values");
      const std::vector<int64_t> idx =
          mlab::test::sample_indices(static_cast<int64_t>(out.pixel_values.size()));
      REQUIRE(idx.size() == expect.size());
      double max_abs = 0.0;
      for (std::size_t i = 0; i < idx.size(); ++i) {
        max_abs = std::max(max_abs, std::abs(double(out.pixel_values[idx[i]]) - expect[i]));
      }
      CHECK(max_abs <= 1e-6);
      double sum = 0.0;
      for (float v : out.pixel_values) sum += v;
      const double sum_expect = mlab::test::read_tensor<double>(file, stem + ".sum").at(0);
      const double sum_diff = std::abs(sum - sum_expect);
      // One uint8 level changes the sum by >= 1 / (255 * 0.2758) = 0.014; summation order ~1e-9.
      CHECK(sum_diff <= 1e-6 + 1e-12 * double(out.pixel_values.size()));
      s.max_abs = std::max(s.max_abs, max_abs);
      s.max_sum_diff = std::max(s.max_sum_diff, sum_diff);
      ++s.images;
    }
  }
  CHECK(stats.size() == 8);
  if (std::getenv("MLAB_TEST_REPORT") != nullptr) {
    for (const auto& [name, s] : stats) {
      std::printf(
          "%-15s images %d  uint8 bit-exact %d/%d (sample max diff %d)  pixel values "
          "max |diff| %.3g (sampled)  |sum diff| %.3g\n",
          name.c_str(), s.images, s.u8_exact, s.images, s.u8_max_diff, s.max_abs, s.max_sum_diff);
    }
  }
}

TEST_CASE("image processors: batching pads LLaVA-NeXT tiles and concatenates Qwen rows",
          "[image]") {
  const Rgb8Image wide = mlab::test::pillow_input("wide.jpg");
  const Rgb8Image tiny = mlab::test::pillow_input("tiny.png");
  const std::vector<Rgb8Image> batch = {tiny, wide};

  mlab::image::LlavaNextImageProcessorOptions next_options;
  next_options.shortest_edge = next_options.crop_height = next_options.crop_width = 28;
  next_options.image_grid_pinpoints = {{28, 56}, {56, 28}, {56, 56}, {84, 28}, {28, 84}};
  const mlab::image::LlavaNextImageProcessor next(next_options);
  const auto one = next.preprocess(std::span(&tiny, 1));
  const auto two = next.preprocess(batch);
  REQUIRE(two.shape.size() == 5);
  CHECK(two.shape[0] == 2);
  CHECK(two.image_sizes == std::vector<int64_t>{5, 7, 45, 600});
  const int64_t tile = 3 * 28 * 28;
  REQUIRE(one.shape[1] <= two.shape[1]);
  // Image 0's tiles first, then zeros up to P_max.
  CHECK(std::equal(one.pixel_values.begin(), one.pixel_values.end(), two.pixel_values.begin()));
  CHECK(std::all_of(two.pixel_values.begin() + one.shape[1] * tile,
                    two.pixel_values.begin() + two.shape[1] * tile,
                    [](float v) { return v == 0.0f; }));

  const mlab::image::Qwen2VlImageProcessor qwen;
  const auto q0 = qwen.preprocess(std::span(&tiny, 1));
  const auto q1 = qwen.preprocess(std::span(&wide, 1));
  const auto q = qwen.preprocess(batch);
  CHECK(q.shape == std::vector<int64_t>{q0.shape[0] + q1.shape[0], 1176});
  std::vector<int64_t> grids = q0.image_grid_thw;
  grids.insert(grids.end(), q1.image_grid_thw.begin(), q1.image_grid_thw.end());
  CHECK(q.image_grid_thw == grids);
  CHECK(std::equal(q1.pixel_values.begin(), q1.pixel_values.end(),
                   q.pixel_values.begin() + q0.pixel_values.size()));
}

TEST_CASE("image processors: sizes of models.md worked examples", "[image]") {
  using mlab::image::select_best_resolution;
  using mlab::image::smart_resize;
  const std::vector<std::array<int64_t, 2>> pins = {
      {336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
  CHECK(select_best_resolution(480, 640, pins) == std::array<int64_t, 2>{672, 672});
  CHECK(select_best_resolution(517, 333, pins) == std::array<int64_t, 2>{672, 336});
  CHECK(select_best_resolution(200, 1000, pins) == std::array<int64_t, 2>{336, 1008});
  CHECK(select_best_resolution(336, 336, pins) == std::array<int64_t, 2>{336, 672});
  CHECK(smart_resize(480, 640, 28, 3136, 12845056) == std::array<int64_t, 2>{476, 644});
  CHECK(smart_resize(375, 500, 28, 3136, 12845056) == std::array<int64_t, 2>{364, 504});
  CHECK(smart_resize(1080, 1920, 28, 3136, 12845056) == std::array<int64_t, 2>{1092, 1932});
  CHECK(smart_resize(42, 70, 28, 3136, 12845056) == std::array<int64_t, 2>{56, 56});  // half-even
  CHECK_THROWS_WITH(smart_resize(1, 201, 28, 3136, 12845056),
                    Catch::Contains("aspect ratio must be smaller than 200"));
  CHECK(mlab::image::shortest_edge_size(517, 333, 336) == std::array<int64_t, 2>{521, 336});
}

TEST_CASE("image processors: configs and inputs that are rejected", "[image]") {
  CHECK_THROWS_WITH(mlab::image::ClipImageProcessorOptions::from_preprocessor_config(
                        nlohmann::json{{"size", {{"height", 336}, {"width", 336}}}}),
                    Catch::Contains("size: only {\"shortest_edge\": N}"));
  CHECK_THROWS_WITH(mlab::image::ClipImageProcessorOptions::from_preprocessor_config(
                        nlohmann::json{{"resample", 1}}),
                    Catch::Contains("resample: resample 1 (LANCZOS)"));
  CHECK_THROWS_WITH(mlab::image::LlavaNextImageProcessorOptions::from_preprocessor_config(
                        nlohmann::json{{"image_grid_pinpoints", {{336}}}}),
                    Catch::Contains("image_grid_pinpoints"));
  const auto q = mlab::image::Qwen2VlImageProcessorOptions::from_preprocessor_config(nlohmann::json{
      {"size", {{"shortest_edge", 10}, {"longest_edge", 20}}}, {"max_pixels", 12845056}});
  CHECK(q.min_pixels == 10);
  CHECK(q.max_pixels == 12845056);
  const mlab::image::ClipImageProcessor clip;
  const std::vector<Rgb8Image> batch = {mlab::image::filled_rgb8_image(2, 2), Rgb8Image{}};
  CHECK_THROWS_WITH(clip.preprocess(batch),
                    Catch::Contains("image 1: CLIPImageProcessor: empty image"));
}
