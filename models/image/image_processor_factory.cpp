#include "models/image/image_processor_factory.hpp"

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "core/strings.hpp"
#include "models/image/clip_image_processor.hpp"
#include "models/image/llava_next_image_processor.hpp"
#include "models/image/qwen2_vl_image_processor.hpp"

namespace mlab::image {

namespace {

std::string strip_backend_suffix(std::string type) {
  for (const std::string suffix : {"Fast", "Pil"}) {
    if (type.size() > suffix.size() &&
        type.compare(type.size() - suffix.size(), suffix.size(), suffix) == 0) {
      type.resize(type.size() - suffix.size());
    }
  }
  return type;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot open");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  check_json_depth(text, path.string());  // F11 D1
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MLAB_FAIL(path.string(), ": invalid JSON (", e.what(), ")");
  }
}

}  // namespace

PillowPassOrder parse_pillow_pass_order(const std::string& version) {
  if (version == "13") return PillowPassOrder::kPillow13;
  if (version == "12.2" || version == "12.3") return PillowPassOrder::kPillow12_2;
  if (version == "12.1" || version == "10.4") return PillowPassOrder::kHorizontalFirst;
  MLAB_FAIL("unknown Pillow version '", version, "' (expected 13, 12.2, 12.1 or 10.4)");
}

ProcessorVariant parse_processor_variant(const std::string& name) {
  if (name == "transformers-5") return ProcessorVariant::kTransformers5;
  if (name == "transformers-4.51") return ProcessorVariant::kTransformers4_51;
  MLAB_FAIL(
      unknown_name_message("processor variant", name, {"transformers-5", "transformers-4.51"}));
}

std::string_view processor_variant_name(ProcessorVariant variant) {
  switch (variant) {
    case ProcessorVariant::kTransformers5:
      return "transformers-5";
    case ProcessorVariant::kTransformers4_51:
      return "transformers-4.51";
  }
  MLAB_FAIL("processor_variant_name: invalid ProcessorVariant ", static_cast<int>(variant));
}

PillowPassOrder default_pass_order(ProcessorVariant variant) {
  return variant == ProcessorVariant::kTransformers4_51 ? PillowPassOrder::kHorizontalFirst
                                                        : PillowPassOrder::kPillow13;
}

std::unique_ptr<ImageProcessor> make_image_processor(const nlohmann::json& config,
                                                     const std::string& source,
                                                     PillowPassOrder pass_order,
                                                     ProcessorVariant variant) {
  MLAB_CHECK(config.is_object() && config.contains("image_processor_type") &&
                 config["image_processor_type"].is_string(),
             source, ": no \"image_processor_type\" string");
  const std::string type = strip_backend_suffix(config["image_processor_type"].get<std::string>());
  try {
    if (type == "CLIPImageProcessor" || type == "LlavaImageProcessor") {
      auto o = ClipImageProcessorOptions::from_preprocessor_config(config);
      o.pass_order = pass_order;
      return std::make_unique<ClipImageProcessor>(o);
    }
    if (type == "LlavaNextImageProcessor") {
      auto o = LlavaNextImageProcessorOptions::from_preprocessor_config(config);
      o.pass_order = pass_order;
      o.variant = variant;
      return std::make_unique<LlavaNextImageProcessor>(o);
    }
    if (type == "Qwen2VLImageProcessor" || type == "Qwen2_5_VLImageProcessor") {
      auto o = Qwen2VlImageProcessorOptions::from_preprocessor_config(config);
      o.pass_order = pass_order;
      o.variant = variant;
      return std::make_unique<Qwen2VlImageProcessor>(o);
    }
  } catch (const Error& e) {
    MLAB_FAIL(source, ": ", e.what());
  }
  MLAB_FAIL(source, ": unsupported image_processor_type '", type,
            "' (supported: CLIPImageProcessor, LlavaImageProcessor, LlavaNextImageProcessor, "
            "Qwen2VLImageProcessor)");
}

std::unique_ptr<ImageProcessor> load_image_processor(const std::filesystem::path& dir,
                                                     PillowPassOrder pass_order,
                                                     ProcessorVariant variant) {
  const auto pre = dir / "preprocessor_config.json";
  if (std::filesystem::is_regular_file(pre)) {
    return make_image_processor(read_json(pre), pre.string(), pass_order, variant);
  }
  const auto proc = dir / "processor_config.json";
  if (std::filesystem::is_regular_file(proc)) {
    const auto j = read_json(proc);
    MLAB_CHECK(j.contains("image_processor"), proc.string(), ": no \"image_processor\" object");
    return make_image_processor(j["image_processor"], proc.string(), pass_order, variant);
  }
  MLAB_FAIL(dir.string(), ": no preprocessor_config.json or processor_config.json");
}

}  // namespace mlab::image
