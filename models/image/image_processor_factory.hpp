#pragma once
// The image processor a model directory asks for: `image_processor_type` of its
// preprocessor_config.json (or of the "image_processor" object of a transformers-5
// processor_config.json), with the "Fast" / "Pil" backend suffixes ignored.
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"

namespace mlab::image {

// CLIPImageProcessor, LlavaImageProcessor (pad to square), LlavaNextImageProcessor,
// Qwen2VLImageProcessor / Qwen2_5_VLImageProcessor. `pass_order` picks the Pillow version whose
// resize to reproduce, `variant` the transformers release whose processing to follow. Throws
// mlab::Error naming `source` and the supported types otherwise.
std::unique_ptr<ImageProcessor> make_image_processor(
    const nlohmann::json& config, const std::string& source,
    PillowPassOrder pass_order = PillowPassOrder::kPillow13,
    ProcessorVariant variant = ProcessorVariant::kTransformers5);

// Reads <dir>/preprocessor_config.json, else the "image_processor" of <dir>/processor_config.json.
// Throws mlab::Error naming the directory when neither exists or the JSON is invalid.
std::unique_ptr<ImageProcessor> load_image_processor(
    const std::filesystem::path& dir, PillowPassOrder pass_order = PillowPassOrder::kPillow13,
    ProcessorVariant variant = ProcessorVariant::kTransformers5);

// "13" | "12.2" | "12.1" | "10.4" (Pillow version whose pass order to use; "12.1" and "10.4" both
// mean horizontal first, as every Pillow up to 12.1).
PillowPassOrder parse_pillow_pass_order(const std::string& version);

// "transformers-5" | "transformers-4.51". Throws mlab::Error naming the known variants and the
// closest one otherwise.
ProcessorVariant parse_processor_variant(const std::string& name);

// The name parse_processor_variant takes ("transformers-5", "transformers-4.51").
std::string_view processor_variant_name(ProcessorVariant variant);

// The Pillow resize of the environment a variant stands for: Pillow 13 (the project's .venv) for
// transformers-5, Pillow 10.4 (the authors' pin; horizontal pass first) for transformers-4.51.
PillowPassOrder default_pass_order(ProcessorVariant variant);

}  // namespace mlab::image
