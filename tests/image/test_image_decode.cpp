// datasets' decoding against Pillow's (the processors' inputs of the fixture): exact for PNG and
// JPEG since F14 (libjpeg-turbo with Pillow's settings; stb_image's JPEG differed by up to 3
// levels: colour 4:2:0, 1: grey). MLAB_TEST_REPORT=1 prints the numbers.
#include <cstdio>
#include <cstdlib>

#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"

TEST_CASE("decode: datasets' decoder vs Pillow on the fixture images", "[image]") {
  for (const std::string& file : mlab::test::fixture_images()) {
    INFO(file);
    const auto ours = mlab::test::decode_rgb8(mlab::test::image_dir() / file);
    const auto pil = mlab::test::pillow_input(file);
    REQUIRE(ours.width == pil.width);
    REQUIRE(ours.height == pil.height);
    int max_diff = 0;
    int64_t differ = 0, sum = 0;
    for (std::size_t i = 0; i < ours.pixels.size(); ++i) {
      const int d = std::abs(int(ours.pixels[i]) - int(pil.pixels[i]));
      max_diff = std::max(max_diff, d);
      differ += d != 0;
      sum += d;
    }
    // Pillow's input is composited on white; decode_image drops alpha.
    if (file == "rgba.png") continue;
    CHECK(max_diff == 0);
    if (std::getenv("MLAB_TEST_REPORT") != nullptr) {
      std::printf(
          "%-18s %4lldx%-4lld ours vs Pillow: max |diff| %d, %.2f%% of values differ, mean "
          "|diff| %.4f\n",
          file.c_str(), static_cast<long long>(ours.width), static_cast<long long>(ours.height),
          max_diff, 100.0 * double(differ) / double(ours.pixels.size()),
          double(sum) / double(ours.pixels.size()));
    }
  }
}
