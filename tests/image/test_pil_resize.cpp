// Pillow-exact resampling: Image.resize references from Pillow 13 (BICUBIC and BILINEAR, up and
// down, both pass orders), the normalisation of every uint8 value, RGBA compositing, image ops.
#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"
#include "models/image/image_ops.hpp"
#include "models/image/pil_resize.hpp"
#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

using mlab::image::PillowPassOrder;
using mlab::image::Rgb8Image;

Rgb8Image from_tensor(const mlab::models::SafetensorsFile& file, const std::string& name) {
  const auto& info = file.at(name);
  REQUIRE(info.shape.size() == 3);
  REQUIRE(info.shape[2] == 3);
  return mlab::image::make_rgb8_image(info.shape[1], info.shape[0],
                                      mlab::test::read_tensor<uint8_t>(file, name));
}

// Max |a - b| over the pixels; -1 when the sizes differ.
int max_diff(const Rgb8Image& a, const Rgb8Image& b) {
  if (a.width != b.width || a.height != b.height) return -1;
  int m = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) {
    m = std::max(m, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  }
  return m;
}

}  // namespace

TEST_CASE("pil_resize: bit-exact with Pillow's Image.resize", "[image]") {
  const auto file =
      mlab::models::SafetensorsFile::open(mlab::test::image_reference_dir() / "resize.safetensors");
  int cases = 0;
  for (const std::string& name : file.names()) {
    if (!name.ends_with(".pillow")) continue;
    const std::string key = name.substr(0, name.size() - 7);
    const Rgb8Image expect = from_tensor(file, name);
    const Rgb8Image expect_hfirst = from_tensor(file, key + ".hfirst");
    const auto resample = key.ends_with("bicubic") ? mlab::image::Resample::kBicubic
                                                   : mlab::image::Resample::kBilinear;
    const int idx = std::stoi(key.substr(4));
    const Rgb8Image src = from_tensor(file, idx < 8 ? "src.noise" : "src.smooth");
    const Rgb8Image got = mlab::image::pil_resize(src, expect.width, expect.height, resample);
    const Rgb8Image got_h = mlab::image::pil_resize(src, expect.width, expect.height, resample,
                                                    PillowPassOrder::kHorizontalFirst);
    INFO(key << ": " << src.width << "x" << src.height << " -> " << expect.width << "x"
             << expect.height);
    CHECK(max_diff(got, expect) == 0);
    CHECK(max_diff(got_h, expect_hfirst) == 0);
    ++cases;
  }
  CHECK(cases == 28);
}

TEST_CASE("pil_resize: same size copies and bad sizes and filters throw", "[image]") {
  const Rgb8Image img = mlab::image::filled_rgb8_image(4, 3, {1, 2, 3});
  CHECK(mlab::image::pil_resize(img, 4, 3, mlab::image::Resample::kBicubic).pixels == img.pixels);
  CHECK_THROWS_WITH(mlab::image::pil_resize(img, 0, 3, mlab::image::Resample::kBicubic),
                    Catch::Contains("target size must be positive"));
  CHECK_THROWS_WITH(mlab::image::resample_from_pil_code(1), Catch::Contains("LANCZOS"));
  CHECK_THROWS_WITH(mlab::image::resample_from_pil_code(9), Catch::Contains("unknown resample"));
  CHECK(mlab::image::resample_from_pil_code(3) == mlab::image::Resample::kBicubic);
}

TEST_CASE("normalize: every uint8 value as PilBackend rescale + normalize", "[image]") {
  const auto file = mlab::models::SafetensorsFile::open(mlab::test::image_reference_dir() /
                                                        "normalize.safetensors");
  const Rgb8Image ramp = from_tensor(file, "ramp");
  const std::vector<float> expect = mlab::test::read_tensor<float>(file, "values");
  std::vector<float> got;
  mlab::image::append_normalized_chw(ramp, {}, got);
  REQUIRE(got.size() == expect.size());
  int exact = 0;
  for (std::size_t i = 0; i < got.size(); ++i) exact += got[i] == expect[i];
  CHECK(exact == static_cast<int>(got.size()));
}

TEST_CASE("rgb8_composite_on_white: Pillow alpha_composite over white", "[image]") {
  const auto file = mlab::models::SafetensorsFile::open(mlab::test::image_reference_dir() /
                                                        "rgba.rgba.safetensors");
  const auto& info = file.at("rgba");
  const std::vector<uint8_t> rgba = mlab::test::read_tensor<uint8_t>(file, "rgba");
  const Rgb8Image got = mlab::image::rgb8_composite_on_white(info.shape[1], info.shape[0], rgba);
  CHECK(max_diff(got, mlab::test::pillow_input("rgba.png")) == 0);
  // datasets::decode_image drops alpha, as PIL convert("RGB").
  const Rgb8Image dropped = mlab::image::rgb8_drop_alpha(info.shape[1], info.shape[0], rgba);
  CHECK(max_diff(dropped, mlab::test::decode_rgb8(mlab::test::image_dir() / "rgba.png")) == 0);
}

TEST_CASE("image ops: center crop pads small images, pad_to_square centres", "[image]") {
  Rgb8Image img = mlab::image::filled_rgb8_image(3, 2, {9, 9, 9});
  const Rgb8Image c = mlab::image::center_crop(img, 4, 5);  // taller and wider than the image
  REQUIRE(c.width == 4);
  REQUIRE(c.height == 5);
  // numpy: canvas 4x5, image at top ceil(3/2)=2, left ceil(1/2)=1, window at (0, 0)
  CHECK(c.at(0, 0)[0] == 0);
  CHECK(c.at(1, 2)[0] == 9);
  CHECK(c.at(3, 3)[0] == 9);
  CHECK(c.at(1, 1)[0] == 0);
  const Rgb8Image sq =
      mlab::image::pad_to_square(img, mlab::image::mean_fill_color(mlab::image::kOpenaiClipMean));
  REQUIRE(sq.width == 3);
  CHECK(sq.at(0, 0)[0] == 9);  // (3 - 2) // 2 = 0 rows above the image
  CHECK(sq.at(2, 1)[0] == 9);
  CHECK(sq.at(0, 2)[0] == 122);  // the mean colour below it
  CHECK(sq.at(0, 2)[1] == 116);
  CHECK(sq.at(0, 2)[2] == 104);
  CHECK_THROWS_WITH(mlab::image::crop(img, 1, 0, 3, 2), Catch::Contains("outside a 3x2 image"));
}
