#pragma once
// Decoded images as plain uint8 buffers (no Torch): what PIL's Image.open(path).convert("RGB")
// yields, as lmms-eval's doc_to_visual hands images to the model wrappers.
// NOTE(F4): decoding uses stb_image. PNG/BMP/GIF are lossless and match Pillow; JPEG pixels may
// differ from Pillow's libjpeg-turbo by +-1 in places (IDCT/upsampling), and 16-bit grey PNGs are
// scaled (>> 8) where Pillow's "I;16" -> "RGB" conversion clips. The model runtime owns exactness.
#include <cstdint>
#include <filesystem>
#include <vector>

namespace mlab::datasets {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;  // u8 [height, width, 3], row-major
};

struct ImageInfo {
  int width = 0;
  int height = 0;
  int channels = 0;  // in the file (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)
};

// Reads the header of the image at `path` (cheap: no pixel decoding). Throws mlab::Error naming
// the path when the file is missing, empty, or not a decodable PNG/JPEG/BMP/GIF/TGA/PSD/PNM.
ImageInfo read_image_info(const std::filesystem::path& path);

// Decodes the image at `path` to RGB. Throws mlab::Error naming the path and the decoder's
// reason for a missing, truncated or corrupt file.
Image decode_image(const std::filesystem::path& path);

// RGBA pixels: what Pillow's convert("RGBA") yields (alpha 255 where the file has none).
struct RgbaImage {
  int width = 0;
  int height = 0;
  bool has_alpha = false;          // the file has an alpha channel (grey+alpha, RGBA, tRNS palette)
  std::vector<std::uint8_t> rgba;  // u8 [height, width, 4], row-major
};

// Decodes the image at `path` keeping its alpha channel, for consumers that composite it
// (transformers' processors put RGBA images on white). Errors as decode_image.
RgbaImage decode_image_rgba(const std::filesystem::path& path);

}  // namespace mlab::datasets
