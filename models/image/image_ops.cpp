#include "models/image/image_ops.hpp"

#include <algorithm>
#include <cstring>

#include "core/error.hpp"

namespace mlab::image {

float normalize_value(uint8_t v, int channel, const NormalizeOptions& options) {
  // PilBackend.rescale: f64(u8) * scale, then cast to f32; normalize: f32 arithmetic with the
  // mean and std cast to f32 (np.array(mean, dtype=image.dtype)).
  float x = options.do_rescale ? static_cast<float>(static_cast<double>(v) * options.rescale_factor)
                               : static_cast<float>(v);
  if (options.do_normalize) {
    const float mean = static_cast<float>(options.mean[channel]);
    const float std = static_cast<float>(options.std[channel]);
    x = (x - mean) / std;
  }
  return x;
}

void append_normalized_chw(const Rgb8Image& image, const NormalizeOptions& options,
                           std::vector<float>& out) {
  std::array<std::array<float, 256>, 3> table;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v)
      table[c][v] = normalize_value(static_cast<uint8_t>(v), c, options);
  }
  const std::size_t plane = static_cast<std::size_t>(image.width * image.height);
  const std::size_t base = out.size();
  out.resize(base + 3 * plane);
  for (std::size_t i = 0; i < plane; ++i) {
    for (int c = 0; c < 3; ++c) out[base + c * plane + i] = table[c][image.pixels[3 * i + c]];
  }
}

Rgb8Image crop(const Rgb8Image& image, int64_t left, int64_t top, int64_t width, int64_t height) {
  MLAB_CHECK(width > 0 && height > 0 && left >= 0 && top >= 0 && left + width <= image.width &&
                 top + height <= image.height,
             "crop: window ", width, "x", height, " at (", left, ", ", top, ") outside a ",
             image.width, "x", image.height, " image");
  Rgb8Image out = filled_rgb8_image(width, height);
  for (int64_t y = 0; y < height; ++y) {
    std::memcpy(out.at(0, y), image.at(left, top + y), static_cast<std::size_t>(width * 3));
  }
  return out;
}

void paste(Rgb8Image& canvas, const Rgb8Image& image, int64_t left, int64_t top) {
  MLAB_CHECK(left >= 0 && top >= 0 && left + image.width <= canvas.width &&
                 top + image.height <= canvas.height,
             "paste: a ", image.width, "x", image.height, " image at (", left, ", ", top,
             ") does not fit a ", canvas.width, "x", canvas.height, " canvas");
  for (int64_t y = 0; y < image.height; ++y) {
    std::memcpy(canvas.at(left, top + y), image.at(0, y),
                static_cast<std::size_t>(image.width * 3));
  }
}

namespace {

int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

}  // namespace

Rgb8Image center_crop(const Rgb8Image& image, int64_t width, int64_t height) {
  MLAB_CHECK(width > 0 && height > 0, "center_crop: crop size must be positive, got ", width, "x",
             height);
  int64_t top = floor_div2(image.height - height);
  int64_t left = floor_div2(image.width - width);
  if (top >= 0 && left >= 0 && top + height <= image.height && left + width <= image.width) {
    return crop(image, left, top, width, height);
  }
  // Too small on a side: centre on a zero canvas, then take the window (shifted by the padding).
  const int64_t canvas_h = std::max(height, image.height);
  const int64_t canvas_w = std::max(width, image.width);
  Rgb8Image canvas = filled_rgb8_image(canvas_w, canvas_h);
  const int64_t top_pad = (canvas_h - image.height + 1) / 2;  // ceil
  const int64_t left_pad = (canvas_w - image.width + 1) / 2;
  paste(canvas, image, left_pad, top_pad);
  top += top_pad;
  left += left_pad;
  const int64_t y0 = std::max<int64_t>(0, top), y1 = std::min(canvas_h, top + height);
  const int64_t x0 = std::max<int64_t>(0, left), x1 = std::min(canvas_w, left + width);
  return crop(canvas, x0, y0, x1 - x0, y1 - y0);
}

Rgb8Image pad_to_square(const Rgb8Image& image, std::array<uint8_t, 3> fill) {
  if (image.width == image.height) return image;
  const int64_t side = std::max(image.width, image.height);
  Rgb8Image square = filled_rgb8_image(side, side, fill);
  paste(square, image, (side - image.width) / 2, (side - image.height) / 2);
  return square;
}

std::array<uint8_t, 3> mean_fill_color(const std::array<double, 3>& mean) {
  std::array<uint8_t, 3> fill{};
  for (int c = 0; c < 3; ++c) {
    const double v = mean[c] * 255;  // Python int(x * 255): truncation
    MLAB_CHECK(v >= 0 && v < 256, "mean_fill_color: mean ", mean[c], " outside [0, 1]");
    fill[c] = static_cast<uint8_t>(static_cast<int>(v));
  }
  return fill;
}

}  // namespace mlab::image
