// datasets' stb decoding against Pillow's (the processors' inputs of the fixture): PNG is exact;
// JPEG differs from libjpeg-turbo by a few levels (IDCT and chroma upsampling). The bound below
// is what this fixture measured (+1); MLAB_TEST_REPORT=1 prints the numbers.
#include <cstdio>
#include <cstdlib>

#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"

TEST_CASE("decode: stb vs Pillow on the fixture images", "[image]") {
  for (const std::string& file : mlab::test::fixture_images()) {
    INFO(file);
    const auto stb = mlab::test::decode_rgb8(mlab::test::image_dir() / file);
    const auto pil = mlab::test::pillow_input(file);
    REQUIRE(stb.width == pil.width);
    REQUIRE(stb.height == pil.height);
    int max_diff = 0;
    int64_t differ = 0, sum = 0;
    for (std::size_t i = 0; i < stb.pixels.size(); ++i) {
      const int d = std::abs(int(stb.pixels[i]) - int(pil.pixels[i]));
      max_diff = std::max(max_diff, d);
      differ += d != 0;
      sum += d;
    }
    if (file == "rgba.png") continue;  // Pillow's input is composited on white, stb drops alpha
    if (file.ends_with(".png")) {
      CHECK(max_diff == 0);
    } else {
      CHECK(max_diff <= 4);  // measured: 3 (colour 4:2:0), 1 (grey)
    }
    if (std::getenv("MLAB_TEST_REPORT") != nullptr) {
      std::printf(
          "%-18s %4lldx%-4lld stb vs Pillow: max |diff| %d, %.2f%% of values differ, mean "
          "|diff| %.4f\n",
          file.c_str(), static_cast<long long>(stb.width), static_cast<long long>(stb.height),
          max_diff, 100.0 * double(differ) / double(stb.pixels.size()),
          double(sum) / double(stb.pixels.size()));
    }
  }
}
