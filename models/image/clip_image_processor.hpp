#pragma once
// CLIPImageProcessor (LLaVA-1.5): resize the shortest edge to `shortest_edge` (long edge
// int(shortest_edge * long / short)), centre crop, rescale, normalise (models.md §4.2). With
// do_pad_to_square it is LlavaImageProcessor(do_pad=True): LLaVA's expand2square with the
// mean colour first (the original LLaVA-1.5 evaluation, `image_aspect_ratio: pad`).
#include <nlohmann/json_fwd.hpp>

#include "models/image/image_ops.hpp"
#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image {

struct ClipImageProcessorOptions {
  bool do_pad_to_square = false;  // LlavaImageProcessor "do_pad"
  bool do_resize = true;
  int64_t shortest_edge = 336;  // "size": {"shortest_edge": N}
  Resample resample = Resample::kBicubic;
  bool do_center_crop = true;
  int64_t crop_height = 336;  // "crop_size"
  int64_t crop_width = 336;
  NormalizeOptions normalize;
  PillowPassOrder pass_order = PillowPassOrder::kPillow13;

  // From a preprocessor_config.json object: reads the keys above under their Hugging Face names
  // and ignores the others (metadata such as "image_processor_type"). Throws mlab::Error naming
  // the key for a malformed value or an unsupported "size" form.
  static ClipImageProcessorOptions from_preprocessor_config(const nlohmann::json& config);
};

// (height, width) after resizing (height, width) so the shortest edge is `shortest_edge`
// (transformers get_resize_output_image_size with default_to_square=False).
std::array<int64_t, 2> shortest_edge_size(int64_t height, int64_t width, int64_t shortest_edge);

class ClipImageProcessor final : public ImageProcessor {
 public:
  explicit ClipImageProcessor(ClipImageProcessorOptions options = {});

  std::string_view name() const override {
    return options_.do_pad_to_square ? "LlavaImageProcessor" : "CLIPImageProcessor";
  }
  std::vector<Rgb8Image> resized(const Rgb8Image& image) const override;
  // pixel_values f32 [B, 3, crop_height, crop_width].
  ProcessedImages preprocess(std::span<const Rgb8Image> images) const override;

  // The single uint8 image behind resized() (resize + centre crop, after the optional padding).
  Rgb8Image transform(const Rgb8Image& image) const;

  const ClipImageProcessorOptions& options() const { return options_; }

 private:
  ClipImageProcessorOptions options_;
};

}  // namespace mlab::image
