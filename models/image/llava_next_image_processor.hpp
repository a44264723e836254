#pragma once
// LlavaNextImageProcessor (LLaVA-NeXT any resolution; models.md §4.3 and §2.4):
//   best (h, w) = select_best_resolution over image_grid_pinpoints;
//   the image resized (aspect kept, get_patch_output_size) and centred on a black best-size canvas;
//   tiles = [image resized to shortest_edge x shortest_edge (aspect NOT kept)] + the canvas cut
//   into crop_height x crop_width tiles, row-major; each tile then goes through the CLIP steps
//   (shortest-edge resize, centre crop: no-ops for the usual configs), rescale and normalise.
// The unpadding of the tile features happens model side (models.md §2.4), not here.
// ProcessorVariant::kTransformers4_51 (transformers 4.51's slow processor) instead pads by
// ((best_h - h) // 2, (best_w - w) // 2) on both sides (np.pad), so an odd difference leaves the
// canvas one pixel short of the pinpoint; its last tile row/column is then crop_size - 1 wide and
// the CLIP steps resize it to full size (e.g. 336 x 335 -> 337 x 336) and centre-crop it.
#include <array>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "models/image/image_ops.hpp"
#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image {

struct LlavaNextImageProcessorOptions {
  // (height, width) candidates, in config order (ties go to the first).
  std::vector<std::array<int64_t, 2>> image_grid_pinpoints = {
      {336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
  bool do_resize = true;
  int64_t shortest_edge = 336;  // "size": {"shortest_edge": N}; the base tile is N x N
  Resample resample = Resample::kBicubic;
  bool do_center_crop = true;
  int64_t crop_height = 336;  // "crop_size": also the tile size of the grid
  int64_t crop_width = 336;
  NormalizeOptions normalize;
  bool do_pad = true;  // zero tiles so that every image of a batch has P_max tiles
  PillowPassOrder pass_order = PillowPassOrder::kPillow13;
  ProcessorVariant variant = ProcessorVariant::kTransformers5;  // not a config key

  // From a preprocessor_config.json object (see
  // ClipImageProcessorOptions::from_preprocessor_config).
  static LlavaNextImageProcessorOptions from_preprocessor_config(const nlohmann::json& config);
};

// transformers' select_best_resolution: the pinpoint maximising the effective resolution
// min(int(W s) * int(H s), W H), s = min(w / W, h / H), then minimising the wasted area.
// Returns (height, width). Throws mlab::Error for an empty list or a non-positive size.
std::array<int64_t, 2> select_best_resolution(int64_t height, int64_t width,
                                              const std::vector<std::array<int64_t, 2>>& pinpoints);

// transformers' get_patch_output_size: (height, width) of the image scaled to fit
// (target_height, target_width) with its aspect ratio (one side exact, the other ceil'ed).
std::array<int64_t, 2> patch_output_size(int64_t height, int64_t width, int64_t target_height,
                                         int64_t target_width);

class LlavaNextImageProcessor final : public ImageProcessor {
 public:
  explicit LlavaNextImageProcessor(LlavaNextImageProcessorOptions options = {});

  std::string_view name() const override { return "LlavaNextImageProcessor"; }
  // The base tile, then the grid tiles row-major (1 + gh * gw images).
  std::vector<Rgb8Image> resized(const Rgb8Image& image) const override;
  // pixel_values f32 [B, P_max, 3, crop_height, crop_width]; image_sizes i64 [B, 2] (H, W).
  ProcessedImages preprocess(std::span<const Rgb8Image> images) const override;

  const LlavaNextImageProcessorOptions& options() const { return options_; }

 private:
  LlavaNextImageProcessorOptions options_;
};

}  // namespace mlab::image
