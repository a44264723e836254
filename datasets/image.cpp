#include "datasets/image.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "core/error.hpp"

// libjpeg-turbo and libpng report errors by longjmp: the functions below that set the jump point
// (jpeg_header, jpeg_pixels, png_header, png_prepare, png_rows) hold no object with a destructor
// and keep their state in a plain struct of the caller, so a longjmp skips no destructor.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

// stb_image with internal linkage, for the other formats (BMP, GIF, TGA, PSD, PNM).
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_JPEG
#define STBI_NO_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace mlab::datasets {
namespace {

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

// Opens `path` for reading; fails naming the path when it is missing, unreadable or empty.
File open_image(const std::filesystem::path& path) {
  std::error_code ec;
  MLAB_CHECK(std::filesystem::is_regular_file(path, ec), "image ", path.string(),
             ": missing (no such file)");
  MLAB_CHECK(std::filesystem::file_size(path, ec) > 0 && !ec, "image ", path.string(),
             ": empty file");
  File file(std::fopen(path.c_str(), "rb"), std::fclose);
  MLAB_CHECK(file != nullptr, "image ", path.string(), ": cannot open (", std::strerror(errno),
             ")");
  return file;
}

enum class Format { kJpeg, kPng, kOther };

Format sniff(std::FILE* file) {
  unsigned char magic[8] = {};
  const std::size_t n = std::fread(magic, 1, sizeof magic, file);
  std::rewind(file);
  static constexpr unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 2 && magic[0] == 0xff && magic[1] == 0xd8) return Format::kJpeg;
  if (n == 8 && std::memcmp(magic, kPng, 8) == 0) return Format::kPng;
  return Format::kOther;
}

// Pixels as Pillow's convert("RGB") (channels 3) or convert("RGBA") (channels 4) yields them.
struct Decoded {
  int width = 0;
  int height = 0;
  bool has_alpha = false;
  std::vector<std::uint8_t> pixels;  // u8 [height, width, channels]
};

// Pillow's MULDIV255: a * b / 255, rounded.
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// --- JPEG: libjpeg-turbo with Pillow's decoder settings --------------------------------------

struct JpegJob {
  jpeg_decompress_struct cinfo{};
  jpeg_error_mgr err{};
  std::jmp_buf jump{};
  char message[JMSG_LENGTH_MAX] = {};
};

JpegJob& job_of(j_common_ptr cinfo) { return *static_cast<JpegJob*>(cinfo->client_data); }

[[noreturn]] void jpeg_fail(j_common_ptr cinfo) {
  (*cinfo->err->format_message)(cinfo, job_of(cinfo).message);
  std::longjmp(job_of(cinfo).jump, 1);
}

// Pillow discards libjpeg's warnings (corrupt-data warnings decode on, as here), but stops when
// the data ends early ("image file is truncated"): so does this decoder.
void jpeg_message(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
}

// Reads the header. On failure the message is in job.message and nothing is left to destroy.
bool jpeg_header(JpegJob& job, std::FILE* file) {
  job.cinfo.err = jpeg_std_error(&job.err);
  job.err.error_exit = jpeg_fail;
  job.err.emit_message = jpeg_message;
  job.cinfo.client_data = &job;  // kept by jpeg_create_decompress
  if (setjmp(job.jump)) {
    jpeg_destroy_decompress(&job.cinfo);
    return false;
  }
  jpeg_create_decompress(&job.cinfo);
  jpeg_stdio_src(&job.cinfo, file);
  jpeg_read_header(&job.cinfo, TRUE);
  return true;
}

