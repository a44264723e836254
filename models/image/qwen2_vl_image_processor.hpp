#pragma once
// Qwen2VLImageProcessor (Qwen2-VL / Qwen2.5-VL; models.md §4.4): smart_resize to multiples of
// patch_size * merge_size within [min_pixels, max_pixels], rescale, normalise, then flatten into
// rows of 3 * temporal_patch_size * patch_size^2 values, one row per patch, patches ordered by
// merge block: (block row, block col, row in block, col in block); inside a row [C][T][py][px],
// the single frame repeated temporal_patch_size times.
#include <array>
#include <nlohmann/json_fwd.hpp>

#include "models/image/image_ops.hpp"
#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image {

struct Qwen2VlImageProcessorOptions {
  bool do_resize = true;
  int64_t min_pixels = 56 * 56;   // "min_pixels" / "size.shortest_edge"
  int64_t max_pixels = 12845056;  // "max_pixels" / "size.longest_edge" (Qwen2.5-VL-7B-Instruct)
  Resample resample = Resample::kBicubic;
  NormalizeOptions normalize;
  int64_t patch_size = 14;
  int64_t temporal_patch_size = 2;
  int64_t merge_size = 2;
  PillowPassOrder pass_order = PillowPassOrder::kPillow13;
  // kTransformers4_51: smart_resize rejects a side shorter than patch_size * merge_size, as 4.51
  // did (5.x resizes such images up). Not a config key.
  ProcessorVariant variant = ProcessorVariant::kTransformers5;

  // From a preprocessor_config.json object: "min_pixels"/"max_pixels" override
  // "size": {"shortest_edge", "longest_edge"} as in transformers' __init__; other keys as
  // ClipImageProcessorOptions::from_preprocessor_config.
  static Qwen2VlImageProcessorOptions from_preprocessor_config(const nlohmann::json& config);
};

// transformers' smart_resize: (height, width) rounded (half to even) to multiples of `factor`,
// then rescaled to stay within [min_pixels, max_pixels]. Throws mlab::Error when the aspect ratio
// exceeds 200 or a size is not positive.
std::array<int64_t, 2> smart_resize(int64_t height, int64_t width, int64_t factor,
                                    int64_t min_pixels, int64_t max_pixels);

class Qwen2VlImageProcessor final : public ImageProcessor {
 public:
  explicit Qwen2VlImageProcessor(Qwen2VlImageProcessorOptions options = {});

  std::string_view name() const override { return "Qwen2VLImageProcessor"; }
  // The resized image (one).
  std::vector<Rgb8Image> resized(const Rgb8Image& image) const override;
  // pixel_values f32 [sum_b gh_b * gw_b, 3 * temporal * patch^2]; image_grid_thw i64 [B, 3].
  ProcessedImages preprocess(std::span<const Rgb8Image> images) const override;

  const Qwen2VlImageProcessorOptions& options() const { return options_; }

 private:
  Qwen2VlImageProcessorOptions options_;
};

}  // namespace mlab::image
