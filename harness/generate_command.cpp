// `mla-bench generate`: one prompt (with zero or more images) through a VLM directory, greedy,
// the answer on stdout; --dump also writes every intermediate a port is compared on (pixel
// values, input ids, positions, image features, prefill logits in f32, generated ids) to a
// .safetensors file that Python's safetensors reads. --methods runs one KV-cache method stack
// (methods/kv_method.hpp) through the runtime's cache factory, as eval does.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"
#include "datasets/image.hpp"
#include "harness/commands.hpp"
#include "methods/kv_memory.hpp"
#include "methods/kv_method.hpp"
#include "models/image/image_processor_factory.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/mla_attention.hpp"
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

// Model inputs replayed from a .safetensors file (the layout --dump-inputs writes, and the one
// of tests/data/tiny_vlms/reference/*.safetensors).
models::VlmInputs read_inputs(const std::filesystem::path& path) {
  const models::Checkpoint file = models::Checkpoint::open(path);
  auto get = [&](const char* name, bool required) -> at::Tensor {
    if (!file.contains(name)) {
      MLAB_CHECK(!required, path.string(), ": no tensor '", name, "' (--inputs needs input_ids ",
                 "and attention_mask, plus the image tensors of the family)");
      return {};
    }
    return file.get(name).clone();
  };
  models::VlmInputs in;
  in.input_ids = get("input_ids", true);
  in.attention_mask = get("attention_mask", true);
  MLAB_CHECK(in.input_ids.dim() == 2 && in.input_ids.sizes() == in.attention_mask.sizes() &&
                 in.input_ids.scalar_type() == at::kLong,
             path.string(), ": input_ids and attention_mask must be i64 [B, L] of equal shape");
  in.pixel_values = get("pixel_values", false);
  in.image_sizes = get("image_sizes", false);
  in.image_grid_thw = get("image_grid_thw", false);
  return in;
}

std::vector<std::pair<std::string, at::Tensor>> input_tensors(const models::Vlm& vlm,
                                                              const models::VlmInputs& in) {
  std::vector<std::pair<std::string, at::Tensor>> t;
  t.emplace_back("input_ids", in.input_ids);
  t.emplace_back("attention_mask", in.attention_mask);
  if (in.pixel_values.defined()) t.emplace_back("pixel_values", in.pixel_values);
  if (in.image_sizes.defined()) t.emplace_back("image_sizes", in.image_sizes);
  if (in.image_grid_thw.defined()) t.emplace_back("image_grid_thw", in.image_grid_thw);
  t.emplace_back("position_ids", vlm.positions(in).first);
  return t;
}

std::map<std::string, std::string> dump_metadata(const GenerateOptions& o, const models::Vlm& vlm) {
  nlohmann::json images = nlohmann::json::array();
  for (const auto& p : o.images) images.push_back(p.string());
  return {
      {"model_dir", vlm.dir().string()},
      {"prompt", o.prompt},
      {"images", images.dump()},
      {"inputs", o.inputs.string()},
      {"dtype", std::string(models::compute_dtype_name(vlm.dtype()))},
      {"device", vlm.options().device.str()},
      {"attn_implementation", std::string(models::attention_impl_name(vlm.options().attention))},
      {"processor", std::string(image::processor_variant_name(vlm.options().processor))},
      {"producer", "mla-bench generate"}};
}

void dump(const GenerateOptions& o, const models::Vlm& vlm, const models::VlmInputs& in,
          const models::VlmSession& s, const models::GenerateResult& r) {
  auto t = input_tensors(vlm, in);
  if (s.image_features.defined()) {
    t.emplace_back("image_features", s.image_features.to(at::kCPU, at::kFloat).contiguous());
  }
  t.emplace_back("logits", s.logits.to(at::kCPU, at::kFloat).contiguous());
  // Rows padded with -1 after a row stopped.
  std::size_t n = 0;
  for (const auto& row : r.tokens) n = std::max(n, row.size());
  at::Tensor ids =
      at::full({static_cast<int64_t>(r.tokens.size()), static_cast<int64_t>(n)}, -1, at::kLong);
  for (std::size_t b = 0; b < r.tokens.size(); ++b) {
    for (std::size_t i = 0; i < r.tokens[b].size(); ++i) ids[b][i] = r.tokens[b][i];
  }
  t.emplace_back("generated_ids", ids);
  const auto meta = dump_metadata(o, vlm);
  models::save_safetensors(o.dump, t, meta);
}

}  // namespace

