#include "datasets/image.hpp"

#include <memory>

#include "core/error.hpp"

// stb_image with internal linkage: no symbol clashes with other users of the header.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#define STBI_NO_HDR
#define STBI_NO_LINEAR
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

void check_file(const std::filesystem::path& path) {
  std::error_code ec;
  MLAB_CHECK(std::filesystem::is_regular_file(path, ec), "image ", path.string(),
             ": missing (no such file)");
  MLAB_CHECK(std::filesystem::file_size(path, ec) > 0 && !ec, "image ", path.string(),
             ": empty file");
}

}  // namespace

ImageInfo read_image_info(const std::filesystem::path& path) {
  check_file(path);
  ImageInfo info;
  if (!stbi_info(path.c_str(), &info.width, &info.height, &info.channels)) {
    MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (", stbi_failure_reason(),
              ")");
  }
  return info;
}

Image decode_image(const std::filesystem::path& path) {
  check_file(path);
  Image image;
  int channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &image.width, &image.height, &channels, 3), stbi_image_free);
  if (!pixels) {
    MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (", stbi_failure_reason(),
              ")");
  }
  const std::size_t bytes = static_cast<std::size_t>(image.width) * image.height * 3;
  image.rgb.assign(pixels.get(), pixels.get() + bytes);
  return image;
}

RgbaImage decode_image_rgba(const std::filesystem::path& path) {
  check_file(path);
  RgbaImage image;
  int channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &image.width, &image.height, &channels, 4), stbi_image_free);
  if (!pixels) {
    MLAB_FAIL("image ", path.string(), ": corrupt or unsupported image (", stbi_failure_reason(),
              ")");
  }
  image.has_alpha = channels == 2 || channels == 4;
  const std::size_t bytes = static_cast<std::size_t>(image.width) * image.height * 4;
  image.rgba.assign(pixels.get(), pixels.get() + bytes);
  return image;
}

}  // namespace mlab::datasets
