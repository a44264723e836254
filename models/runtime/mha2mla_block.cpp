#include "models/runtime/mha2mla_block.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>

#include "core/error.hpp"
#include "models/io/checkpoint.hpp"

namespace mlab::models {

namespace fs = std::filesystem;

namespace {

std::string text_of(const nlohmann::json& j, const char* key, const std::string& fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  MLAB_CHECK(j[key].is_string(), "config.json: mha2mla.", key, " must be a string");
  return j[key].get<std::string>();
}

int64_t int_of(const nlohmann::json& j, const char* key, int64_t fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  MLAB_CHECK(j[key].is_number_integer(), "config.json: mha2mla.", key, " must be an integer");
  return j[key].get<int64_t>();
}

KeptFrequencies same_everywhere(const std::vector<int64_t>& kept, const TextConfig& t) {
  return KeptFrequencies(t.num_hidden_layers,
                         std::vector<std::vector<int64_t>>(t.num_key_value_heads, kept));
}

// The authors' released rank files (../shared/reference/mha2mla-vlm/mkl) -> our converted names.
std::optional<std::string> released_rank_file(const std::string& name) {
  if (name == "llava-ranks.pth") return "llava-1.5-7b-hf.safetensors";
  if (name == "llavanext-ranks.pth") return "llama3-llava-next-8b-hf.safetensors";
  if (name == "qwen2_5_vl-ranks.pth") return "Qwen2.5-VL-7B-Instruct.safetensors";
  return std::nullopt;
}

fs::path find_rank_file(const std::string& written, const fs::path& model_dir,
                        const std::vector<fs::path>& ranks_dirs) {
  std::error_code ec;
  const fs::path p(written);
  std::vector<fs::path> tried = {p};
  if (p.is_relative()) tried.push_back(model_dir / p);
  tried.push_back(model_dir / p.filename());
  if (auto ours = released_rank_file(p.filename().string())) {
    for (const auto& d : ranks_dirs) tried.push_back(d / *ours);
  }
  for (const auto& c : tried) {
    if (fs::is_regular_file(c, ec)) return c;
  }
  std::string list;
  for (const auto& c : tried) list += "\n  " + c.string();
  MLAB_FAIL("config.json: mha2mla.qk_tensor_path '", written, "': no such rank file; tried:", list);
}

}  // namespace

int authors_stage(const nlohmann::json& block) {
  const std::string svd = text_of(block, "svd_init_method", "none");
  return (svd == "none" || int_of(block, "low_rank", 0) <= 0) ? 1 : 2;
}

at::Tensor read_rank_tensor(const fs::path& path) {
  at::Tensor t;
  if (path.extension() == ".safetensors") {
    const Checkpoint ck = Checkpoint::open(path);
    MLAB_CHECK(ck.contains("ranks"), path.string(), ": no tensor \"ranks\"");
    t = ck.get("ranks");
    MLAB_CHECK(t.dim() == 3, path.string(), ": ranks must be [L, n_kv, D/2], got ", t.sizes());
    return t.to(at::kLong);
  }
  std::ifstream in(path, std::ios::binary);
  MLAB_CHECK(in.good(), path.string(), ": cannot open");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(bytes);
  } catch (const std::exception& e) {
    MLAB_FAIL(path.string(), ": not a torch.save'd rank tensor (", e.what(), ")");
  }
  MLAB_CHECK(v.isTensor(), path.string(), ": holds a ", v.tagKind(), ", expected one tensor");
  t = v.toTensor();
  MLAB_CHECK(t.dim() == 3 && t.size(2) % 2 == 0 && !at::isFloatingType(t.scalar_type()),
             path.string(), ": expected an integer rank tensor [L, n_kv, head_dim], got ",
             t.scalar_type(), " ", t.sizes());
  t = t.to(at::kLong);
  const int64_t half = t.size(2) / 2;
  const at::Tensor lo = t.narrow(2, 0, half), hi = t.narrow(2, half, half);
  if (!at::equal(lo, hi)) {
    const auto bad = (lo != hi).nonzero()[0];
    MLAB_FAIL(path.string(), ": layer ", bad[0].item<int64_t>(), " KV head ",
              bad[1].item<int64_t>(), ": the ranks of dims f and f + head_dim/2 differ (f = ",
              bad[2].item<int64_t>(), "); MLA keeps a frequency's two dims together");
  }
  return lo.contiguous();
}

void write_authors_rank_file(const at::Tensor& ranks, const fs::path& path) {
  MLAB_CHECK(ranks.dim() == 3, "rank file: ranks must be [L, n_kv, D/2]");
  const at::Tensor full = at::cat({ranks, ranks}, 2).to(at::kCPU, at::kByte).contiguous();
  const std::vector<char> bytes = torch::jit::pickle_save(full);
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  MLAB_CHECK(out.good(), path.string(), ": cannot write");
}

