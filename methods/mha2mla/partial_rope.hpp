#pragma once
// Partial RoPE of MHA2MLA-VLM (stage 1, specs/method.md §2): which rotary frequencies each
// (layer, KV head) keeps, for the strategies high / low / uniform (fixed) and 2-norm / MKL (a
// ranking per layer and KV head), and the q/k row re-layout that follows from them (§2.6).
//
// Layout (HF "rotate_half"): in a head of D dims, dims f and f + D/2 form the rotation pair of
// frequency f, f = 0 the highest. Keeping r = rope_dim dims keeps r/2 frequencies K; the kept dims
// of a head are K ∪ (K + D/2). GQA: query head h uses the set of KV head h / (H / H_kv) (§2.2).
// Qwen2.5-VL's M-RoPE needs nothing here: selection happens in the one D/2-frequency index space
// after the section merge, and a kept frequency keeps its section's position stream (§2.5).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::methods {

enum class RopeStrategy { kHigh, kLow, kUniform, kTwoNorm, kMkl };

// "high", "low", "uniform", "2norm" (also "2-norm", the text repo's spelling), "mkl". Throws
// mlab::Error listing the known names and the closest match.
RopeStrategy parse_rope_strategy(std::string_view name);

// The canonical name ("high", "low", "uniform", "2norm", "mkl").
std::string rope_strategy_name(RopeStrategy strategy);

// Kept frequencies per (layer, KV head).
struct KeepSets {
  int64_t layers = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;  // D
  int64_t rope_dim = 0;  // r: kept dims per head, r/2 frequencies
  // [layer][kv head]: the kept frequencies, strictly ascending, r/2 each, in [0, D/2).
  std::vector<std::vector<std::vector<int64_t>>> freqs;

  // Throws mlab::Error unless the sizes agree and every set is r/2 ascending distinct
  // frequencies in [0, D/2).
  void validate() const;

  // The kept dims of KV head `kv_head` in layer `layer` within one head: [K ascending,
  // K + D/2 ascending] (r entries), the order of the q/k RoPE rows.
  std::vector<int64_t> head_rope_dims(int64_t layer, int64_t kv_head) const;

  // The q_proj row permutation of §2.6 over the flat H·D rows (head-major): all kept rows, head by
  // head, each head [K_g ascending, K_g + D/2 ascending] with g = h / (H / H_kv); then all NoPE
  // rows, head by head, ascending. H·D entries; the first H·r are q_idx (q_rope_rows). Throws
  // unless H_kv divides q_heads.
  std::vector<int64_t> q_permutation(int64_t layer, int64_t q_heads) const;
  // The first H·r entries of q_permutation: q_idx[l].
  std::vector<int64_t> q_rope_rows(int64_t layer, int64_t q_heads) const;
  // k_proj rows of k_r_proj (k_idx[l]): H_kv·r flat rows, head by head [K, K + D/2] ascending.
  std::vector<int64_t> k_rope_rows(int64_t layer) const;
  // k_proj rows of the NoPE key (up_k): H_kv·(D - r) flat rows, head by head ascending.
  std::vector<int64_t> k_nope_rows(int64_t layer) const;
};

// high: K = {0 … r/2-1}; low: K = {D/2 - r/2 … D/2-1}; uniform: the authors' dims s, s+step, …
// over the whole head with step = D / r, i.e. K = {s + k·step : k < r/2} (needs r | D and
// 0 <= s < step). The same set for every layer and KV head. Throws mlab::Error for a ranking
// strategy (2norm, mkl: use keep_sets_from_ranks), rope_dim odd / 0 / > head_dim, head_dim odd, a
// bad uniform start.
KeepSets fixed_keep_sets(RopeStrategy strategy, int64_t layers, int64_t kv_heads, int64_t head_dim,
                         int64_t rope_dim, int64_t uniform_start = 0);

// K_{l,g} = {f : ranks[l, g, f] < r/2}. ranks: u8|i16|i32|i64 [layers, H_kv, D/2] (rank 0 = most
// important; each row a permutation of 0 … D/2-1), or the authors' [layers, H_kv, D] form whose
// two halves are equal (told apart from the first by the repeat: a permutation never repeats).
// head_dim = D is inferred. Throws mlab::Error naming the (layer, KV head) of a row that is not a
// permutation or whose halves differ, and for a bad rope_dim.
KeepSets keep_sets_from_ranks(const at::Tensor& ranks, int64_t rope_dim);

// Our converted rank file (tools/convert_rank_files.py): a safetensors file with tensor "ranks"
// u8 [layers, H_kv, D/2]. Throws mlab::Error naming the file: a missing tensor (with the names it
// has), a shape that does not fit the model (naming both), a head_dim other than
// expect_head_dim (when > 0), and anything keep_sets_from_ranks rejects.
KeepSets load_rank_file(const std::filesystem::path& path, int64_t rope_dim, int64_t expect_layers,
                        int64_t expect_kv_heads, int64_t expect_head_dim = 0);

// Ranks from importance scores: scores f32|f64 [layers, H_kv, F] (higher = more important) ->
// i64 [layers, H_kv, F], rank[l, g, f] = the position of f in the descending order of
// scores[l, g, :]. Ties go to the lower frequency index (a stable sort), so equal inputs give
// equal ranks on every run and device. Throws mlab::Error for a NaN score or a wrong dtype/rank.
at::Tensor ranks_from_scores(const at::Tensor& scores);

// 2-norm scores (paper Eq. 1; specs/method.md §2.4, the text repo's 2_norm.py): per token, head
// and frequency the pair norm ‖x_f‖ = sqrt(x[f]² + x[f + D/2]²), averaged over the T tokens of one
// sequence, then over the sequences added to that layer: Q̄[l, h, f], K̄[l, g, f]. The score is
// score[l, g, f] = Σ_{h in group g} Q̄[l, h, f] · K̄[l, g, f]. The pair norm is rotation invariant,
// so pre- or post-RoPE q/k give the same scores.
class TwoNormScorer {
 public:
  TwoNormScorer(int64_t layers, int64_t q_heads, int64_t kv_heads, int64_t head_dim);

  // One sequence of layer `layer`: q any [T, H, D], k any [T, H_kv, D] (any device), T >= 1.
  void add(int64_t layer, const at::Tensor& q, const at::Tensor& k);

  // f64 [layers, H_kv, D/2] on the CPU; layers never seen are 0.
  at::Tensor scores() const;
  int64_t sequences(int64_t layer) const;

 private:
  int64_t layers_, q_heads_, kv_heads_, head_dim_;
  at::Tensor q_sum_;  // f64 [layers, H, D/2]: sum over sequences of the per-sequence token means
  at::Tensor k_sum_;  // f64 [layers, H_kv, D/2]
  std::vector<int64_t> count_;  // sequences per layer
};

}  // namespace mlab::methods
