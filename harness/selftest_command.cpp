// mla-bench selftest: quick checks that this build and machine work (what the quickstart ran before
// issue F9 rebuilt it around the trained demo models): the paper's model configs parse, a sharded
// checkpoint round-trips through our safetensors writer and reader bit-exactly, the RMSNorm
// kernel matches its reference on the chosen device, and the three tiny fixture VLMs answer.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ostream>

#include "core/error.hpp"
#include "core/progress.hpp"
#include "datasets/image.hpp"
#include "harness/commands.hpp"
#include "kernels/rms_norm.hpp"
#include "models/config/model_config.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/io/checkpoint.hpp"
#include "models/runtime/vlm.hpp"

namespace mlab::harness {
namespace {

// Step 1: every config.json under `dir` parses; prints the shapes that decide KV memory.
void check_configs(const std::filesystem::path& dir, std::ostream& out) {
  MLAB_CHECK(std::filesystem::is_directory(dir), dir.string(),
             ": not a directory of model configs (pass --configs)");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  MLAB_CHECK(!files.empty(), dir.string(), ": no *.json model configs");
  out << "[1/4] model configs (" << dir.string() << ")\n";
  out << "  model                            family       layers  heads/kv  head_dim  dense KV "
         "bf16\n";
  for (const auto& file : files) {
    const auto config = models::load_model_config(file);
    const auto& t = config.text;
    // K and V, every layer, every KV head, head_dim elements of 2 bytes, per cached token.
    const int64_t bytes = 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim * 2;
    char line[200];
    std::snprintf(
        line, sizeof(line), "  %-32s %-12s %6lld  %3lld/%-4lld  %8lld  %7.1f KiB/token\n",
        file.stem().string().c_str(), std::string(models::family_name(config.family)).c_str(),
        static_cast<long long>(t.num_hidden_layers), static_cast<long long>(t.num_attention_heads),
        static_cast<long long>(t.num_key_value_heads), static_cast<long long>(t.head_dim),
        static_cast<double>(bytes) / 1024.0);
    out << line;
  }
}

// Step 2: write a sharded checkpoint of mixed dtypes with our writer, read it back, compare.
void checkpoint_round_trip(const std::filesystem::path& dir, std::ostream& out) {
  out << "[2/4] checkpoint round trip (" << dir.string() << ")\n";
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  const int64_t layers = 4, hidden = 256;
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    tensors.emplace_back(p + "self_attn.q_proj.weight",
                         at::randn({hidden, hidden}).to(at::kBFloat16));
    tensors.emplace_back(p + "self_attn.k_proj.weight",
                         at::randn({hidden / 2, hidden}).to(at::kHalf));
    tensors.emplace_back(p + "input_layernorm.weight", at::randn({hidden}));
  }
  tensors.emplace_back("position_ids", at::arange(64, at::kLong).unsqueeze(0));
  tensors.emplace_back("image_mask", at::rand({3, 7}) > 0.5);
  tensors.emplace_back("logit_scale", at::scalar_tensor(2.5, at::kDouble));
  tensors.emplace_back("empty", at::empty({0, 3}, at::kInt));
  int64_t total = 0;
  for (const auto& [name, t] : tensors) total += static_cast<int64_t>(t.nbytes());

