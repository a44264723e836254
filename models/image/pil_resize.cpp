// Pillow-exact 8-bit resampling (see pil_resize.hpp). Written from the semantics of Pillow's
// libImaging/Resample.c (precompute_coeffs, normalize_coeffs_8bpc, ImagingResampleInner); the
// floating-point expressions keep Pillow's evaluation order, and this file is compiled with
// -ffp-contract=off so that no FMA changes a coefficient's rounding.
#include "models/image/pil_resize.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"

namespace mlab::image {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22 fractional bits, as Pillow's PRECISION_BITS

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// Quantised 1-D resampling weights: output sample o reads input samples
// [first[o], first[o] + count[o]) with weights[o * ksize + i].
struct Coefficients {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
};

Coefficients precompute(int in_size, int out_size, Resample resample) {
  double (*filter)(double) = resample == Resample::kBicubic ? bicubic_filter : bilinear_filter;
  const double filter_support = resample == Resample::kBicubic ? 2.0 : 1.0;
  // Pillow computes in1 - in0 in float (exact below 2^24) and divides in double.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter_support * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  const double inv_filterscale = 1.0 / filterscale;
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    int lo = static_cast<int>(center - support + 0.5);  // truncation, as C's (int)
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
      w[i] = filter((i + lo - center + 0.5) * inv_filterscale);
      sum += w[i];
    }
    if (sum != 0.0) {
      for (int i = 0; i < n; ++i) w[i] /= sum;
    }
    for (int i = 0; i < n; ++i) {
      const double scaled = w[i] * (1 << kPrecisionBits);
      c.weights[static_cast<std::size_t>(o) * c.ksize + i] =
          static_cast<int32_t>(w[i] < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    c.first[o] = lo;
    c.count[o] = n;
  }
  return c;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Rows [row_begin, row_end) of `in` resampled horizontally to width out_width.
Rgb8Image horizontal_pass(const Rgb8Image& in, const Coefficients& c, int out_width,
                          int64_t row_begin, int64_t row_end) {
  Rgb8Image out = filled_rgb8_image(out_width, row_end - row_begin);
  for (int64_t y = row_begin; y < row_end; ++y) {
    const uint8_t* line = in.at(0, y);
    uint8_t* dst = out.at(0, y - row_begin);
    for (int o = 0; o < out_width; ++o) {
      const int32_t* k = &c.weights[static_cast<std::size_t>(o) * c.ksize];
      const uint8_t* src = line + static_cast<std::ptrdiff_t>(c.first[o]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int i = 0; i < c.count[o]; ++i) {
        s0 += src[3 * i] * k[i];
        s1 += src[3 * i + 1] * k[i];
        s2 += src[3 * i + 2] * k[i];
      }
      dst[3 * o] = clip8(s0);
      dst[3 * o + 1] = clip8(s1);
      dst[3 * o + 2] = clip8(s2);
    }
  }
  return out;
}

// `in` resampled vertically to out_height; coefficient rows are shifted up by `row_offset`
// (the first input row `in` holds).
Rgb8Image vertical_pass(const Rgb8Image& in, const Coefficients& c, int out_height,
                        int row_offset) {
  Rgb8Image out = filled_rgb8_image(in.width, out_height);
  const int64_t row_bytes = in.width * 3;
  for (int o = 0; o < out_height; ++o) {
    const int32_t* k = &c.weights[static_cast<std::size_t>(o) * c.ksize];
    const uint8_t* src = in.at(0, c.first[o] - row_offset);
    uint8_t* dst = out.at(0, o);
    for (int64_t x = 0; x < row_bytes; ++x) {
      int32_t s = 1 << (kPrecisionBits - 1);
      for (int i = 0; i < c.count[o]; ++i) s += src[i * row_bytes + x] * k[i];
      dst[x] = clip8(s);
    }
  }
  return out;
}

bool vertical_first(PillowPassOrder order, int64_t w_in, int64_t h_in, int64_t w_out,
                    int64_t h_out) {
  switch (order) {
    case PillowPassOrder::kPillow13:
      return h_in - h_out > 0 && h_in - h_out > (w_in - w_out) * 2;
    case PillowPassOrder::kPillow12_2:
      return h_in > w_in * 100 && h_out < h_in;
    case PillowPassOrder::kHorizontalFirst:
      return false;
  }
  return false;
}

}  // namespace

Resample resample_from_pil_code(int code) {
  switch (code) {
    case 2:
      return Resample::kBilinear;
    case 3:
      return Resample::kBicubic;
    case 0:
      MLAB_FAIL("resample 0 (NEAREST) is not supported; supported: 2 (BILINEAR), 3 (BICUBIC)");
    case 1:
      MLAB_FAIL("resample 1 (LANCZOS) is not supported; supported: 2 (BILINEAR), 3 (BICUBIC)");
    case 4:
      MLAB_FAIL("resample 4 (BOX) is not supported; supported: 2 (BILINEAR), 3 (BICUBIC)");
    case 5:
      MLAB_FAIL("resample 5 (HAMMING) is not supported; supported: 2 (BILINEAR), 3 (BICUBIC)");
    default:
      MLAB_FAIL("unknown resample code ", code, "; supported: 2 (BILINEAR), 3 (BICUBIC)");
  }
}

Rgb8Image pil_resize(const Rgb8Image& image, int64_t width, int64_t height, Resample resample,
                     PillowPassOrder order) {
  MLAB_CHECK(image.width > 0 && image.height > 0 &&
                 static_cast<int64_t>(image.pixels.size()) == image.width * image.height * 3,
             "pil_resize: invalid source image ", image.width, "x", image.height, " with ",
             image.pixels.size(), " bytes");
  MLAB_CHECK(width > 0 && height > 0, "pil_resize: target size must be positive, got ", width, "x",
             height);
  constexpr int64_t kMaxSide = 1 << 24;  // float-exact sizes, as Pillow's float box
  MLAB_CHECK(
      width < kMaxSide && height < kMaxSide && image.width < kMaxSide && image.height < kMaxSide,
      "pil_resize: sizes above 2^24 are not supported (", image.width, "x", image.height, " -> ",
      width, "x", height, ")");
  const bool need_h = width != image.width;
  const bool need_v = height != image.height;
  if (!need_h && !need_v) return image;
  if (need_h && need_v && vertical_first(order, image.width, image.height, width, height)) {
    const Coefficients cv = precompute(image.height, height, resample);
    const Rgb8Image tmp = vertical_pass(image, cv, height, 0);
    const Coefficients ch = precompute(image.width, width, resample);
    return horizontal_pass(tmp, ch, width, 0, height);
  }
  if (!need_v) {
    return horizontal_pass(image, precompute(image.width, width, resample), width, 0, image.height);
  }
  const Coefficients cv = precompute(image.height, height, resample);
  if (!need_h) return vertical_pass(image, cv, height, 0);
  // Horizontal first, over the source rows the vertical pass reads.
  const int row_begin = cv.first.front();
  const int row_end = cv.first.back() + cv.count.back();
  const Rgb8Image tmp =
      horizontal_pass(image, precompute(image.width, width, resample), width, row_begin, row_end);
  return vertical_pass(tmp, cv, height, row_begin);
}

}  // namespace mlab::image