// Decodes the rows into `out` ([height, width, channels], channels 3 or 4) with the settings of
// Pillow's ImagingJpegDecode: libjpeg's defaults (JDCT_ISLOW, fancy upsampling, block smoothing),
// out_color_space RGB for 1- and 3-component files (RGBX in Pillow: the same values; grey is
// replicated, as Pillow's "L" -> "RGB"), CMYK for 4-component files, then Pillow's "CMYK;I"
// (Adobe-inverted) unpacking and Convert.c's cmyk2rgb. `row` holds one CMYK row. Destroys the
// decompressor in every case.
bool jpeg_pixels(JpegJob& job, std::uint8_t* out, int channels, std::uint8_t* row) {
  if (setjmp(job.jump)) {
    jpeg_destroy_decompress(&job.cinfo);
    return false;
  }
  j_decompress_ptr cinfo = &job.cinfo;
  const bool cmyk = cinfo->num_components == 4;
  cinfo->out_color_space = cmyk ? JCS_CMYK : channels == 4 ? JCS_EXT_RGBA : JCS_EXT_RGB;
  jpeg_start_decompress(cinfo);
  const std::size_t stride = static_cast<std::size_t>(cinfo->output_width) * channels;
  while (cinfo->output_scanline < cinfo->output_height) {
    std::uint8_t* dst = out + cinfo->output_scanline * stride;
    JSAMPROW rows[1] = {cmyk ? row : dst};
    jpeg_read_scanlines(cinfo, rows, 1);
    if (!cmyk) continue;
    for (JDIMENSION x = 0; x < cinfo->output_width; ++x, dst += channels) {
      const std::uint8_t* p = row + 4 * x;
      const int nk = p[3];  // 255 - K after the inversion
      for (int c = 0; c < 3; ++c) {
        const int v = nk - muldiv255(255 - p[c], nk);
        dst[c] = static_cast<std::uint8_t>(v < 0 ? 0 : v);
      }
      if (channels == 4) dst[3] = 255;
    }
  }
  jpeg_finish_decompress(cinfo);
  jpeg_destroy_decompress(cinfo);
  return true;
}

// 1 grey, 3 colour (YCbCr, RGB, CMYK, YCCK); Pillow refuses 2-component files, and so do we.
int jpeg_channels(const std::filesystem::path& path, int components) {
  MLAB_CHECK(components == 1 || components == 3 || components == 4, "image ", path.string(),
             ": corrupt or unsupported image (JPEG with ", components, " components)");
  return components == 1 ? 1 : 3;
}

[[noreturn]] void jpeg_error(const std::filesystem::path& path, const JpegJob& job) {
  const bool truncated = job.err.msg_code == JWRN_JPEG_EOF;
  MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (",
            truncated ? "truncated " : "", "JPEG: ", job.message, ")");
}

ImageInfo jpeg_info(const std::filesystem::path& path, std::FILE* file) {
  JpegJob job;
  if (!jpeg_header(job, file)) jpeg_error(path, job);
  const int width = static_cast<int>(job.cinfo.image_width);
  const int height = static_cast<int>(job.cinfo.image_height);
  const int components = job.cinfo.num_components;
  jpeg_destroy_decompress(&job.cinfo);
  return {width, height, jpeg_channels(path, components)};
}

Decoded jpeg_decode(const std::filesystem::path& path, std::FILE* file, int channels) {
  JpegJob job;
  if (!jpeg_header(job, file)) jpeg_error(path, job);
  Decoded d;
  std::vector<std::uint8_t> row;
  try {
    jpeg_channels(path, job.cinfo.num_components);
    d.width = static_cast<int>(job.cinfo.image_width);
    d.height = static_cast<int>(job.cinfo.image_height);
    d.pixels.resize(static_cast<std::size_t>(d.width) * d.height * channels);
    row.resize(static_cast<std::size_t>(d.width) * 4);
  } catch (...) {
    jpeg_destroy_decompress(&job.cinfo);
    throw;
  }
  if (!jpeg_pixels(job, d.pixels.data(), channels, row.data())) jpeg_error(path, job);
  return d;
}

// --- PNG: libpng for the samples, Pillow's PngImagePlugin modes and Convert.c rules for pixels --

