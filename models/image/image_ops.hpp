#pragma once
// uint8 image operations of transformers' PIL backend (image_transforms.py, image_processing_*
// _pil_*.py of transformers 5.24) and the float conversion that ends every image processor
// (../shared/specs/models.md §4.1): x = f32(f64(u8) * rescale_factor); y = (x - f32(mean)) /
// f32(std).
#include <array>
#include <cstdint>
#include <vector>

#include "models/image/rgb8_image.hpp"

namespace mlab::image {

// OPENAI_CLIP_MEAN / OPENAI_CLIP_STD (image_utils.py), used by all three processors.
inline constexpr std::array<double, 3> kOpenaiClipMean = {0.48145466, 0.4578275, 0.40821073};
inline constexpr std::array<double, 3> kOpenaiClipStd = {0.26862954, 0.26130258, 0.27577711};

// Rescale and normalise, in the processors' order ("do_rescale", "rescale_factor",
// "do_normalize", "image_mean", "image_std" of preprocessor_config.json).
struct NormalizeOptions {
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;  // 0.00392156862745098, as the configs spell it
  bool do_normalize = true;
  std::array<double, 3> mean = kOpenaiClipMean;  // cast to f32 before use, as numpy does
  std::array<double, 3> std = kOpenaiClipStd;
};

// Appends `image` as f32 [3, height, width] (CHW) to `out`, rescaled and normalised exactly as
// PilBackend.rescale + normalize (bit-identical floats).
void append_normalized_chw(const Rgb8Image& image, const NormalizeOptions& options,
                           std::vector<float>& out);

// The f32 value append_normalized_chw produces for channel `channel` of a pixel with value `v`.
float normalize_value(uint8_t v, int channel, const NormalizeOptions& options);

// The `width` x `height` window at (left, top); throws mlab::Error unless it lies inside the image.
Rgb8Image crop(const Rgb8Image& image, int64_t left, int64_t top, int64_t width, int64_t height);

// Copies `image` into `canvas` with its top-left corner at (left, top); throws mlab::Error unless
// it fits.
void paste(Rgb8Image& canvas, const Rgb8Image& image, int64_t left, int64_t top);

// transformers' image_transforms.center_crop: the window at top = (H - h) // 2,
// left = (W - w) // 2 (floor division); an image smaller than the window on a side is first
// centred on a zero canvas (offset ceil((h - H) / 2)), so the result is always width x height.
Rgb8Image center_crop(const Rgb8Image& image, int64_t width, int64_t height);

// LLaVA's expand2square (LlavaImageProcessor.pad_to_square): a max(W, H) square filled with
// `fill`, the image pasted at ((S - W) // 2, (S - H) // 2). Square images are returned as is.
Rgb8Image pad_to_square(const Rgb8Image& image, std::array<uint8_t, 3> fill);

// The pad colour of pad_to_square in LLaVA: int(mean_c * 255) per channel, (122, 116, 104) for
// the CLIP mean.
std::array<uint8_t, 3> mean_fill_color(const std::array<double, 3>& mean);

}  // namespace mlab::image
