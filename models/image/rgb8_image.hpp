#pragma once
// Rgb8Image: the plain uint8 RGB image the image processors work on (no Torch). It is what
// transformers' PIL backend holds after `convert_to_rgb`, before normalisation
// (../shared/specs/models.md §4.1). Decoding lives in datasets/image.hpp (libjpeg-turbo / libpng, as Pillow); models/
// does not depend on datasets/, so callers copy datasets::Image into an Rgb8Image.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace mlab::image {

struct Rgb8Image {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;  // u8 [height, width, 3], row-major (HWC)

  // Pointer to the 3 channels of pixel (x, y); no bounds check.
  uint8_t* at(int64_t x, int64_t y) { return pixels.data() + (y * width + x) * 3; }
  const uint8_t* at(int64_t x, int64_t y) const { return pixels.data() + (y * width + x) * 3; }
};

// An image of `width` x `height` filled with `rgb`. Throws mlab::Error for a negative size.
Rgb8Image filled_rgb8_image(int64_t width, int64_t height, std::array<uint8_t, 3> rgb = {0, 0, 0});

// Wraps `pixels` (u8 [height, width, 3]). Throws mlab::Error naming the sizes when
// pixels.size() != width * height * 3 or a size is not positive.
Rgb8Image make_rgb8_image(int64_t width, int64_t height, std::vector<uint8_t> pixels);

// Grey u8 [height, width] -> RGB by replicating the channel (PIL convert("RGB") of mode "L").
Rgb8Image rgb8_from_gray(int64_t width, int64_t height, std::span<const uint8_t> gray);

// RGBA u8 [height, width, 4] -> RGB, dropping alpha (PIL convert("RGB") of mode "RGBA"; what
// datasets::decode_image and lmms-eval's doc_to_visual yield).
Rgb8Image rgb8_drop_alpha(int64_t width, int64_t height, std::span<const uint8_t> rgba);

// RGBA u8 [height, width, 4] -> RGB composited onto opaque white, bit-exact with
// PIL.Image.alpha_composite(white, image).convert("RGB") (Pillow AlphaComposite.c integer
// arithmetic). NOTE(image): transformers >= 5.2x `convert_to_rgb` does this for PIL images with
// an alpha band, while 5.17 and v4 dropped alpha (models.md §4.1 predates the change).
Rgb8Image rgb8_composite_on_white(int64_t width, int64_t height, std::span<const uint8_t> rgba);

}  // namespace mlab::image