struct PngJob {
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = {};
  png_uint_32 width = 0, height = 0;
  int depth = 0, color_type = 0, interlace = 0;
  bool has_trns = false;
  png_color_16 trns_color{};             // grey / RGB tRNS, the file's (up to 16-bit) values
  std::array<std::uint8_t, 1024> lut{};  // palette or <= 8-bit grey sample -> Pillow's RGBA
};

void png_fail(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof job->message, "%s", message);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}  // what libpng only warns about, Pillow accepts

// Reads the chunks up to the image data. On failure the message is in job.message.
bool png_header(PngJob& job, std::FILE* file) {
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_fail, png_warn);
  if (job.png == nullptr) {
    std::snprintf(job.message, sizeof job.message, "out of memory");
    return false;
  }
  job.info = png_create_info_struct(job.png);
  if (job.info == nullptr) {
    png_destroy_read_struct(&job.png, nullptr, nullptr);
    std::snprintf(job.message, sizeof job.message, "out of memory");
    return false;
  }
  if (setjmp(png_jmpbuf(job.png))) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    return false;
  }
  png_init_io(job.png, file);
  // Pillow verifies the CRC of every chunk before the image data: a bad one is an error.
  png_set_crc_action(job.png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_read_info(job.png, job.info);
  png_get_IHDR(job.png, job.info, &job.width, &job.height, &job.depth, &job.color_type,
               &job.interlace, nullptr, nullptr);
  png_bytep trns_alpha = nullptr;
  int num_trns = 0;
  png_color_16p trns_color = nullptr;
  if (png_get_tRNS(job.png, job.info, &trns_alpha, &num_trns, &trns_color) != 0) {
    job.has_trns = true;
    if (trns_color != nullptr) job.trns_color = *trns_color;
  }
  if (job.color_type == PNG_COLOR_TYPE_PALETTE) {
    // Pillow's palette: the PLTE entries, then black (indices past the PLTE, which the file
    // should not hold); alpha from tRNS, else 255.
    png_colorp palette = nullptr;
    int num_palette = 0;
    png_get_PLTE(job.png, job.info, &palette, &num_palette);
    for (int i = 0; i < 256; ++i) {
      std::uint8_t* e = &job.lut[4 * i];
      if (i < num_palette) {
        e[0] = palette[i].red, e[1] = palette[i].green, e[2] = palette[i].blue;
      }
      e[3] = i < num_trns && trns_alpha != nullptr ? trns_alpha[i] : 255;
    }
  } else if (job.color_type == PNG_COLOR_TYPE_GRAY && job.depth <= 8) {
    // Pillow's modes: 1-bit "1" (0/255, tRNS stored as 0/255), 2/4/8-bit "L" (the sample times
    // 255 / (2^depth - 1), tRNS stored as the raw sample); convert_transparent compares the
    // converted value with the tRNS value's low byte.
    const int top = (1 << job.depth) - 1;
    const int trns =
        job.depth == 1 ? (job.trns_color.gray != 0 ? 255 : 0) : job.trns_color.gray & 0xff;
    for (int s = 0; s <= top; ++s) {
      const int v = s * 255 / top;
      std::uint8_t* e = &job.lut[4 * s];
      e[0] = e[1] = e[2] = static_cast<std::uint8_t>(v);
      e[3] = job.has_trns && v == trns ? 0 : 255;
    }
  }
  return true;
}

// Reads `count` rows of samples (packed sub-byte samples expanded to one byte, 16-bit samples
// big-endian; all of them at once when interlaced). Destroys libpng's state on failure.
bool png_rows(PngJob& job, png_bytepp rows, png_uint_32 count) {
  if (setjmp(png_jmpbuf(job.png))) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    return false;
  }
  if (job.interlace != PNG_INTERLACE_NONE) {
    png_read_image(job.png, rows);
  } else {
    png_read_rows(job.png, rows, nullptr, count);
  }
  return true;
}

