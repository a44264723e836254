#pragma once
// ImageProcessor: one small interface over the three Hugging Face image processors the paper's
// checkpoints use (CLIP / LLaVA-NeXT any-resolution / Qwen2-VL), re-implemented from the PIL
// backend of transformers 5.24 (`CLIPImageProcessorPil`, `LlavaImageProcessorPil`,
// `LlavaNextImageProcessorPil`, `Qwen2VLImageProcessorPil`); ../shared/specs/models.md §4. The
// slow processors of transformers 4.51 (the paper's) are a ProcessorVariant of the same classes.
// Outputs are plain float vectors with shapes; the Torch side wraps them (from_blob + clone).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/image/rgb8_image.hpp"

namespace mlab::image {

// Which transformers release's image processors to reproduce (`--processor`;
// docs/image-processors.md).
enum class ProcessorVariant {
  // transformers 5.x, PIL backend (`...ImageProcessorPil` of 5.24): the default.
  kTransformers5,
  // transformers 4.51's slow (numpy + PIL) processors, with which the paper's numbers were
  // produced (the authors' requirements.txt; its AutoImageProcessor defaults to them). Differs
  // from 5.x in LLaVA-NeXT only, plus one rejection in Qwen2-VL:
  //   - LLaVA-NeXT pads the aspect-kept resize by ((H - h) // 2, (W - w) // 2) on BOTH sides, so
  //     an odd difference leaves the canvas one pixel short of the pinpoint; the short last
  //     row/column of tiles is then resized back to full size (shortest edge, e.g. 335 -> 336 and
  //     336 -> 337) and centre-cropped. 5.x pads the odd pixel after the image.
  //   - Qwen2-VL's smart_resize rejects a side shorter than patch_size * merge_size.
  // CLIP / LLaVA (pad to square) are identical. The Pillow of that environment is 10.4
  // (PillowPassOrder::kHorizontalFirst): default_pass_order() in image_processor_factory.hpp.
  kTransformers4_51,
};

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
