#include "models/image/rgb8_image.hpp"

#include "core/error.hpp"

namespace mlab::image {
namespace {

void check_size(int64_t width, int64_t height, std::size_t bytes, int64_t channels,
                const char* what) {
  MLAB_CHECK(width > 0 && height > 0, what, ": image size must be positive, got ", width, "x",
             height);
  MLAB_CHECK(static_cast<int64_t>(bytes) == width * height * channels, what, ": ", bytes,
             " bytes for a ", width, "x", height, " image with ", channels, " channels (expected ",
             width * height * channels, ")");
}

}  // namespace

Rgb8Image filled_rgb8_image(int64_t width, int64_t height, std::array<uint8_t, 3> rgb) {
  MLAB_CHECK(width >= 0 && height >= 0, "filled_rgb8_image: negative size ", width, "x", height);
  Rgb8Image image{width, height,
                  std::vector<uint8_t>(static_cast<std::size_t>(width * height * 3))};
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = rgb[0];
    image.pixels[i + 1] = rgb[1];
    image.pixels[i + 2] = rgb[2];
  }
  return image;
}

Rgb8Image make_rgb8_image(int64_t width, int64_t height, std::vector<uint8_t> pixels) {
  check_size(width, height, pixels.size(), 3, "make_rgb8_image");
  return Rgb8Image{width, height, std::move(pixels)};
}

Rgb8Image rgb8_from_gray(int64_t width, int64_t height, std::span<const uint8_t> gray) {
  check_size(width, height, gray.size(), 1, "rgb8_from_gray");
  Rgb8Image image = filled_rgb8_image(width, height);
  for (std::size_t i = 0; i < gray.size(); ++i) {
    image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = gray[i];
  }
  return image;
}

Rgb8Image rgb8_drop_alpha(int64_t width, int64_t height, std::span<const uint8_t> rgba) {
  check_size(width, height, rgba.size(), 4, "rgb8_drop_alpha");
  Rgb8Image image = filled_rgb8_image(width, height);
  for (std::size_t i = 0, n = rgba.size() / 4; i < n; ++i) {
    for (int c = 0; c < 3; ++c) image.pixels[3 * i + c] = rgba[4 * i + c];
  }
  return image;
}

Rgb8Image rgb8_composite_on_white(int64_t width, int64_t height, std::span<const uint8_t> rgba) {
  check_size(width, height, rgba.size(), 4, "rgb8_composite_on_white");
  // Pillow's ImagingAlphaComposite with dst = (255, 255, 255, 255): 7 extra fixed-point bits,
  // division by 255 as ((v >> 8) + v) >> 8 after adding 128 (rounded).
  constexpr uint32_t kBits = 7;
  constexpr uint32_t kDst = 255;
  Rgb8Image image = filled_rgb8_image(width, height, {255, 255, 255});
  for (std::size_t i = 0, n = rgba.size() / 4; i < n; ++i) {
    const uint32_t alpha = rgba[4 * i + 3];
    if (alpha == 0) continue;  // transparent: the white background
    const uint32_t blend = kDst * (255 - alpha);
    const uint32_t out_alpha_255 = alpha * 255 + blend;
    const uint32_t coef1 = alpha * 255 * 255 * (1u << kBits) / out_alpha_255;
    const uint32_t coef2 = 255 * (1u << kBits) - coef1;
    for (int c = 0; c < 3; ++c) {
      const uint32_t v = rgba[4 * i + c] * coef1 + kDst * coef2 + (0x80u << kBits);
      image.pixels[3 * i + c] = static_cast<uint8_t>((((v >> 8) + v) >> 8) >> kBits);
    }
  }
  return image;
}

}  // namespace mlab::image