bool png_prepare(PngJob& job, std::size_t* rowbytes) {
  if (setjmp(png_jmpbuf(job.png))) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    return false;
  }
  // Pillow inflates the image data with zlib's full 32 KiB window whatever the stream header
  // claims, and does not check the CRC of IDAT chunks: neither does this decoder.
  png_set_option(job.png, PNG_MAXIMUM_INFLATE_WINDOW, PNG_OPTION_ON);
  png_set_crc_action(job.png, PNG_CRC_QUIET_USE, PNG_CRC_ERROR_QUIT);
  if (job.depth < 8) png_set_packing(job.png);
  if (job.interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(job.png);
  png_read_update_info(job.png, job.info);
  *rowbytes = png_get_rowbytes(job.png, job.info);
  return true;
}

// One row of samples -> Pillow's RGB(A): the mode PngImagePlugin opens the file in, then
// convert("RGB"/"RGBA"). 16-bit colour keeps the high byte ("RGB;16B", "RGBA;16B", "LA;16B");
// 16-bit grey is "I;16", whose conversion clips at 255. A grey or RGB tRNS makes alpha 0 where
// the converted pixel equals the tRNS value's low bytes (Convert.c's convert_transparent).
void png_convert_row(const PngJob& job, const std::uint8_t* in, std::uint8_t* out, int channels) {
  const bool wide = job.depth == 16;
  const int step = wide ? 2 : 1;  // bytes per sample; the high byte comes first
  const png_color_16& t = job.trns_color;
  for (png_uint_32 x = 0; x < job.width; ++x, out += channels) {
    std::uint8_t rgba[4];
    switch (job.color_type) {
      case PNG_COLOR_TYPE_PALETTE:
        std::memcpy(rgba, &job.lut[4 * in[x]], 4);
        break;
      case PNG_COLOR_TYPE_GRAY:
        if (wide) {
          const std::uint8_t* p = in + 2 * x;
          const std::uint8_t v = p[0] != 0 ? 255 : p[1];
          rgba[0] = rgba[1] = rgba[2] = v;
          rgba[3] = job.has_trns && v == (t.gray & 0xff) ? 0 : 255;
        } else {
          std::memcpy(rgba, &job.lut[4 * in[x]], 4);
        }
        break;
      case PNG_COLOR_TYPE_GRAY_ALPHA: {
        const std::uint8_t* p = in + 2 * step * x;
        rgba[0] = rgba[1] = rgba[2] = p[0];
        rgba[3] = p[step];
        break;
      }
      case PNG_COLOR_TYPE_RGB: {
        const std::uint8_t* p = in + 3 * step * x;
        rgba[0] = p[0], rgba[1] = p[step], rgba[2] = p[2 * step];
        rgba[3] = job.has_trns && rgba[0] == (t.red & 0xff) && rgba[1] == (t.green & 0xff) &&
                          rgba[2] == (t.blue & 0xff)
                      ? 0
                      : 255;
        break;
      }
      default: {  // PNG_COLOR_TYPE_RGB_ALPHA
        const std::uint8_t* p = in + 4 * step * x;
        rgba[0] = p[0], rgba[1] = p[step], rgba[2] = p[2 * step], rgba[3] = p[3 * step];
        break;
      }
    }
    std::memcpy(out, rgba, channels);
  }
}

// 1 grey, 2 grey+alpha, 3 colour (palette included), 4 colour+alpha; a tRNS chunk counts as alpha.
int png_channels(const PngJob& job) {
  int n = (job.color_type & PNG_COLOR_MASK_COLOR) != 0 ? 3 : 1;
  if ((job.color_type & PNG_COLOR_MASK_ALPHA) != 0 || job.has_trns) ++n;
  return n;
}

