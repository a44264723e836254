#pragma once
// Readers for the keys of Hugging Face preprocessor_config.json files shared by the image
// processors (internal to models/image). Every reader leaves its output untouched when the key is
// absent or null and throws mlab::Error "preprocessor_config: <key>: ..." for a malformed value.
#include <nlohmann/json.hpp>
#include <string_view>

#include "models/image/image_ops.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image::detail {

void read_bool(const nlohmann::json& config, std::string_view key, bool& out);
void read_int(const nlohmann::json& config, std::string_view key, int64_t& out);
// "resample": a PIL code (2 or 3).
void read_resample(const nlohmann::json& config, Resample& out);
// "do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std" (a number or a list of
// 3).
void read_normalize(const nlohmann::json& config, NormalizeOptions& out);
// "crop_size": an int (square) or {"height": h, "width": w}.
void read_crop_size(const nlohmann::json& config, int64_t& height, int64_t& width);
// "size": an int or {"shortest_edge": n}; other forms are rejected naming their keys.
void read_shortest_edge(const nlohmann::json& config, int64_t& shortest_edge);

// The CLIP-style keys both CLIP and LLaVA-NeXT processors take: do_resize, size, resample,
// do_center_crop, crop_size and the normalisation keys, into the same-named option fields.
template <class Options>
void read_resize_crop_normalize(const nlohmann::json& config, Options& o) {
  read_bool(config, "do_resize", o.do_resize);
  read_shortest_edge(config, o.shortest_edge);
  read_resample(config, o.resample);
  read_bool(config, "do_center_crop", o.do_center_crop);
  read_crop_size(config, o.crop_height, o.crop_width);
  read_normalize(config, o.normalize);
}

}  // namespace mlab::image::detail
