#include "models/image/llava_next_image_processor.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "models/image/clip_image_processor.hpp"
#include "models/image/preprocessor_config.hpp"

namespace mlab::image {

LlavaNextImageProcessorOptions LlavaNextImageProcessorOptions::from_preprocessor_config(
    const nlohmann::json& config) {
  LlavaNextImageProcessorOptions o;
  if (config.is_object() && config.contains("image_grid_pinpoints") &&
      !config["image_grid_pinpoints"].is_null()) {
    const nlohmann::json& pins = config["image_grid_pinpoints"];
    MLAB_CHECK(pins.is_array() && !pins.empty(),
               "preprocessor_config: image_grid_pinpoints: expected a non-empty list of "
               "[height, width], got ",
               pins.dump());
    o.image_grid_pinpoints.clear();
    for (const nlohmann::json& p : pins) {
      MLAB_CHECK(p.is_array() && p.size() == 2 && p[0].is_number_integer() &&
                     p[1].is_number_integer() && p[0].get<int64_t>() > 0 && p[1].get<int64_t>() > 0,
                 "preprocessor_config: image_grid_pinpoints: expected [height, width] with "
                 "positive integers, got ",
                 p.dump());
      o.image_grid_pinpoints.push_back({p[0].get<int64_t>(), p[1].get<int64_t>()});
    }
  }
  detail::read_resize_crop_normalize(config, o);
  detail::read_bool(config, "do_pad", o.do_pad);
  return o;
}

std::array<int64_t, 2> select_best_resolution(
    int64_t height, int64_t width, const std::vector<std::array<int64_t, 2>>& pinpoints) {
  MLAB_CHECK(height > 0 && width > 0, "select_best_resolution: image size must be positive, got ",
             width, "x", height);
  MLAB_CHECK(!pinpoints.empty(), "select_best_resolution: no image_grid_pinpoints");
  std::array<int64_t, 2> best{0, 0};
  int64_t max_effective = 0;
  double min_wasted = std::numeric_limits<double>::infinity();
  for (const auto& [h, w] : pinpoints) {
    const double scale = std::min(static_cast<double>(w) / static_cast<double>(width),
                                  static_cast<double>(h) / static_cast<double>(height));
    const auto dw = static_cast<int64_t>(static_cast<double>(width) * scale);
    const auto dh = static_cast<int64_t>(static_cast<double>(height) * scale);
    const int64_t effective = std::min(dw * dh, width * height);
    const auto wasted = static_cast<double>(w * h - effective);
    if (effective > max_effective || (effective == max_effective && wasted < min_wasted)) {
      max_effective = effective;
      min_wasted = wasted;
      best = {h, w};
    }
  }
  MLAB_CHECK(best[0] > 0, "select_best_resolution: no pinpoint fits a ", width, "x", height,
             " image");
  return best;
}

std::array<int64_t, 2> patch_output_size(int64_t height, int64_t width, int64_t target_height,
                                         int64_t target_width) {
  const double scale_w = static_cast<double>(target_width) / static_cast<double>(width);
  const double scale_h = static_cast<double>(target_height) / static_cast<double>(height);
  if (scale_w < scale_h) {
    const auto h = static_cast<int64_t>(std::ceil(static_cast<double>(height) * scale_w));
    return {std::min(h, target_height), target_width};
  }
  const auto w = static_cast<int64_t>(std::ceil(static_cast<double>(width) * scale_h));
  return {target_height, std::min(w, target_width)};
}

LlavaNextImageProcessor::LlavaNextImageProcessor(LlavaNextImageProcessorOptions options)
    : options_(std::move(options)) {
  MLAB_CHECK(options_.shortest_edge > 0 && options_.crop_height > 0 && options_.crop_width > 0,
             name(), ": size and crop_size must be positive (shortest_edge ",
             options_.shortest_edge, ", crop ", options_.crop_height, "x", options_.crop_width,
             ")");
  MLAB_CHECK(!options_.image_grid_pinpoints.empty(), name(), ": image_grid_pinpoints is empty");
}

std::vector<Rgb8Image> LlavaNextImageProcessor::resized(const Rgb8Image& image) const {
  MLAB_CHECK(image.width > 0 && image.height > 0, name(), ": empty image (", image.width, "x",
             image.height, ")");
  const LlavaNextImageProcessorOptions& o = options_;
  const auto [best_h, best_w] =
      select_best_resolution(image.height, image.width, o.image_grid_pinpoints);
  const auto [new_h, new_w] = patch_output_size(image.height, image.width, best_h, best_w);
  const int64_t pad_x = (best_w - new_w) / 2, pad_y = (best_h - new_h) / 2;
  // 5.x pads the odd pixel after the image; 4.51 pads (pad, pad): one pixel short.
  const bool v4 = o.variant == ProcessorVariant::kTransformers4_51;
  const int64_t canvas_w = v4 ? new_w + 2 * pad_x : best_w;
  const int64_t canvas_h = v4 ? new_h + 2 * pad_y : best_h;
  Rgb8Image canvas = filled_rgb8_image(canvas_w, canvas_h);  // black padding (np.pad with 0)
  paste(canvas, pil_resize(image, new_w, new_h, o.resample, o.pass_order), pad_x, pad_y);

  std::vector<Rgb8Image> tiles;
  tiles.push_back(pil_resize(image, o.shortest_edge, o.shortest_edge, o.resample, o.pass_order));
  // divide_to_patches: crop_height x crop_width windows, the last row/column possibly smaller.
  for (int64_t y = 0; y < canvas_h; y += o.crop_height) {
    for (int64_t x = 0; x < canvas_w; x += o.crop_width) {
      tiles.push_back(crop(canvas, x, y, std::min(o.crop_width, canvas_w - x),
                           std::min(o.crop_height, canvas_h - y)));
    }
  }
  for (Rgb8Image& tile : tiles) {
    if (o.do_resize) {
      const auto [h, w] = shortest_edge_size(tile.height, tile.width, o.shortest_edge);
      tile = pil_resize(tile, w, h, o.resample, o.pass_order);
    }
    if (o.do_center_crop) tile = center_crop(tile, o.crop_width, o.crop_height);
  }
  return tiles;
}

ProcessedImages LlavaNextImageProcessor::preprocess(std::span<const Rgb8Image> images) const {
  std::vector<std::vector<float>> per_image;
  int64_t max_tiles = 0, tile_h = -1, tile_w = -1;
  ProcessedImages out;
  for (std::size_t b = 0; b < images.size(); ++b) {
    std::vector<Rgb8Image> tiles;
    try {
      tiles = resized(images[b]);
    } catch (const Error& e) {
      throw Error(str_cat("image ", b, ": ", e.what()));
    }
    std::vector<float> values;
    for (const Rgb8Image& tile : tiles) {
      if (tile_h < 0) {
        tile_h = tile.height;
        tile_w = tile.width;
      }
      MLAB_CHECK(tile.height == tile_h && tile.width == tile_w, name(), ": image ", b, " has a ",
                 tile.width, "x", tile.height, " tile but the first tile is ", tile_w, "x", tile_h,
                 " (enable center crop)");
      append_normalized_chw(tile, options_.normalize, values);
    }
    max_tiles = std::max<int64_t>(max_tiles, static_cast<int64_t>(tiles.size()));
    per_image.push_back(std::move(values));
    out.image_sizes.push_back(images[b].height);
    out.image_sizes.push_back(images[b].width);
  }
  const std::size_t tile_values =
      static_cast<std::size_t>(3 * std::max<int64_t>(tile_h, 0) * std::max<int64_t>(tile_w, 0));
  for (std::size_t b = 0; b < per_image.size(); ++b) {
    MLAB_CHECK(options_.do_pad || per_image[b].size() == max_tiles * tile_values, name(),
               ": images have different tile counts and do_pad is false (image ", b, ")");
    out.pixel_values.insert(out.pixel_values.end(), per_image[b].begin(), per_image[b].end());
    out.pixel_values.resize((b + 1) * max_tiles * tile_values, 0.0f);
  }
  out.shape = {static_cast<int64_t>(images.size()), max_tiles, 3, std::max<int64_t>(tile_h, 0),
               std::max<int64_t>(tile_w, 0)};
  return out;
}

}  // namespace mlab::image