// The IHDR fields, and whether a tRNS chunk precedes the image data, read from the chunk headers
// only: a file cut inside its image data still has a valid header (decoding finds the cut).
ImageInfo png_info(const std::filesystem::path& path, std::FILE* file) {
  unsigned char h[33] = {};  // signature, IHDR chunk (length, type, 13 bytes of data, CRC)
  auto be32 = [](const unsigned char* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
  };
  const bool complete = std::fread(h, 1, sizeof h, file) == sizeof h;
  const std::uint32_t width = be32(h + 16), height = be32(h + 20);
  const int depth = h[24], color_type = h[25];
  const bool depth_ok =
      color_type == PNG_COLOR_TYPE_GRAY
          ? depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
      : color_type == PNG_COLOR_TYPE_PALETTE
          ? depth == 1 || depth == 2 || depth == 4 || depth == 8
          : (color_type == PNG_COLOR_TYPE_RGB || color_type == PNG_COLOR_TYPE_GRAY_ALPHA ||
             color_type == PNG_COLOR_TYPE_RGB_ALPHA) &&
                (depth == 8 || depth == 16);
  MLAB_CHECK(complete && be32(h + 8) == 13 && std::memcmp(h + 12, "IHDR", 4) == 0 && depth_ok &&
                 width > 0 && height > 0 && width <= 0x7fffffff && height <= 0x7fffffff,
             "image ", path.string(), ": corrupt or unsupported image (PNG without a valid IHDR)");
  PngJob job;
  job.color_type = color_type;
  unsigned char chunk[8];
  while (std::fread(chunk, 1, sizeof chunk, file) == sizeof chunk &&
         std::memcmp(chunk + 4, "IDAT", 4) != 0) {
    if (std::memcmp(chunk + 4, "tRNS", 4) == 0) {
      job.has_trns =
          color_type != PNG_COLOR_TYPE_GRAY_ALPHA && color_type != PNG_COLOR_TYPE_RGB_ALPHA;
      break;
    }
    if (std::fseek(file, static_cast<long>(be32(chunk)) + 4, SEEK_CUR) != 0) break;
  }
  return {static_cast<int>(width), static_cast<int>(height), png_channels(job)};
}

[[noreturn]] void png_error(const std::filesystem::path& path, const PngJob& job, std::FILE* file) {
  if (std::feof(file)) {
    MLAB_FAIL("image ", path.string(),
              ": corrupt or unsupported image (truncated PNG: the file ends early)");
  }
  MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (PNG: ", job.message, ")");
}

Decoded png_decode(const std::filesystem::path& path, std::FILE* file, int channels) {
  PngJob job;
  std::size_t rowbytes = 0;
  if (!png_header(job, file) || !png_prepare(job, &rowbytes)) png_error(path, job, file);
  Decoded d;
  std::vector<std::uint8_t> samples;
  std::vector<png_bytep> rows;
  const bool interlaced = job.interlace != PNG_INTERLACE_NONE;
  try {
    d.width = static_cast<int>(job.width);
    d.height = static_cast<int>(job.height);
    d.has_alpha = (job.color_type & PNG_COLOR_MASK_ALPHA) != 0 || job.has_trns;
    d.pixels.resize(static_cast<std::size_t>(d.width) * d.height * channels);
    samples.resize(rowbytes * (interlaced ? job.height : 1));
    rows.resize(interlaced ? job.height : 1);
    for (std::size_t y = 0; y < rows.size(); ++y) rows[y] = samples.data() + y * rowbytes;
  } catch (...) {
    png_destroy_read_struct(&job.png, &job.info, nullptr);
    throw;
  }
  if (interlaced && !png_rows(job, rows.data(), job.height)) png_error(path, job, file);
  const std::size_t stride = static_cast<std::size_t>(d.width) * channels;
  for (png_uint_32 y = 0; y < job.height; ++y) {
    if (!interlaced && !png_rows(job, rows.data(), 1)) png_error(path, job, file);
    png_convert_row(job, interlaced ? rows[y] : rows[0], d.pixels.data() + y * stride, channels);
  }
  // The chunks after the image data are not read (Pillow's convert does not need them either).
  png_destroy_read_struct(&job.png, &job.info, nullptr);
  return d;
}

