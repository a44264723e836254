#pragma once
// MHA2MLA-VLM conversion (Fan et al. 2026; specs/method.md §1-3): partial-RoPE keep-sets
// (high / low / uniform / 2norm / mkl, or a rank file), the stage-1 re-layout (§2.6), calibration
// on the stage-1 model, and the stage-2 latent (§3.1) initialised by weight SVD, activation-aware
// joint SVD or modality-decoupled SVD (§3.3), applied in place to a loaded Vlm; and the writer of
// the converted Hugging Face directory (config.json "mha2mla", the authors' tensor names).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "models/runtime/mla_attention.hpp"
#include "models/runtime/vlm.hpp"

namespace mlab::methods {

struct ConvertOptions {
  std::string strategy = "2norm";  // high | low | uniform | 2norm | mkl
  int64_t rope_dim = 32;           // r: RoPE dims kept per head
  int64_t uniform_start = 0;       // uniform: first kept dim
  std::filesystem::path ranks;     // a rank file (configs/mha2mla/ranks/): no scoring pass
  int stage = 2;                   // 1: partial RoPE only; 2: MLA
  int64_t d_kv = 64;               // latent per KV head (d_c = H_kv * d_kv)
  std::string svd = "md";          // md | activation | weight ("joint": old name of activation)
  double eig_eps = 1e-10;          // covariance eigenvalues clamped at eps * max
  int64_t mkl_queries = 64;        // query positions sampled per calibration sequence
  int64_t mkl_samples = 32;        // MKL scores the first N calibration samples (0 = all)
};

// Per-layer truncation losses ||(W - W') X_m||_F^2 of the K/V latent, relative to ||W X_m||^2
// (Eq. 4-7): `split` = MD-SVD (each modality its own factors), `joint` = one activation-aware
// factorisation of both modalities together (--svd activation), `weight` = plain SVD.
struct LayerLoss {
  int64_t layer = 0;
  double split_image = 0, split_text = 0;
  double joint_image = 0, joint_text = 0;
  double weight_image = 0, weight_text = 0;
  double energy_image = 0, energy_text = 0;  // ||W X_m||^2
};

struct ConvertReport {
  models::MlaConfig mla;
  std::vector<LayerLoss> losses;  // stage 2 with calibration data
  at::Tensor scores;              // f64 [L, H_kv, D/2] (2norm / mkl), undefined otherwise
  at::Tensor ranks;               // i64 [L, H_kv, D/2] whose "rank < r/2" sets are the keep-sets
  int64_t uniform_start = 0;      // the uniform strategy's first kept dim
  int64_t calibration_samples = 0, image_tokens = 0, text_tokens = 0;
  double score_seconds = 0, calibration_seconds = 0, svd_seconds = 0;
};

// Progress: (stage name, done, total).
using ConvertProgress = std::function<void(const std::string&, int64_t, int64_t)>;

// The SVD init's canonical name: "joint" (its name before F14, when it clashed with the authors'
// svd_init_method "joint" = plain weight SVD) -> "activation" with a note on stderr.
std::string canonical_svd_init(const std::string& name);

// Converts every decoder layer of `vlm` (GqaAttention) to MlaAttention. A stage-1 model (loaded
// from a stage-1 dir, ours or the authors', e.g. after stage-1 fine-tuning) keeps its keep-sets
// and gets the stage-2 latent (the paper's pipeline: MD-SVD on the stage-1 model). `calibration` is run
// through the model when the strategy scores frequencies (2norm, mkl) and when the SVD is
// activation-aware (md, joint). Throws mlab::Error for bad options (unknown strategy / SVD,
// rope_dim, d_kv larger than the K/V rank allows, missing calibration data, MKL or MD-SVD
// calibration without image tokens).
ConvertReport convert_to_mla(models::Vlm& vlm, const ConvertOptions& options,
                             std::span<const models::VlmRequest> calibration,
                             const ConvertProgress& progress = {});
// The same with calibration samples given as model inputs (one sample each, batch 1), e.g. the
// training template's ids and pixel values (the authors' run_svd_init.py encodes them so).
ConvertReport convert_to_mla_with_inputs(models::Vlm& vlm, const ConvertOptions& options,
                                         std::span<const models::VlmInputs> calibration,
                             const ConvertProgress& progress = {});

// Writes `vlm` (converted) to `out` as a Hugging Face directory: the source directory's files
// (tokenizer, processor, chat template, generation config), config.json with the "mha2mla" block,
// model.safetensors in the source's stored dtype with the converted attention tensors named as
// the authors' checkpoints (q_proj permuted, k_r_proj, kv_proj_{img,text}.{down_kv,up_k,up_v};
// stage 1: kv_proj.{up_k,up_v}).
// kAuthors (the default): the "mha2mla" block of the authors' arguments.py, so that their
// train_stage2.py / run_svd_init.py / lmms-eval llava_hf.py load the dir as written: keep-sets
// other than high/low/uniform as partial_rope_version "mkl" with the rank file
// <out>/mha2mla_ranks.pth (their format), stage 2 with svd_init_method "joint" and stage1_path
// <out>/stage1 (a config.json of the stage-1 model); absolute paths, as their code opens them
// from its working directory. Our keys ride along (stage, mlab_kept_frequencies,
// mlab_partial_rope, mlab_svd_init), so our loader does not need those files.
// kMlab: our keys only (the format before F14).
enum class SaveFormat { kAuthors, kMlab };
SaveFormat parse_save_format(const std::string& name);  // "authors" | "mlab"

void save_converted(const models::Vlm& vlm, const ConvertReport& report,
                    const std::filesystem::path& out, SaveFormat format = SaveFormat::kAuthors);

}  // namespace mlab::methods