  auto start = std::chrono::steady_clock::now();
  models::save_checkpoint(dir, tensors, {{"format", "pt"}, {"writer", "mla-bench selftest"}},
                          /*max_shard_bytes=*/200 * 1024);
  const double write_s = seconds_since(start);
  start = std::chrono::steady_clock::now();
  const auto checkpoint = models::Checkpoint::open(dir);
  int64_t mismatches = 0;
  for (const auto& [name, expected] : tensors) {
    const auto got = checkpoint.get(name);
    const bool same = got.scalar_type() == expected.scalar_type() &&
                      got.sizes() == expected.sizes() && at::equal(got, expected);
    if (!same) {
      ++mismatches;
      out << "  MISMATCH " << name << "\n";
    }
  }
  const double read_s = seconds_since(start);
  MLAB_CHECK(mismatches == 0, dir.string(), ": ", mismatches,
             " tensors differ after the round trip");
  MLAB_CHECK(checkpoint.names().size() == tensors.size(), dir.string(), ": wrote ", tensors.size(),
             " tensors, read ", checkpoint.names().size());
  const double mb = static_cast<double>(total) / 1e6;
  out << "  " << tensors.size() << " tensors (bf16, f16, f32, f64 0-d, i64, i32 empty, bool), "
      << format_fixed(mb, 2) << " MB in " << checkpoint.shards().size() << " shards: bit-exact; write "
      << format_fixed(mb / std::max(write_s, 1e-9), 0) << " MB/s, open+read "
      << format_fixed(mb / std::max(read_s, 1e-9), 0) << " MB/s\n";
}

// Step 4: the VLM runtime on the tiny random-weight fixtures of the three families: one image,
// one question, greedy.
void vlm_check(const std::filesystem::path& tiny_dir, const std::string& device_name,
               std::ostream& out) {
  out << "[4/4] VLM runtime (" << tiny_dir.string() << ", random weights) on " << device_name
      << "\n";
  const auto image_path = tiny_dir.parent_path() / "images" / "reference" / "large.input.png";
  const datasets::Image decoded = datasets::decode_image(image_path);
  const auto image = image::make_rgb8_image(decoded.width, decoded.height, decoded.rgb);
  for (const std::string family : {"llava", "llava_next", "qwen2_5_vl"}) {
    models::VlmOptions o;
    o.device = c10::Device(device_name);
    o.dtype = c10::kFloat;
    const models::Vlm vlm = models::Vlm::load(tiny_dir / family, o);
    const auto request = models::VlmRequest::single("What is in the image?", {image});
    const auto inputs = vlm.prepare(std::span(&request, 1));
    models::GenerateOptions go;
    go.max_new_tokens = 16;
    go.stop_at_eos = false;
    const auto r = vlm.generate(inputs, go);
    out << "  " << family << ": " << inputs.input_ids.size(1) << " prompt tokens ("
        << inputs.input_ids.eq(vlm.config().image_token_id).sum().item<int64_t>()
        << " image), prefill " << format_fixed(r.prefill_seconds * 1e3, 1) << " ms, decode "
        << format_fixed(r.decode_steps / std::max(r.decode_seconds, 1e-9), 0) << " tok/s, KV "
        << r.kv_bytes << " B\n";
  }
}

// Step 3: the RMSNorm kernel (CUDA when available) against its ATen reference.
void kernel_check(const std::string& device_name, std::ostream& out) {
  const at::Device device(device_name);
  MLAB_CHECK(!device.is_cuda() || at::hasCUDA(), "--device cuda: no CUDA device is available");
  const bool kernel = device.is_cuda() && kernels::built_with_cuda();
  out << "[3/4] RMSNorm on " << device << (kernel ? " (CUDA kernel)" : " (ATen reference)") << "\n";
  const auto x = at::randn({64, 4096}, at::device(device));
  const auto w = at::randn({4096}, at::device(device));
  const auto got = kernels::rms_norm(x, w, 1e-6);
  const auto reference = kernels::rms_norm_reference(x, w, 1e-6);
  const double diff = (got - reference).abs().max().item<double>();
  MLAB_CHECK(diff <= 1e-4, "RMSNorm on ", device, ": max |diff| ", diff, " vs the reference");
  out << "  max |kernel - reference| = " << diff << "\n";
}

}  // namespace

int run_selftest(const SelftestOptions& options, std::ostream& out) {
  if (options.threads > 0) at::set_num_threads(options.threads);
  at::manual_seed(static_cast<uint64_t>(options.seed));
  const auto start = std::chrono::steady_clock::now();
  out << "mla-bench selftest: seed " << options.seed << ", " << at::get_num_threads()
      << " threads, device " << options.device << "\n";
  check_configs(options.configs_dir, out);
  checkpoint_round_trip(options.work_dir / "roundtrip-checkpoint", out);
  kernel_check(options.device, out);
  vlm_check(std::filesystem::path(MLAB_SOURCE_DIR) / "tests" / "data" / "tiny_vlms", options.device,
            out);
  out << "selftest: OK in " << format_fixed(seconds_since(start), 2) << " s\n";
  return 0;
}

}  // namespace mlab::harness