KeptFrequencies authors_kept_frequencies(const nlohmann::json& block, const TextConfig& t,
                                         const fs::path& model_dir,
                                         const std::vector<fs::path>& ranks_dirs) {
  const int64_t D = t.head_dim, half = D / 2;
  const int64_t r = int_of(block, "rope_dim_for_mla", 0);
  MLAB_CHECK(r > 0 && r % 2 == 0 && r <= D, "config.json: mha2mla.rope_dim_for_mla ", r,
             " must be even in (0, ", D, "]");
  MLAB_CHECK(!block.value("is_gqa2mha2mla", false),
             "config.json: mha2mla.is_gqa2mha2mla is true: checkpoints whose K heads were repeated "
             "to the query heads (GQA -> MHA -> MLA) are not supported");
  const std::string version = text_of(block, "partial_rope_version", "high");
  std::vector<int64_t> kept;
  if (version == "high") {
    for (int64_t f = 0; f < r / 2; ++f) kept.push_back(f);
    return same_everywhere(kept, t);
  }
  if (version == "low") {
    for (int64_t f = half - r / 2; f < half; ++f) kept.push_back(f);
    return same_everywhere(kept, t);
  }
  if (version == "uniform") {
    // Their mask: dims start, start + step, ... < D with step = D // r (patch_func.py).
    const int64_t step = D / r, start = int_of(block, "uniform_start_point", 0);
    MLAB_CHECK(half % step == 0, "config.json: mha2mla: uniform needs head_dim/2 divisible by ",
               "head_dim // rope_dim_for_mla = ", step);
    MLAB_CHECK(start >= 0 && start < step, "config.json: mha2mla.uniform_start_point ", start,
               " must be in [0, ", step, "): otherwise the mask keeps ",
               "a different number of dims in the two halves of a head");
    for (int64_t f = start; f < half; f += step) kept.push_back(f);
    return same_everywhere(kept, t);
  }
  MLAB_CHECK(version == "mkl", "config.json: mha2mla.partial_rope_version '", version,
             "' is not one of high, low, uniform, mkl (and the block has no ",
             "mlab_kept_frequencies)");
  const std::string written = text_of(block, "qk_tensor_path", "");
  MLAB_CHECK(!written.empty(), "config.json: mha2mla: partial_rope_version mkl needs ",
             "qk_tensor_path (the rank file)");
  const fs::path file = find_rank_file(written, model_dir, ranks_dirs);
  const at::Tensor ranks = read_rank_tensor(file);
  MLAB_CHECK(ranks.size(0) == t.num_hidden_layers && ranks.size(1) == t.num_key_value_heads &&
                 ranks.size(2) == half,
             file.string(), ": ranks [", ranks.size(0), ", ", ranks.size(1), ", ", ranks.size(2),
             "] do not fit the model [layers ", t.num_hidden_layers, ", KV heads ",
             t.num_key_value_heads, ", head_dim/2 ", half, "]");
  KeptFrequencies out(ranks.size(0));
  const auto acc = ranks.accessor<int64_t, 3>();
  for (int64_t l = 0; l < ranks.size(0); ++l) {
    for (int64_t g = 0; g < ranks.size(1); ++g) {
      std::vector<int64_t> k;
      for (int64_t f = 0; f < half; ++f) {
        if (acc[l][g][f] < r / 2) k.push_back(f);
      }
      MLAB_CHECK(static_cast<int64_t>(k.size()) == r / 2, file.string(), ": layer ", l,
                 " KV head ", g, " has ", k.size(), " ranks below ", r / 2,
                 " (rope_dim_for_mla / 2); each row must be a permutation of 0..", half - 1);
      out[l].push_back(std::move(k));
    }
  }
  return out;
}

void complete_mha2mla_block(ModelConfig& config, const fs::path& model_dir,
                            const std::vector<fs::path>& ranks_dirs) {
  if (!config.raw.is_object() || !config.raw.contains("mha2mla")) return;
  auto& block = config.raw["mha2mla"];
  MLAB_CHECK(block.is_object(), "config.json: \"mha2mla\" must be an object");
  if (!block.contains("stage")) block["stage"] = authors_stage(block);
  if (block.contains("mlab_kept_frequencies")) return;
  std::vector<fs::path> dirs = ranks_dirs;
#ifdef MLAB_RANKS_DIR
  if (dirs.empty()) dirs.emplace_back(MLAB_RANKS_DIR);
#endif
  block["mlab_kept_frequencies"] = authors_kept_frequencies(block, config.text, model_dir, dirs);
}

}  // namespace mlab::models
