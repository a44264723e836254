// Rasteriser of the synthetic suite's pictures (issue F9): plain per-pixel inside tests over each
// item's bounding box; no anti-aliasing, so colours stay exactly the palette's.
#include "synth/picture.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "synth/bitmap_font.hpp"

namespace mlab::synth {
namespace {

void put(datasets::Image& img, int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  std::uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

// Inside test at the pixel centre, relative to the shape centre, in units of the radius.
bool inside(ShapeKind kind, double dx, double dy) {
  const double ax = std::abs(dx), ay = std::abs(dy);
  switch (kind) {
    case ShapeKind::kCircle:
      return dx * dx + dy * dy <= 1.0;
    case ShapeKind::kSquare:
      return ax <= 0.85 && ay <= 0.85;  // same area order as the circle
    case ShapeKind::kTriangle:          // apex up at dy = -1, base at dy = +0.9
      return dy >= -1.0 && dy <= 0.9 && ax <= (dy + 1.0) * 0.5 * (1.0 / 0.95);
    case ShapeKind::kDiamond:
      return ax + ay <= 1.0;
    case ShapeKind::kCross:
      return (ax <= 0.33 && ay <= 1.0) || (ay <= 0.33 && ax <= 1.0);
  }
  return false;
}

}  // namespace

datasets::Image render_picture(const Picture& picture) {
  MLAB_CHECK(picture.size > 0, "synth picture: size must be positive, got ", picture.size);
  datasets::Image img;
  img.width = img.height = picture.size;
  img.rgb.resize(static_cast<std::size_t>(picture.size) * picture.size * 3);
  for (std::size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = picture.background.r;
    img.rgb[i + 1] = picture.background.g;
    img.rgb[i + 2] = picture.background.b;
  }
  for (const RectItem& r : picture.rects) {
    for (int y = std::max(0, r.y0); y < std::min(picture.size, r.y1); ++y) {
      for (int x = std::max(0, r.x0); x < std::min(picture.size, r.x1); ++x)
        put(img, x, y, r.color);
    }
  }
  for (const ShapeItem& s : picture.shapes) {
    if (s.radius <= 0) continue;
    const double inv = 1.0 / s.radius;
    for (int y = s.cy - s.radius - 1; y <= s.cy + s.radius + 1; ++y) {
      for (int x = s.cx - s.radius - 1; x <= s.cx + s.radius + 1; ++x) {
        const double dx = (x + 0.5 - s.cx) * inv, dy = (y + 0.5 - s.cy) * inv;
        if (inside(s.kind, dx, dy)) put(img, x, y, s.color);
      }
    }
  }
  for (const TextItem& t : picture.texts) {
    int pen = t.x;
    for (char c : t.text) {
      const Glyph& g = glyph(c);
      for (int gy = 0; gy < kGlyphHeight; ++gy) {
        for (int gx = 0; gx < kGlyphWidth; ++gx) {
          if (!(g[gy] >> (kGlyphWidth - 1 - gx) & 1u)) continue;
          for (int sy = 0; sy < t.scale; ++sy) {
            for (int sx = 0; sx < t.scale; ++sx) {
              put(img, pen + gx * t.scale + sx, t.y + gy * t.scale + sy, t.color);
            }
          }
        }
      }
      pen += kGlyphAdvance * t.scale;
    }
  }
  return img;
}

std::uint64_t image_hash(const datasets::Image& image) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::uint8_t b) {
    h ^= b;
    h *= 1099511628211ull;
  };
  for (int v : {image.width, image.height}) {
    for (int k = 0; k < 4; ++k) mix(static_cast<std::uint8_t>(v >> (8 * k)));
  }
  for (std::uint8_t b : image.rgb) mix(b);
  return h;
}

}  // namespace mlab::synth
