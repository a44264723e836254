#pragma once
// Pillow's Image.resize for 8-bit RGB images with the BILINEAR and BICUBIC filters, bit for bit
// (Pillow libImaging/Resample.c, re-derived; ../shared/specs/models.md §4.1):
//   - separable: one 1-D pass per axis whose size changes; each pass rounds to uint8;
//   - per output sample o: centre c = (o + 0.5) * in/out, support = filter_support * max(in/out, 1)
//     (the filter is stretched when downscaling: antialiasing), taps [int(c - support + 0.5),
//     int(c + support + 0.5)) clipped to the input, weights filter((i - c + 0.5) / max(in/out, 1))
//     normalised to sum 1, then quantised to 22 fractional bits (round half away from zero);
//   - accumulation: 2^21 + sum(pixel * weight) in int32, result clamp(acc >> 22, 0, 255).
// The pass order changed between Pillow versions (PillowPassOrder); the intermediate rounding
// makes the orders differ by a level here and there.
#include <cstdint>

#include "models/image/rgb8_image.hpp"

namespace mlab::image {

// PIL.Image.Resampling values of the filters supported here.
enum class Resample : int {
  kBilinear = 2,  // triangle, support 1
  kBicubic = 3,   // Keys cubic a = -0.5, support 2
};

// The resampling filter with PIL's integer code `code` (2 or 3, as "resample" in
// preprocessor_config.json). Throws mlab::Error naming the code for NEAREST (0), LANCZOS (1),
// BOX (4), HAMMING (5) and unknown codes.
Resample resample_from_pil_code(int code);

// Which pass runs first when both axes change.
enum class PillowPassOrder {
  // Pillow >= 13.0: vertical first iff (H_in - H_out) > 0 and (H_in - H_out) > 2 (W_in - W_out).
  kPillow13,
  // Pillow 12.2-12.3: vertical first iff H_in > 100 W_in and H_out < H_in.
  kPillow12_2,
  // Pillow <= 12.1 (the authors' Pillow 10.4): always horizontal first.
  kHorizontalFirst,
};

// `image` resized to `width` x `height` as Pillow's `Image.resize((width, height), resample)`
// (no box, no reducing_gap) does for a mode "RGB" image. The same size returns a copy.
// Throws mlab::Error when a target size is not positive or the image is empty.
Rgb8Image pil_resize(const Rgb8Image& image, int64_t width, int64_t height, Resample resample,
                     PillowPassOrder order = PillowPassOrder::kPillow13);

}  // namespace mlab::image
