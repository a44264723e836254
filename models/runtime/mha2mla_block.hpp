#pragma once
// The "mha2mla" block of a converted checkpoint's config.json, in the two dialects that exist:
//   - the MHA2MLA-VLM authors' (their arguments.py, MHA2MLAModelArguments, saved by train_stage1/2
//     as `config.mha2mla = asdict(args)`): partial_rope_version high | low | uniform | mkl,
//     rope_dim_for_mla, uniform_start_point, qk_tensor_path (mkl: a torch.save'd rank tensor
//     u8 [L, n_kv, head_dim]), svd_init_method none | joint | split | only_key | only_value,
//     low_rank, is_gqa2mha2mla, peft_train, stage1_path, svd_init_weight_path; no stage key;
//   - ours (mla-bench convert --format mlab, and older dirs): stage, rope_dim_for_mla,
//     partial_rope_version (also 2norm, ranks:<file>), low_rank, svd_init_method,
//     mlab_kept_frequencies [layer][kv head][r/2].
// complete_mha2mla_block() adds what the runtime reads (MlaConfig::from_model_config: "stage"
// and "mlab_kept_frequencies") to an authors' block, deriving them exactly as their
// `partial_rope_mask` / `patch_model` do. Blocks that already carry both are left alone.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/config/model_config.hpp"

namespace mlab::models {

// Kept RoPE frequencies [layer][kv head] (ascending, r/2 each).
using KeptFrequencies = std::vector<std::vector<std::vector<int64_t>>>;

// The stage of an authors' block: 1 when svd_init_method is "none" (or absent) or low_rank <= 0,
// else 2 (their stage-1 configs carry svd_init_method "none", low_rank 0).
int authors_stage(const nlohmann::json& block);

// The kept frequencies of an authors' block for a model with `text`'s shape. `model_dir` and
// `ranks_dirs` resolve qk_tensor_path (mkl): the path as written (absolute, or relative to the
// working directory as the authors' code opens it), then relative to model_dir, then its file
// name in model_dir, then the authors' three released rank files by name in each of ranks_dirs
// (llava-ranks.pth, llavanext-ranks.pth, qwen2_5_vl-ranks.pth -> our converted safetensors,
// tools/convert_rank_files.py). Throws mlab::Error naming config.json's key and the problem:
// an unknown version, an uneven uniform mask (their assert), a rank file that cannot be found or
// does not fit the model, is_gqa2mha2mla (not supported: its K heads are repeated to the Q heads).
KeptFrequencies authors_kept_frequencies(const nlohmann::json& block, const TextConfig& text,
                                         const std::filesystem::path& model_dir,
                                         const std::vector<std::filesystem::path>& ranks_dirs);

// Adds "stage" and "mlab_kept_frequencies" to config.raw["mha2mla"] when absent (no-op without
// the block). `ranks_dirs` as above; the default is the source tree's configs/mha2mla/ranks.
void complete_mha2mla_block(ModelConfig& config, const std::filesystem::path& model_dir,
                            const std::vector<std::filesystem::path>& ranks_dirs = {});

// The rank tensor of an authors' rank file (torch.save of one integer tensor [L, n_kv, D], the
// rank of frequency f at dims f and f + D/2) or of our converted safetensors ("ranks"
// [L, n_kv, D/2]) -> i64 [L, n_kv, D/2]. Throws mlab::Error naming the file.
at::Tensor read_rank_tensor(const std::filesystem::path& path);

// Writes `ranks` i64 [L, n_kv, D/2] as the authors' rank file (u8 [L, n_kv, D], both halves),
// loadable by torch.load(weights_only=True).
void write_authors_rank_file(const at::Tensor& ranks, const std::filesystem::path& path);

}  // namespace mlab::models
