#include "models/image/qwen2_vl_image_processor.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "models/image/preprocessor_config.hpp"

namespace mlab::image {

Qwen2VlImageProcessorOptions Qwen2VlImageProcessorOptions::from_preprocessor_config(
    const nlohmann::json& config) {
  Qwen2VlImageProcessorOptions o;
  if (config.is_object() && config.contains("size") && !config["size"].is_null()) {
    const nlohmann::json& size = config["size"];
    MLAB_CHECK(size.is_object(),
               "preprocessor_config: size: expected {\"shortest_edge\", "
               "\"longest_edge\"}, got ",
               size.dump());
    detail::read_int(size, "shortest_edge", o.min_pixels);
    detail::read_int(size, "longest_edge", o.max_pixels);
  }
  detail::read_int(config, "min_pixels", o.min_pixels);
  detail::read_int(config, "max_pixels", o.max_pixels);
  detail::read_bool(config, "do_resize", o.do_resize);
  detail::read_resample(config, o.resample);
  detail::read_normalize(config, o.normalize);
  detail::read_int(config, "patch_size", o.patch_size);
  detail::read_int(config, "temporal_patch_size", o.temporal_patch_size);
  detail::read_int(config, "merge_size", o.merge_size);
  return o;
}

std::array<int64_t, 2> smart_resize(int64_t height, int64_t width, int64_t factor,
                                    int64_t min_pixels, int64_t max_pixels) {
  MLAB_CHECK(height > 0 && width > 0 && factor > 0, "smart_resize: sizes must be positive, got ",
             width, "x", height, " (factor ", factor, ")");
  const double h = static_cast<double>(height), w = static_cast<double>(width);
  const double f = static_cast<double>(factor);
  const double ratio = std::max(h, w) / std::min(h, w);
  MLAB_CHECK(ratio <= 200, "smart_resize: absolute aspect ratio must be smaller than 200, got ",
             ratio, " for a ", width, "x", height, " image");
  // Python round() rounds half to even: std::nearbyint in the default rounding mode.
  int64_t h_bar = static_cast<int64_t>(std::nearbyint(h / f)) * factor;
  int64_t w_bar = static_cast<int64_t>(std::nearbyint(w / f)) * factor;
  if (h_bar * w_bar > max_pixels) {
    const double beta =
        std::sqrt(static_cast<double>(height * width) / static_cast<double>(max_pixels));
    h_bar = std::max(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
    w_bar = std::max(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta =
        std::sqrt(static_cast<double>(min_pixels) / static_cast<double>(height * width));
    h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
    w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
  }
  return {h_bar, w_bar};
}

Qwen2VlImageProcessor::Qwen2VlImageProcessor(Qwen2VlImageProcessorOptions options)
    : options_(std::move(options)) {
  const Qwen2VlImageProcessorOptions& o = options_;
  MLAB_CHECK(o.patch_size > 0 && o.temporal_patch_size > 0 && o.merge_size > 0, name(),
             ": patch_size, temporal_patch_size and merge_size must be positive (", o.patch_size,
             ", ", o.temporal_patch_size, ", ", o.merge_size, ")");
  MLAB_CHECK(o.min_pixels > 0 && o.max_pixels >= o.min_pixels, name(),
             ": need 0 < min_pixels <= max_pixels, got ", o.min_pixels, " and ", o.max_pixels);
}

std::vector<Rgb8Image> Qwen2VlImageProcessor::resized(const Rgb8Image& image) const {
  MLAB_CHECK(image.width > 0 && image.height > 0, name(), ": empty image (", image.width, "x",
             image.height, ")");
  const Qwen2VlImageProcessorOptions& o = options_;
  if (!o.do_resize) return {image};
  const int64_t factor = o.patch_size * o.merge_size;
  MLAB_CHECK(o.variant != ProcessorVariant::kTransformers4_51 ||
                 (image.height >= factor && image.width >= factor),
             name(), ": height:", image.height, " and width:", image.width,
             " must be larger than factor:", factor, " (transformers 4.51's smart_resize)");
  const auto [h, w] = smart_resize(image.height, image.width, factor, o.min_pixels, o.max_pixels);
  return {pil_resize(image, w, h, o.resample, o.pass_order)};
}

ProcessedImages Qwen2VlImageProcessor::preprocess(std::span<const Rgb8Image> images) const {
  const Qwen2VlImageProcessorOptions& o = options_;
  const int64_t p = o.patch_size, m = o.merge_size, t = o.temporal_patch_size;
  const int64_t row_size = 3 * t * p * p;
  ProcessedImages out;
  int64_t rows = 0;
  std::vector<float> chw;
  for (std::size_t b = 0; b < images.size(); ++b) {
    Rgb8Image r;
    try {
      r = std::move(resized(images[b]).front());
    } catch (const Error& e) {
      throw Error(str_cat("image ", b, ": ", e.what()));
    }
    MLAB_CHECK(r.height % (p * m) == 0 && r.width % (p * m) == 0, name(), ": image ", b, " is ",
               r.width, "x", r.height, ", not a multiple of patch_size * merge_size = ", p * m);
    chw.clear();
    append_normalized_chw(r, o.normalize, chw);
    const int64_t gh = r.height / p, gw = r.width / p, plane = r.height * r.width;
    out.pixel_values.resize(static_cast<std::size_t>((rows + gh * gw) * row_size));
    float* dst = out.pixel_values.data() + rows * row_size;
    for (int64_t bh = 0; bh < gh / m; ++bh) {
      for (int64_t bw = 0; bw < gw / m; ++bw) {
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < m; ++j) {
            const int64_t y0 = (bh * m + i) * p, x0 = (bw * m + j) * p;
            for (int64_t c = 0; c < 3; ++c) {
              for (int64_t f = 0; f < t; ++f) {
                for (int64_t py = 0; py < p; ++py) {
                  const float* src = chw.data() + c * plane + (y0 + py) * r.width + x0;
                  dst = std::copy(src, src + p, dst);
                }
              }
            }
          }
        }
      }
    }
    rows += gh * gw;
    out.image_grid_thw.insert(out.image_grid_thw.end(), {1, gh, gw});
  }
  out.shape = {rows, row_size};
  return out;
}

}  // namespace mlab::image
