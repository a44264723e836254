#include "models/image/clip_image_processor.hpp"

#include <string>

#include "core/error.hpp"
#include "models/image/preprocessor_config.hpp"

namespace mlab::image {

ClipImageProcessorOptions ClipImageProcessorOptions::from_preprocessor_config(
    const nlohmann::json& config) {
  ClipImageProcessorOptions o;
  detail::read_bool(config, "do_pad", o.do_pad_to_square);
  detail::read_resize_crop_normalize(config, o);
  return o;
}

std::array<int64_t, 2> shortest_edge_size(int64_t height, int64_t width, int64_t shortest_edge) {
  MLAB_CHECK(height > 0 && width > 0 && shortest_edge > 0,
             "shortest_edge_size: sizes must be positive, got ", width, "x", height,
             " and shortest edge ", shortest_edge);
  const int64_t short_side = std::min(height, width);
  const int64_t long_side = std::max(height, width);
  // Python: int(size * long / short), a float64 division then truncation.
  const auto new_long = static_cast<int64_t>(static_cast<double>(shortest_edge * long_side) /
                                             static_cast<double>(short_side));
  if (width <= height) return {new_long, shortest_edge};
  return {shortest_edge, new_long};
}

ClipImageProcessor::ClipImageProcessor(ClipImageProcessorOptions options)
    : options_(std::move(options)) {
  MLAB_CHECK(options_.shortest_edge > 0 && options_.crop_height > 0 && options_.crop_width > 0,
             name(), ": size and crop_size must be positive (shortest_edge ",
             options_.shortest_edge, ", crop ", options_.crop_height, "x", options_.crop_width,
             ")");
}

Rgb8Image ClipImageProcessor::transform(const Rgb8Image& image) const {
  MLAB_CHECK(image.width > 0 && image.height > 0, name(), ": empty image (", image.width, "x",
             image.height, ")");
  Rgb8Image out = options_.do_pad_to_square
                      ? pad_to_square(image, mean_fill_color(options_.normalize.mean))
                      : image;
  if (options_.do_resize) {
    const auto [h, w] = shortest_edge_size(out.height, out.width, options_.shortest_edge);
    out = pil_resize(out, w, h, options_.resample, options_.pass_order);
  }
  if (options_.do_center_crop) out = center_crop(out, options_.crop_width, options_.crop_height);
  return out;
}

std::vector<Rgb8Image> ClipImageProcessor::resized(const Rgb8Image& image) const {
  return {transform(image)};
}

ProcessedImages ClipImageProcessor::preprocess(std::span<const Rgb8Image> images) const {
  ProcessedImages out;
  int64_t height = -1, width = -1;
  for (std::size_t b = 0; b < images.size(); ++b) {
    Rgb8Image t;
    try {
      t = transform(images[b]);
    } catch (const Error& e) {
      throw Error(str_cat("image ", b, ": ", e.what()));
    }
    if (b == 0) {
      height = t.height;
      width = t.width;
    }
    MLAB_CHECK(t.height == height && t.width == width, name(), ": image ", b, " became ", t.width,
               "x", t.height, " but image 0 became ", width, "x", height,
               " (enable center crop to batch images of different shapes)");
    append_normalized_chw(t, options_.normalize, out.pixel_values);
  }
  out.shape = {static_cast<int64_t>(images.size()), 3, std::max<int64_t>(height, 0),
               std::max<int64_t>(width, 0)};
  return out;
}

}  // namespace mlab::image
