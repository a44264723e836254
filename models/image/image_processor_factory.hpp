#pragma once
// The image processor a model directory asks for: `image_processor_type` of its
// preprocessor_config.json (or of the "image_processor" object of a transformers-5
// processor_config.json), with the "Fast" / "Pil" backend suffixes ignored.
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image {

// CLIPImageProcessor, LlavaImageProcessor (pad to square), LlavaNextImageProcessor,
// Qwen2VLImageProcessor / Qwen2_5_VLImageProcessor. `pass_order` picks the Pillow version whose
// resize to reproduce. Throws mlab::Error naming `source` and the supported types otherwise.
std::unique_ptr<ImageProcessor> make_image_processor(
    const nlohmann::json& config, const std::string& source,
    PillowPassOrder pass_order = PillowPassOrder::kPillow13);

// Reads <dir>/preprocessor_config.json, else the "image_processor" of <dir>/processor_config.json.
// Throws mlab::Error naming the directory when neither exists or the JSON is invalid.
std::unique_ptr<ImageProcessor> load_image_processor(
    const std::filesystem::path& dir, PillowPassOrder pass_order = PillowPassOrder::kPillow13);

// "13" | "12.2" | "12.1" (Pillow version whose pass order to use; "12.1" also covers older).
PillowPassOrder parse_pillow_pass_order(const std::string& version);

}  // namespace mlab::image
