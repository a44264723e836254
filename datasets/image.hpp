#pragma once
// Decoded images as plain uint8 buffers (no Torch): what PIL's Image.open(path).convert("RGB")
// yields, as lmms-eval's doc_to_visual hands images to the model wrappers.
// NOTE(F14): JPEG and PNG pixels are bit-exact with Pillow 13 (tests/data/images/decode, from
// tools/fixtures/make_decode_fixtures.py: 241 JPEGs, 81 PNGs). JPEG: libjpeg-turbo with Pillow's
// settings (ISLOW IDCT, fancy upsampling; CMYK read Adobe-inverted, converted by Pillow's
// cmyk2rgb); lossless (SOF3) JPEGs, which the libjpeg-turbo 3.x inside Pillow reads, fail here
// (Debian's 2.1.5). PNG: libpng for the samples, Pillow's modes and conversions for the pixels
// (16-bit colour keeps the high byte, 16-bit grey clips at 255, tRNS compared as Pillow does).
// Like Pillow's open + convert, the EXIF orientation is ignored (no exif_transpose), and so are
// gamma and ICC profiles; an animated PNG decodes to its IDAT image (Pillow's frame 0). Other
// formats (BMP, GIF, TGA, PSD, PNM) use stb_image: exact on the fixture's BMP and GIF files except
// the RGB of a GIF's transparent pixels (stb: black, Pillow: the palette colour; the same once
// composited on white).
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
  int channels = 0;  // in the file: 1 grey, 2 grey+alpha, 3 colour (RGB, YCbCr, CMYK, palette),
                     // 4 colour+alpha; a PNG tRNS chunk counts as alpha (stb's count elsewhere)
};

// Reads the header of the image at `path` (cheap: no pixel decoding; a PNG's chunk headers up to
// its image data, a JPEG's markers up to its first scan). Throws mlab::Error naming the path when
// the file is missing, empty, or its header is not that of a PNG/JPEG/BMP/GIF/TGA/PSD/PNM; a file
// cut inside its image data passes (decoding finds it).
ImageInfo read_image_info(const std::filesystem::path& path);

// The decompression-bomb cap (F11 D3): decode_image and decode_image_rgba read the header first
// and refuse an image of more than this many pixels (width x height) before allocating anything.
// The default is Pillow's: Image.MAX_IMAGE_PIXELS (89,478,485) x 2, above which Pillow raises
// DecompressionBombError instead of opening the file. 0: no cap. Process-wide; the commands that
// read images set it from --max-image-pixels.
inline constexpr std::int64_t kDefaultMaxImagePixels = 178956970;
void set_max_image_pixels(std::int64_t pixels);
std::int64_t max_image_pixels();

// Decodes the image at `path` to RGB. Throws mlab::Error naming the path and the decoder's
// reason for a missing, truncated or corrupt file (a truncated JPEG or PNG is an error, as in
// Pillow without LOAD_TRUNCATED_IMAGES).
Image decode_image(const std::filesystem::path& path);

// RGBA pixels: what Pillow's convert("RGBA") yields (alpha 255 where the file has none).
struct RgbaImage {
  int width = 0;
  int height = 0;
  // The file has an alpha channel or a PNG tRNS chunk (transformers' convert_to_rgb rule: an "A"
  // band or a "transparency" entry).
  bool has_alpha = false;
  std::vector<std::uint8_t> rgba;  // u8 [height, width, 4], row-major
};

// Decodes the image at `path` keeping its alpha channel, for consumers that composite it
// (transformers' processors put RGBA images on white). Errors as decode_image.
RgbaImage decode_image_rgba(const std::filesystem::path& path);

}  // namespace mlab::datasets
