#pragma once
// A synthetic image as a display list (issue F9): flat-coloured rectangles, shapes and bitmap
// text on a background, rendered into an RGB8 buffer. Generators describe pictures; rendering
// is separate, so the question/answer statistics of a task can be computed without drawing.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/image.hpp"

namespace mlab::synth {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

enum class ShapeKind { kCircle, kSquare, kTriangle, kDiamond, kCross };

struct RectItem {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // pixels [x0, x1) x [y0, y1), clipped to the image
  Rgb color;
};

struct ShapeItem {
  ShapeKind kind = ShapeKind::kCircle;
  int cx = 0, cy = 0;  // centre, pixels
  int radius = 0;      // half the bounding box side, pixels
  Rgb color;
};

struct TextItem {
  std::string text;  // characters of the synth font (synth/bitmap_font.hpp)
  int x = 0, y = 0;  // top-left corner, pixels
  int scale = 1;     // font pixels -> image pixels
  Rgb color;
};

// Drawn in this order: background, rects, shapes, texts (later items on top).
struct Picture {
  int size = 112;  // square side, pixels
  Rgb background{255, 255, 255};
  std::vector<RectItem> rects;
  std::vector<ShapeItem> shapes;
  std::vector<TextItem> texts;
};

// Renders `picture` into a size x size RGB image. Pixel (x, y) belongs to a shape when its centre
// (x + 0.5, y + 0.5) is inside the shape's outline. Throws mlab::Error for a text character the
// font lacks or a non-positive size.
datasets::Image render_picture(const Picture& picture);

// 64-bit FNV-1a of the pixels (and the size): equal images, equal hashes.
std::uint64_t image_hash(const datasets::Image& image);

}  // namespace mlab::synth