int run_generate(const GenerateOptions& o, std::ostream& out) {
  const bool replay = !o.inputs.empty();
  if (replay && (!o.images.empty() || !o.prompt.empty())) {
    throw UsageError("--inputs replays a whole batch: give it without --image/--prompt");
  }
  if (!replay && o.prompt.empty()) throw UsageError("generate needs --prompt (or --inputs)");
  if (o.threads > 0) at::set_num_threads(o.threads);
  image::ProcessorVariant variant{};
  try {
    variant = image::parse_processor_variant(o.processor);
  } catch (const Error& e) {
    throw UsageError(std::string("generate: --processor: ") + e.what());
  }
  // The processor's own RGBA rule unless asked: 5.2x composites on white, 4.51 drops alpha.
  std::string alpha = o.alpha;
  if (alpha.empty())
    alpha = variant == image::ProcessorVariant::kTransformers4_51 ? "drop" : "white";
  if (alpha != "white" && alpha != "drop") {
    throw UsageError("--alpha must be white or drop, got '" + alpha + "'");
  }
  models::VlmOptions vo;
  vo.device = models::parse_device(o.device);
  if (o.dtype != "auto") {
    vo.dtype = models::parse_compute_dtype(o.dtype);
  } else if (vo.device.is_cpu()) {
    vo.dtype = c10::kFloat;  // CPU: f32 unless asked (bf16 GEMMs are slow there)
  }
  vo.attention = models::parse_attention_impl(o.attention);
  vo.pillow = o.pillow.empty() ? image::default_pass_order(variant)
                               : image::parse_pillow_pass_order(o.pillow);
  vo.processor = variant;
  // The method stack is checked before the model loads (names, options, ranges), then against
  // the loaded model (e.g. mha2mla needs a converted one), as eval does.
  std::string method_spec = o.methods.empty() ? std::string("full") : o.methods;
  try {
    const auto specs = methods::split_method_list(method_spec);
    if (specs.size() != 1) {
      throw UsageError("generate: --methods takes one stack, got " + std::to_string(specs.size()) +
                       " in '" + method_spec + "' (eval --methods runs several)");
    }
    method_spec = methods::expand_method_presets(specs.front());
    methods::parse_method_stack(method_spec);
  } catch (const UsageError&) {
    throw;
  } catch (const Error& e) {
    throw UsageError(std::string("generate: --methods: ") + e.what());
  }
  const auto t0 = std::chrono::steady_clock::now();
  models::Vlm vlm = models::Vlm::load(o.model, vo);
  for (auto& layer : vlm.decoder().layers()) {
    if (auto* mla = dynamic_cast<models::MlaAttention*>(layer.attention.get())) {
      mla->decode = o.mla_decode == "reconstruct" ? models::MlaDecode::kReconstruct
                                                  : models::MlaDecode::kAbsorbed;
    }
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::optional<methods::MethodStack> stack;
  try {
    stack.emplace(methods::make_method_stack(method_spec, &vlm));
  } catch (const Error& e) {
    throw UsageError(std::string("generate: --methods: ") + e.what());
  }

  models::VlmInputs inputs;
  if (replay) {
    inputs = read_inputs(o.inputs);
  } else {
    std::vector<image::Rgb8Image> images;
    for (const auto& path : o.images) images.push_back(load_rgb(path, alpha));
    models::VlmRequest request = models::VlmRequest::single(o.prompt, std::move(images));
    if (!o.system.empty()) request.turns.insert(request.turns.begin(), {"system", o.system, 0});
    inputs = vlm.prepare(std::span(&request, 1));
  }
  if (!o.dump_inputs.empty()) {
    models::save_safetensors(o.dump_inputs, input_tensors(vlm, inputs), dump_metadata(o, vlm));
  }

  models::GenerateOptions go;
  go.max_new_tokens = o.max_new_tokens;
  go.stop_strings = o.stop;
  go.stop_at_eos = !o.no_eos;
  go.cache_factory = stack->cache_factory();
  go.prefill_chunk = stack->recipe().prefill_chunk;
  for (int i = 0; i < o.warmup; ++i) vlm.generate(inputs, go);
  const int device_index = vo.device.is_cuda() ? vo.device.index() < 0 ? 0 : vo.device.index() : -1;
  int64_t before = -1;  // allocated bytes when the measured run starts (weights, inputs)
  if (device_index >= 0) {
    compat::cuda_reset_peak_bytes(device_index);
    before = compat::cuda_peak_allocated_bytes(device_index);  // a reset peak = what is allocated
  }
  const models::GenerateResult r = vlm.generate(inputs, go);
  const int64_t peak = device_index >= 0 ? compat::cuda_peak_allocated_bytes(device_index) : -1;
  if (!o.dump.empty()) {
    models::PrefillOptions po;
    po.all_logits = true;
    dump(o, vlm, inputs, vlm.prefill(inputs, po), r);
  }
  if (!o.json) {
    for (const auto& text : r.texts) out << text << "\n";
    return 0;
  }
  const int64_t B = inputs.input_ids.size(0), L = inputs.input_ids.size(1);
  auto rate = [](double n, double s) { return s > 0 ? n / s : 0.0; };
  nlohmann::json j = {
      {"text", r.texts.front()},
      {"tokens", r.tokens.front()},
      {"texts", r.texts},
      {"all_tokens", r.tokens},
      {"batch", B},
      {"prompt_length", L},
      {"prompt_tokens", r.prompt_tokens},
      {"image_tokens", inputs.input_ids.eq(vlm.config().image_token_id).sum().item<int64_t>()},
      {"load_seconds", load_s},
      {"prefill_seconds", r.prefill_seconds},
      {"decode_seconds", r.decode_seconds},
      {"decode_steps", r.decode_steps},
      {"prefill_tokens_per_second", rate(static_cast<double>(r.prompt_tokens), r.prefill_seconds)},
      {"decode_tokens_per_second", rate(static_cast<double>(B * r.decode_steps), r.decode_seconds)},
      {"method", stack->spec()},
      {"kv_bytes", r.kv_bytes},
      {"kv_bytes_peak", r.kv_bytes_peak},
      {"kv_tokens", r.kv_tokens},
      {"peak_memory_bytes", peak >= 0 ? nlohmann::json(peak) : nlohmann::json()},
      {"memory_before_bytes", before >= 0 ? nlohmann::json(before) : nlohmann::json()},
      {"device", vo.device.str()},
      {"dtype", std::string(models::compute_dtype_name(vlm.dtype()))},
      {"attention", o.attention},
      {"processor", std::string(image::processor_variant_name(variant))}};
  out << j.dump() << "\n";
  return 0;
}

}  // namespace mlab::harness
