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
  std::string svd = "md";          // md | joint | weight
  double eig_eps = 1e-10;          // covariance eigenvalues clamped at eps * max
  int64_t mkl_queries = 64;        // query positions sampled per calibration sequence
  int64_t mkl_samples = 32;        // MKL scores the first N calibration samples (0 = all)
};

// Per-layer truncation losses ||(W - W') X_m||_F^2 of the K/V latent, relative to ||W X_m||^2
// (Eq. 4-7): `split` = MD-SVD (each modality its own factors), `joint` = one activation-aware
// factorisation on S_image + S_text, `weight` = plain SVD.
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
  int64_t calibration_samples = 0, image_tokens = 0, text_tokens = 0;
  double score_seconds = 0, calibration_seconds = 0, svd_seconds = 0;
};

// Progress: (stage name, done, total).
using ConvertProgress = std::function<void(const std::string&, int64_t, int64_t)>;

// Converts every decoder layer of `vlm` (GqaAttention) to MlaAttention. `calibration` is run
// through the model when the strategy scores frequencies (2norm, mkl) and when the SVD is
// activation-aware (md, joint). Throws mlab::Error for bad options (unknown strategy / SVD,
// rope_dim, d_kv larger than the K/V rank allows, missing calibration data, MKL or MD-SVD
// calibration without image tokens).
ConvertReport convert_to_mla(models::Vlm& vlm, const ConvertOptions& options,
                             std::span<const models::VlmRequest> calibration,
                             const ConvertProgress& progress = {});

// Writes `vlm` (converted) to `out` as a Hugging Face directory: the source directory's files
// (tokenizer, processor, chat template, generation config), config.json with the "mha2mla" block,
// model.safetensors in the source's stored dtype with the converted attention tensors named as
// the authors' checkpoints (q_proj permuted, k_r_proj, kv_proj_{img,text}.{down_kv,up_k,up_v};
// stage 1: kv_proj.{up_k,up_v}).
void save_converted(const models::Vlm& vlm, const ConvertReport& report,
                    const std::filesystem::path& out);

}  // namespace mlab::methods
