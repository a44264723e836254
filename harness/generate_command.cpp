// `mla-bench generate`: one prompt (with zero or more images) through a VLM directory, greedy,
// the answer on stdout; --dump also writes every intermediate a port is compared on (pixel
// values, input ids, positions, image features, prefill logits in f32, generated ids) to a
// .safetensors file that Python's safetensors reads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <ostream>

#include "core/error.hpp"
#include "datasets/image.hpp"
#include "harness/commands.hpp"
#include "models/image/image_processor_factory.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/io/tensor_io.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/vlm.hpp"

namespace mlab::harness {
namespace {

// What transformers' processors see for a PIL image: alpha composited on white (5.2x
// convert_to_rgb) or dropped (lmms-eval's convert("RGB"), and transformers <= 5.17).
image::Rgb8Image load_rgb(const std::filesystem::path& path, const std::string& alpha) {
  datasets::RgbaImage d = datasets::decode_image_rgba(path);
  if (d.has_alpha && alpha == "white") {
    return image::rgb8_composite_on_white(d.width, d.height, d.rgba);
  }
  return image::rgb8_drop_alpha(d.width, d.height, d.rgba);
}

c10::Device parse_device(const std::string& name) {
  try {
    return c10::Device(name);
  } catch (const c10::Error&) {
    throw UsageError("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
  }
}

void dump(const GenerateOptions& o, const models::Vlm& vlm, const models::VlmInputs& in,
          const models::VlmSession& s, const models::GenerateResult& r) {
  std::vector<std::pair<std::string, at::Tensor>> t;
  t.emplace_back("input_ids", in.input_ids);
  t.emplace_back("attention_mask", in.attention_mask);
  if (in.pixel_values.defined()) t.emplace_back("pixel_values", in.pixel_values);
  if (in.image_sizes.defined()) t.emplace_back("image_sizes", in.image_sizes);
  if (in.image_grid_thw.defined()) t.emplace_back("image_grid_thw", in.image_grid_thw);
  auto [positions, next] = vlm.positions(in);
  t.emplace_back("position_ids", positions);
  if (s.image_features.defined()) {
    t.emplace_back("image_features", s.image_features.to(at::kCPU, at::kFloat).contiguous());
  }
  t.emplace_back("logits", s.logits.to(at::kCPU, at::kFloat).contiguous());
  std::vector<int64_t> ids = r.tokens.front();
  t.emplace_back("generated_ids", at::tensor(ids, at::kLong).view({1, -1}));
  nlohmann::json images = nlohmann::json::array();
  for (const auto& p : o.images) images.push_back(p.string());
  std::map<std::string, std::string> meta = {
      {"model_dir", vlm.dir().string()},
      {"prompt", o.prompt},
      {"images", images.dump()},
      {"dtype", std::string(models::compute_dtype_name(vlm.dtype()))},
      {"device", vlm.options().device.str()},
      {"attn_implementation", std::string(models::attention_impl_name(vlm.options().attention))},
      {"producer", "mla-bench generate"}};
  models::save_safetensors(o.dump, t, meta);
}

}  // namespace

int run_generate(const GenerateOptions& o, std::ostream& out) {
  MLAB_CHECK(!o.prompt.empty(), "generate: --prompt is empty");
  if (o.threads > 0) at::set_num_threads(o.threads);
  if (o.alpha != "white" && o.alpha != "drop") {
    throw UsageError("--alpha must be white or drop, got '" + o.alpha + "'");
  }
  models::VlmOptions vo;
  vo.device = parse_device(o.device);
  if (o.dtype != "auto") vo.dtype = models::parse_compute_dtype(o.dtype);
  else if (vo.device.is_cpu()) vo.dtype = c10::kFloat;  // CPU: f32 unless asked (bf16 GEMMs are slow)
  vo.attention = models::parse_attention_impl(o.attention);
  vo.pillow = image::parse_pillow_pass_order(o.pillow);
  const auto t0 = std::chrono::steady_clock::now();
  models::Vlm vlm = models::Vlm::load(o.model, vo);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::vector<image::Rgb8Image> images;
  for (const auto& path : o.images) images.push_back(load_rgb(path, o.alpha));
  models::VlmRequest request = models::VlmRequest::single(o.prompt, std::move(images));
  if (!o.system.empty()) request.turns.insert(request.turns.begin(), {"system", o.system, 0});
  const models::VlmInputs inputs = vlm.prepare(std::span(&request, 1));

  models::GenerateOptions go;
  go.max_new_tokens = o.max_new_tokens;
  go.stop_strings = o.stop;
  go.stop_at_eos = !o.no_eos;
  const models::GenerateResult r = vlm.generate(inputs, go);
  if (!o.dump.empty()) {
    models::PrefillOptions po;
    po.all_logits = true;
    dump(o, vlm, inputs, vlm.prefill(inputs, po), r);
  }
  if (o.json) {
    const double decode_tps = r.decode_seconds > 0 ? r.decode_steps / r.decode_seconds : 0.0;
    nlohmann::json j = {{"text", r.texts.front()},
                        {"tokens", r.tokens.front()},
                        {"prompt_tokens", r.prompt_tokens},
                        {"load_seconds", load_s},
                        {"prefill_seconds", r.prefill_seconds},
                        {"decode_seconds", r.decode_seconds},
                        {"decode_tokens_per_second", decode_tps},
                        {"kv_bytes", r.kv_bytes}};
    out << j.dump() << "\n";
  } else {
    out << r.texts.front() << "\n";
  }
  return 0;
}

}  // namespace mlab::harness
