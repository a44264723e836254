#pragma once
// ImageProcessor: one small interface over the three Hugging Face image processors the paper's
// checkpoints use (CLIP / LLaVA-NeXT any-resolution / Qwen2-VL), re-implemented from the PIL
// backend of transformers 5.24 (`CLIPImageProcessorPil`, `LlavaImageProcessorPil`,
// `LlavaNextImageProcessorPil`, `Qwen2VLImageProcessorPil`); ../shared/specs/models.md §4.
// Outputs are plain float vectors with shapes; the Torch side wraps them (from_blob + clone).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/image/rgb8_image.hpp"

namespace mlab::image {

// The processor's `BatchFeature`, flattened row-major.
struct ProcessedImages {
  std::vector<float> pixel_values;  // f32, shape `shape`
  // CLIP: [B, 3, crop_h, crop_w]; LLaVA-NeXT: [B, P_max, 3, crop_h, crop_w] (zero tiles pad
  // images with fewer tiles); Qwen2-VL: [sum_b t*gh*gw, 3 * temporal * patch * patch].
  std::vector<int64_t> shape;
  std::vector<int64_t> image_sizes;  // LLaVA-NeXT: i64 [B, 2] original (height, width); else empty
  std::vector<int64_t> image_grid_thw;  // Qwen2-VL: i64 [B, 3] (1, gh, gw); else empty
};

class ImageProcessor {
 public:
  virtual ~ImageProcessor() = default;

  // The transformers class this reproduces ("CLIPImageProcessor", ...).
  virtual std::string_view name() const = 0;

  // The uint8 images that `preprocess` rescales and normalises for `image`, in output order:
  // CLIP one crop; LLaVA-NeXT the base image then the grid tiles (row-major); Qwen2-VL the
  // resized image. Throws mlab::Error for an empty image or one the processor rejects.
  virtual std::vector<Rgb8Image> resized(const Rgb8Image& image) const = 0;

  // The processor's outputs for a batch; errors are prefixed with the image's batch index.
  virtual ProcessedImages preprocess(std::span<const Rgb8Image> images) const = 0;
};

}  // namespace mlab::image
