// libpng's simplified write path is avoided on purpose: the low-level API lets us pin the zlib
// level and the row filter (libpng's default adaptive filter choice is deterministic too, but
// pinning it makes the bytes a function of the pixels and the library versions only).
#include "synth/png_writer.hpp"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <memory>
#include <string>

#include "core/error.hpp"

namespace mlab::synth {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* text = static_cast<std::string*>(png_get_error_ptr(png));
  if (text) *text = message ? message : "libpng error";
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

}  // namespace

void write_png(const std::filesystem::path& path, const datasets::Image& image) {
  MLAB_CHECK(image.width > 0 && image.height > 0 &&
                 image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
             path.string(), ": cannot write a ", image.width, "x", image.height, " image from ",
             image.rgb.size(), " bytes");
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  MLAB_CHECK(file != nullptr, path.string(), ": cannot open for writing");
  std::string error;
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &error, on_png_error, on_png_warning);
  MLAB_CHECK(png != nullptr, path.string(), ": png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    MLAB_FAIL(path.string(), ": png_create_info_struct failed");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    MLAB_FAIL(path.string(), ": PNG write failed: ", error);
  }
  png_init_io(png, file.get());
  png_set_compression_level(png, 6);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
  png_write_info(png, info);
  const std::size_t stride = static_cast<std::size_t>(image.width) * 3;
  for (int y = 0; y < image.height; ++y) {
    png_write_row(png, const_cast<png_bytep>(image.rgb.data() + y * stride));
  }
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const bool flushed = std::fflush(file.get()) == 0;
  MLAB_CHECK(flushed, path.string(), ": write failed (disk full?)");
}

}  // namespace mlab::synth