// --- other formats: stb_image ----------------------------------------------------------------

// A 32-bit BI_RGB BMP: Pillow reads it as "RGB" (BGRX, the fourth byte is padding), stb_image
// takes the fourth byte as alpha.
bool bmp_padding_byte(std::FILE* file) {
  unsigned char h[34] = {};
  const bool ok = std::fread(h, 1, sizeof h, file) == sizeof h;
  std::rewind(file);
  auto le = [&](int at, int bytes) {
    std::uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = v << 8 | h[at + i];
    return v;
  };
  return ok && h[0] == 'B' && h[1] == 'M' && le(14, 4) >= 40 && le(28, 2) == 32 && le(30, 4) == 0;
}

ImageInfo stb_info(const std::filesystem::path& path, std::FILE* file) {
  ImageInfo info;
  const bool padding = bmp_padding_byte(file);
  if (!stbi_info_from_file(file, &info.width, &info.height, &info.channels)) {
    MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (", stbi_failure_reason(),
              ")");
  }
  if (padding) info.channels = 3;
  return info;
}

Decoded stb_decode(const std::filesystem::path& path, std::FILE* file, int channels) {
  Decoded d;
  const bool padding = bmp_padding_byte(file);
  int file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load_from_file(file, &d.width, &d.height, &file_channels, channels), stbi_image_free);
  if (!pixels) {
    MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (", stbi_failure_reason(),
              ")");
  }
  d.has_alpha = (file_channels == 2 || file_channels == 4) && !padding;
  const std::size_t bytes = static_cast<std::size_t>(d.width) * d.height * channels;
  d.pixels.assign(pixels.get(), pixels.get() + bytes);
  if (padding && channels == 4) {
    for (std::size_t i = 3; i < bytes; i += 4) d.pixels[i] = 255;
  }
  return d;
}

std::atomic<std::int64_t> g_max_image_pixels{kDefaultMaxImagePixels};

Decoded decode(const std::filesystem::path& path, int channels) {
  const std::int64_t cap = g_max_image_pixels.load();
  if (cap > 0) {
    const ImageInfo info = read_image_info(path);
    const std::int64_t pixels = static_cast<std::int64_t>(info.width) * info.height;
    MLAB_CHECK(pixels <= cap, "image ", path.string(), ": ", info.width, " x ", info.height, " = ",
               pixels, " pixels exceeds the limit of ", cap,
               " (a decompression bomb? --max-image-pixels raises the limit, 0 removes it)");
  }
  File file = open_image(path);
  switch (sniff(file.get())) {
    case Format::kJpeg:
      return jpeg_decode(path, file.get(), channels);
    case Format::kPng:
      return png_decode(path, file.get(), channels);
    case Format::kOther:
      break;
  }
  return stb_decode(path, file.get(), channels);
}

}  // namespace

void set_max_image_pixels(std::int64_t pixels) {
  MLAB_CHECK(pixels >= 0, "--max-image-pixels must be >= 0, got ", pixels);
  g_max_image_pixels.store(pixels);
}

std::int64_t max_image_pixels() { return g_max_image_pixels.load(); }

ImageInfo read_image_info(const std::filesystem::path& path) {
  File file = open_image(path);
  switch (sniff(file.get())) {
    case Format::kJpeg:
      return jpeg_info(path, file.get());
    case Format::kPng:
      return png_info(path, file.get());
    case Format::kOther:
      break;
  }
  return stb_info(path, file.get());
}

Image decode_image(const std::filesystem::path& path) {
  Decoded d = decode(path, 3);
  return {d.width, d.height, std::move(d.pixels)};
}

RgbaImage decode_image_rgba(const std::filesystem::path& path) {
  Decoded d = decode(path, 4);
  return {d.width, d.height, d.has_alpha, std::move(d.pixels)};
}

}  // namespace mlab::datasets
