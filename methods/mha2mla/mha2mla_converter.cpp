#include "methods/mha2mla/mha2mla_converter.hpp"

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "methods/mha2mla/md_svd.hpp"
#include "methods/mha2mla/mkl_scorer.hpp"
#include "methods/mha2mla/partial_rope.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "models/nn/nn.hpp"
#include "models/nn/weights.hpp"
#include "models/runtime/gqa_attention.hpp"
#include "models/runtime/mha2mla_block.hpp"

namespace mlab::methods {

namespace {

using models::AttentionLayer;
using models::GqaAttention;
using models::MlaAttention;
using models::MlaBranch;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// An attention layer that shows its inputs to a hook, then runs the wrapped layer unchanged.
class ObservedAttention final : public AttentionLayer {
 public:
  using Hook =
      std::function<void(const at::Tensor&, const models::RopeTables&, const models::TokenInfo&)>;
  ObservedAttention(std::unique_ptr<AttentionLayer> inner, Hook hook)
      : inner_(std::move(inner)), hook_(std::move(hook)) {}
  at::Tensor forward(const at::Tensor& x, const models::RopeTables& rope,
                     const models::TokenInfo& tokens, models::KvCache& cache) const override {
    hook_(x, rope, tokens);
    return inner_->forward(x, rope, tokens, cache);
  }
  std::unique_ptr<models::KvCache> make_cache(models::AttentionImpl impl,
                                              int64_t reserve) const override {
    return inner_->make_cache(impl, reserve);
  }
  std::unique_ptr<AttentionLayer> release() { return std::move(inner_); }

 private:
  std::unique_ptr<AttentionLayer> inner_;
  Hook hook_;
};

// Calibration samples: chat requests (prepared here) or ready model inputs (one sample each).
struct Calibration {
  std::span<const models::VlmRequest> requests;
  std::span<const models::VlmInputs> inputs;
  std::size_t size() const { return inputs.empty() ? requests.size() : inputs.size(); }
  bool empty() const { return size() == 0; }
  Calibration first(std::size_t n) const {
    if (n >= size()) return *this;
    return inputs.empty() ? Calibration{requests.subspan(0, n), {}}
                          : Calibration{{}, inputs.subspan(0, n)};
  }
};

using LayerHook =
    std::function<void(int64_t layer, const AttentionLayer& inner, const at::Tensor& x,
                       const models::RopeTables&, const models::TokenInfo&)>;

// Runs every calibration request (one at a time) through `vlm` with `hook` on every layer.
void run_calibration(models::Vlm& vlm, const Calibration& calibration, const LayerHook& hook,
                     const std::string& stage, const ConvertProgress& progress) {
  auto& layers = vlm.decoder().layers();
  std::vector<ObservedAttention*> observed;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const AttentionLayer* inner = layers[i].attention.get();
    auto wrapped = std::make_unique<ObservedAttention>(
        std::move(layers[i].attention),
        [&hook, i, inner](const at::Tensor& x, const models::RopeTables& r,
                          const models::TokenInfo& t) {
          hook(static_cast<int64_t>(i), *inner, x, r, t);
        });
    observed.push_back(wrapped.get());
    layers[i].attention = std::move(wrapped);
  }
  const std::size_t n_total = calibration.size();
  try {
    // Tokenising and image preprocessing (CPU) of sample n + 1 overlap the forward of sample n.
    auto prepare = [&vlm, &calibration](std::size_t n) -> models::VlmInputs {
      if (!calibration.inputs.empty()) return calibration.inputs[n];
      return vlm.prepare(calibration.requests.subspan(n, 1));
    };
    std::future<models::VlmInputs> next;
    if (n_total > 0) next = std::async(std::launch::async, prepare, std::size_t{0});
    for (std::size_t n = 0; n < n_total; ++n) {
      const models::VlmInputs inputs = next.get();
      if (n + 1 < n_total) next = std::async(std::launch::async, prepare, n + 1);
      vlm.prefill(inputs);
      if (progress) progress(stage, static_cast<int64_t>(n + 1), static_cast<int64_t>(n_total));
    }
  } catch (...) {
    for (std::size_t i = 0; i < layers.size(); ++i) layers[i].attention = observed[i]->release();
    throw;
  }
  for (std::size_t i = 0; i < layers.size(); ++i) layers[i].attention = observed[i]->release();
}

// X^T X in f64 for the rows X: any [T, E]. A bf16/f16 X on CUDA goes through a tensor-core GEMM
// with f32 accumulation and output (the products of 16-bit values are exact in f32), the sum then
// joins the f64 accumulator; otherwise the GEMM runs in f64.
at::Tensor second_moment(const at::Tensor& x) {
  const auto st = x.scalar_type();
  if (x.is_cuda() && (st == at::kBFloat16 || st == at::kHalf)) {
    return at::mm(x.transpose(0, 1), x, at::kFloat).to(at::kDouble);
  }
  const at::Tensor x64 = x.to(at::kDouble);
  return at::mm(x64.transpose(0, 1), x64);
}

const GqaAttention& as_gqa(const AttentionLayer& layer) {
  const auto* g = dynamic_cast<const GqaAttention*>(&layer);
  MLAB_CHECK(g != nullptr, "mha2mla: the model is already converted (its attention is not GQA)");
  return *g;
}

// Valid rows of x [1, L, C] -> [T, C].
at::Tensor valid_rows(const at::Tensor& x, const models::TokenInfo& t) {
  at::Tensor rows = x.select(0, 0);
  if (t.valid.defined()) rows = rows.index({t.valid.select(0, 0)});
  return rows;
}

void check_options(const ConvertOptions& o, const models::TextConfig& c) {
  MLAB_CHECK(o.stage == 1 || o.stage == 2, "mha2mla: stage must be 1 or 2, got ", o.stage);
  MLAB_CHECK(o.rope_dim > 0 && o.rope_dim % 2 == 0 && o.rope_dim <= c.head_dim,
             "mha2mla: rope_dim ", o.rope_dim, " must be even and in (0, ", c.head_dim, "]");
  MLAB_CHECK(o.svd == "md" || o.svd == "activation" || o.svd == "weight",
             "mha2mla: unknown SVD init '", o.svd, "' (expected md, activation or weight)");
  if (o.stage == 2) {
    // The latent factorises [W_k_nope; W_v] (n_kv (2D - r) x E): its rank bounds d_c.
    const int64_t rows = c.num_key_value_heads * (2 * c.head_dim - o.rope_dim);
    const int64_t max_dkv = std::min(rows, c.hidden_size) / c.num_key_value_heads;
    MLAB_CHECK(o.d_kv > 0 && o.d_kv <= max_dkv, "mha2mla: d_kv ", o.d_kv, " must be in [1, ",
               max_dkv,
               "] (n_kv * d_kv may not exceed min(n_kv * (2 * head_dim - rope_dim) = ", rows,
               ", hidden_size = ", c.hidden_size, "))");
  }
  parse_rope_strategy(o.strategy);  // throws with the known names
}

KeepSets choose_keep_sets(models::Vlm& vlm, const ConvertOptions& o,
                          const Calibration& calibration, ConvertReport& report,
                          const ConvertProgress& progress) {
  const auto& c = vlm.config().text;
  const int64_t L = c.num_hidden_layers, Hk = c.num_key_value_heads, H = c.num_attention_heads,
                D = c.head_dim;
  if (!o.ranks.empty()) return load_rank_file(o.ranks, o.rope_dim, L, Hk);
  const RopeStrategy strategy = parse_rope_strategy(o.strategy);
  if (strategy != RopeStrategy::kTwoNorm && strategy != RopeStrategy::kMkl) {
    return fixed_keep_sets(strategy, L, Hk, D, o.rope_dim, o.uniform_start);
  }
  MLAB_CHECK(!calibration.empty(), "mha2mla: strategy ", o.strategy,
             " scores frequencies on calibration data: give --calib (or a rank file with --ranks)");
  const auto start = Clock::now();
  if (strategy == RopeStrategy::kTwoNorm) {
    TwoNormScorer scorer(L, H, Hk, D);
    run_calibration(
        vlm, calibration,
        [&](int64_t l, const AttentionLayer& inner, const at::Tensor& x, const models::RopeTables&,
            const models::TokenInfo& t) {
          const auto& g = as_gqa(inner);
          const at::Tensor xs = valid_rows(x, t);
          scorer.add(l, models::nn::linear(xs, g.q_weight, g.q_bias).view({-1, H, D}),
                     models::nn::linear(xs, g.k_weight, g.k_bias).view({-1, Hk, D}));
        },
        "2-norm scores", progress);
    report.scores = scorer.scores();
  } else {
    bool any_image = false;
    MklScorer scorer(L, H, Hk, D, o.mkl_queries);
    const Calibration subset =
        o.mkl_samples > 0 ? calibration.first(static_cast<std::size_t>(o.mkl_samples)) : calibration;
    run_calibration(
        vlm, subset,
        [&](int64_t l, const AttentionLayer& inner, const at::Tensor& x,
            const models::RopeTables& rope, const models::TokenInfo& t) {
          const auto& g = as_gqa(inner);
          if (l == 0 && t.image.defined()) any_image |= t.image.any().item<bool>();
          const int64_t Lx = x.size(1);
          auto rotated = [&](const at::Tensor& w, const std::optional<at::Tensor>& b,
                             int64_t heads) {
            at::Tensor y = models::nn::linear(x, w, b).view({1, Lx, heads, D}).transpose(1, 2);
            y = models::nn::apply_rotary(y, rope.cos, rope.sin).transpose(1, 2);
            return valid_rows(y.reshape({1, Lx, heads * D}), t).view({-1, heads, D});
          };
          scorer.add(l, rotated(g.q_weight, g.q_bias, H), rotated(g.k_weight, g.k_bias, Hk));
        },
        "MKL scores", progress);
    MLAB_CHECK(any_image, "mha2mla: MKL is the multimodal criterion: the calibration data has no ",
               "image tokens (give samples with images)");
    report.scores = scorer.scores();
  }
  report.score_seconds = seconds_since(start);
  return keep_sets_from_ranks(ranks_from_scores(report.scores), o.rope_dim);
}

// §2.6: the stage-1 layer of a GQA layer for the kept frequencies of `layer`.
std::unique_ptr<MlaAttention> stage1_layer(const GqaAttention& g, const KeepSets& ks,
                                           int64_t layer) {
  auto m = std::make_unique<MlaAttention>();
  m->heads = g.heads;
  m->kv_heads = g.kv_heads;
  m->head_dim = g.head_dim;
  m->rope_dim = ks.rope_dim;
  const auto dev = g.q_weight.device();
  auto idx = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(dev); };
  const at::Tensor qperm = idx(ks.q_permutation(layer, g.heads));
  const at::Tensor krows = idx(ks.k_rope_rows(layer)), nrows = idx(ks.k_nope_rows(layer));
  m->q_weight = g.q_weight.index_select(0, qperm);
  if (g.q_bias) m->q_bias = g.q_bias->index_select(0, qperm);
  m->k_rope_weight = g.k_weight.index_select(0, krows);
  if (g.k_bias) m->k_rope_bias = g.k_bias->index_select(0, krows);
  m->text.up_k = g.k_weight.index_select(0, nrows);
  if (g.k_bias) m->text.k_bias = g.k_bias->index_select(0, nrows);
  m->text.up_v = g.v_weight;
  m->text.v_bias = g.v_bias;
  m->image = m->text;
  m->o_weight = g.o_weight;
  m->o_bias = g.o_bias;
  m->rope_index = MlaAttention::rope_index_for(ks.freqs.at(layer), g.head_dim).to(dev);
  return m;
}

MlaBranch branch_from(const LowRankFactors& f, const MlaBranch& stage1, int64_t k_rows,
                      const at::TensorOptions& opts) {
  MlaBranch b;
  b.down = f.down.to(opts);
  const at::Tensor up = f.up.to(opts);
  b.up_k = up.narrow(0, 0, k_rows).contiguous();
  b.up_v = up.narrow(0, k_rows, up.size(0) - k_rows).contiguous();
  b.k_bias = stage1.k_bias;
  b.v_bias = stage1.v_bias;
  return b;
}

// Our block (--format mlab): the keys the runtime reads, nothing else.
nlohmann::json mlab_block(const models::MlaConfig& m) {
  nlohmann::json j = {{"stage", m.stage},
                      {"rope_dim_for_mla", m.rope_dim},
                      {"partial_rope_version", m.strategy},
                      {"mlab_kept_frequencies", m.kept_frequencies},
                      {"producer", "mla-bench convert"}};
  if (m.stage == 2) {
    j["low_rank"] = m.d_kv;
    j["svd_init_method"] = m.svd_init;
    j["mlab_svd_init"] = m.svd_init;
  }
  return j;
}

// The authors' block (their arguments.py fields, as train_stage1/2.py save them) for `stage`,
// plus our keys. Keep-sets other than high / low / uniform go out as "mkl" with the rank file
// `ranks_file` (written by the caller). Stage 1 omits stage1_path: their llava_hf.py reads any
// stage1_path as a directory to open (their own stage-1 dirs say "none", which it cannot load).
nlohmann::json authors_block(const ConvertReport& report, int stage,
                             const std::filesystem::path& ranks_file,
                             const std::filesystem::path& stage1_dir) {
  const models::MlaConfig& m = report.mla;
  const bool fixed = m.strategy == "high" || m.strategy == "low" || m.strategy == "uniform";
  nlohmann::json j = {{"peft_train", nullptr},
                      {"partial_rope_version", fixed ? m.strategy : "mkl"},
                      {"rope_dim_for_mla", m.rope_dim},
                      {"uniform_start_point", m.strategy == "uniform" ? report.uniform_start : 0},
                      {"qk_tensor_path", fixed ? nlohmann::json(nullptr)
                                               : nlohmann::json(ranks_file.string())},
                      {"svd_init_method", "none"},
                      {"low_rank", 0},
                      {"is_gqa2mha2mla", false},
                      {"svd_init_weight_path", "none"},
                      {"stage", stage},
                      {"mlab_partial_rope", m.strategy},
                      {"mlab_kept_frequencies", m.kept_frequencies},
                      {"producer", "mla-bench convert"}};
  if (stage == 2) {
    // Their "joint" is the joint K/V latent (down_kv, up_k, up_v) of patch_model_stage2_multimodal;
    // our factors are already in the weights, so no svd_init_weight_path (null: they skip it).
    j["svd_init_method"] = "joint";
    j["low_rank"] = m.d_kv;
    j["stage1_path"] = stage1_dir.string();
    j["svd_init_weight_path"] = nullptr;
    j["mlab_svd_init"] = m.svd_init;
  }
  return j;
}

void write_json(const std::filesystem::path& file, const nlohmann::json& j) {
  std::ofstream f(file);
  MLAB_CHECK(f.good(), file.string(), ": cannot write");
  f << j.dump(2) << "\n";
  MLAB_CHECK(f.good(), file.string(), ": cannot write");
}

ConvertReport init_latent(models::Vlm& vlm, const ConvertOptions& o, const Calibration& calibration,
                          const KeepSets& ks, ConvertReport report,
                          const ConvertProgress& progress);

// Ranks whose "rank < r/2" set is `ks` (kept frequencies first, each group ascending):
// i64 [L, n_kv, D/2], for the authors' rank file when no scores or rank file exist.
at::Tensor keep_set_ranks(const KeepSets& ks) {
  const int64_t half = ks.head_dim / 2;
  at::Tensor ranks = at::empty({ks.layers, ks.kv_heads, half}, at::kLong);
  auto acc = ranks.accessor<int64_t, 3>();
  for (int64_t l = 0; l < ks.layers; ++l) {
    for (int64_t g = 0; g < ks.kv_heads; ++g) {
      std::vector<bool> kept(half, false);
      for (auto f : ks.freqs[l][g]) kept[f] = true;
      int64_t next_kept = 0, next_other = static_cast<int64_t>(ks.freqs[l][g].size());
      for (int64_t f = 0; f < half; ++f) acc[l][g][f] = kept[f] ? next_kept++ : next_other++;
    }
  }
  return ranks;
}

// The stage-1 model `vlm` already is (every layer MlaAttention without a latent), or nullopt.
std::optional<models::MlaConfig> stage1_input(const models::Vlm& vlm) {
  auto mla = models::MlaConfig::from_model_config(vlm.config());
  if (!mla) return std::nullopt;
  MLAB_CHECK(mla->stage == 1, "mha2mla: ", vlm.dir().string(),
             " is already a stage-2 MLA model; convert a stage-1 or an MHA/GQA model");
  return mla;
}

ConvertReport convert_impl(models::Vlm& vlm, const ConvertOptions& o,
                           const Calibration& calibration, const ConvertProgress& progress) {
  const auto& c = vlm.config().text;
  ConvertOptions opts = o;
  opts.svd = canonical_svd_init(o.svd);
  ConvertReport report;
  KeepSets ks;
  if (const auto s1 = stage1_input(vlm)) {
    // A stage-1 model (after stage-1 fine-tuning, as the paper's pipeline): its keep-sets are
    // fixed; only the latent is initialised (the authors' run_svd_init.py + train_stage2.py).
    MLAB_CHECK(o.stage == 2, "mha2mla: ", vlm.dir().string(), " is a stage-1 model already");
    opts.rope_dim = s1->rope_dim;
    opts.strategy = "high";  // validated only; the keep-sets come from the model
    check_options(opts, c);
    ks = KeepSets{c.num_hidden_layers, c.num_key_value_heads, c.head_dim, s1->rope_dim,
                  s1->kept_frequencies};
    ks.validate();
    report.mla = *s1;
    report.ranks = keep_set_ranks(ks);
    report.uniform_start =
        vlm.config().raw["mha2mla"].value("uniform_start_point", nlohmann::json(0)).is_number_integer()
            ? vlm.config().raw["mha2mla"]["uniform_start_point"].get<int64_t>()
            : 0;
  } else {
    check_options(opts, c);
    ks = choose_keep_sets(vlm, opts, calibration, report, progress);
    auto& layers = vlm.decoder().layers();
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      layers[l].attention = stage1_layer(as_gqa(*layers[l].attention), ks, l);
    }
    report.mla.stage = 1;
    report.mla.rope_dim = opts.rope_dim;
    report.mla.strategy =
        o.ranks.empty() ? opts.strategy : "ranks:" + o.ranks.filename().string();
    report.mla.kept_frequencies = ks.freqs;
    report.ranks = report.scores.defined() ? ranks_from_scores(report.scores)
                   : !o.ranks.empty()      ? models::read_rank_tensor(o.ranks)
                                           : keep_set_ranks(ks);
    report.uniform_start = opts.uniform_start;
  }
  if (o.stage == 1) return report;
  return init_latent(vlm, opts, calibration, ks, std::move(report), progress);
}

}  // namespace

std::string canonical_svd_init(const std::string& name) {
  if (name == "joint") {
    std::fprintf(stderr,
                 "mha2mla: --svd joint is now called 'activation' (activation-aware SVD of both "
                 "modalities together); the authors' svd_init_method 'joint' is plain weight "
                 "SVD, here 'weight'\n");
    return "activation";
  }
  return name;
}

ConvertReport convert_to_mla(models::Vlm& vlm, const ConvertOptions& o,
                             std::span<const models::VlmRequest> calibration,
                             const ConvertProgress& progress) {
  return convert_impl(vlm, o, Calibration{calibration, {}}, progress);
}

ConvertReport convert_to_mla_with_inputs(models::Vlm& vlm, const ConvertOptions& o,
                                         std::span<const models::VlmInputs> calibration,
                             const ConvertProgress& progress) {
  return convert_impl(vlm, o, Calibration{{}, calibration}, progress);
}

namespace {

ConvertReport init_latent(models::Vlm& vlm, const ConvertOptions& o, const Calibration& calibration,
                          const KeepSets& ks, ConvertReport report,
                          const ConvertProgress& progress) {
  const auto& c = vlm.config().text;
  auto& layers = vlm.decoder().layers();
  const int64_t L = c.num_hidden_layers, Hk = c.num_key_value_heads, D = c.head_dim,
                E = c.hidden_size, r = ks.rope_dim;
  report.mla.stage = 2;
  report.mla.d_kv = o.d_kv;
  report.mla.svd_init = o.svd;
  const int64_t dc = Hk * o.d_kv;

  // Calibration on the stage-1 model (§3.4): second moments of the K/V input per modality.
  std::vector<at::Tensor> s_img, s_txt, s_all;
  if (o.svd != "weight") {
    MLAB_CHECK(!calibration.empty(), "mha2mla: SVD init '", o.svd,
               "' is activation-aware: give calibration data (--calib)");
    const auto start = Clock::now();
    const auto f64 = at::TensorOptions().dtype(at::kDouble).device(layers[0].input_norm.device());
    for (int64_t l = 0; l < L; ++l) {
      s_img.push_back(at::zeros({E, E}, f64));
      s_txt.push_back(at::zeros({E, E}, f64));
    }
    run_calibration(
        vlm, calibration,
        [&](int64_t l, const AttentionLayer&, const at::Tensor& x, const models::RopeTables&,
            const models::TokenInfo& t) {
          const at::Tensor xs = valid_rows(x, t);
          at::Tensor img = t.image.defined() ? t.image.select(0, 0)
                                             : at::zeros({x.size(1)}, x.options().dtype(at::kBool));
          if (t.valid.defined()) img = img.index({t.valid.select(0, 0)});
          const at::Tensor xi = xs.index({img}), xt = xs.index({img.logical_not()});
          s_img[l] += second_moment(xi);
          s_txt[l] += second_moment(xt);
          if (l == 0) {
            report.image_tokens += xi.size(0);
            report.text_tokens += xt.size(0);
          }
        },
        "MD-SVD calibration", progress);
    report.calibration_samples = static_cast<int64_t>(calibration.size());
    report.calibration_seconds = seconds_since(start);
    MLAB_CHECK(o.svd != "md" || report.image_tokens > 0, "mha2mla: MD-SVD needs image tokens in ",
               "the calibration data (got ", report.text_tokens, " text tokens only)");
    // The authors' normalisation (run_svd_init.py): S_m / (tokens of modality m, all samples) /
    // samples. The product up * down does not depend on it, the factors' scale does (about
    // (N_m * samples)^(1/4)), and with it stage-2 fine-tuning with Adam.
    const double n = static_cast<double>(report.calibration_samples);
    const double ni = static_cast<double>(report.image_tokens) * n,
                 nt = static_cast<double>(report.text_tokens) * n;
    for (int64_t l = 0; l < L; ++l) {
      // "activation": one factorisation of the whole calibration distribution (raw sums / N).
      s_all.push_back((s_img[l] + s_txt[l]) / (ni + nt));
      if (ni > 0) s_img[l] /= ni;
      if (nt > 0) s_txt[l] /= nt;
    }
  }

  const auto start = Clock::now();
  for (int64_t l = 0; l < L; ++l) {
    auto& m = dynamic_cast<MlaAttention&>(*layers[l].attention);
    const at::Tensor w = at::cat({m.text.up_k, m.text.up_v}, 0);  // [n_kv (2D - r), E]
    const auto opts = w.options();
    const int64_t k_rows = Hk * (D - r);
    const MlaBranch stage1 = m.text;
    if (o.svd == "weight") {
      const auto f = weight_svd(w, dc);
      m.text = branch_from(f, stage1, k_rows, opts);
      m.image = m.text;
    } else {
      const auto joint = activation_svd(w, s_all[l], dc, o.eig_eps);
      const auto plain = weight_svd(w, dc);
      LayerLoss loss;
      loss.layer = l;
      const auto wd = w.to(at::kDouble);
      loss.energy_image = at::matmul(at::matmul(wd, s_img[l]), wd.t()).trace().item<double>();
      loss.energy_text = at::matmul(at::matmul(wd, s_txt[l]), wd.t()).trace().item<double>();
      loss.joint_image = activation_loss(w, joint, s_img[l]);
      loss.joint_text = activation_loss(w, joint, s_txt[l]);
      loss.weight_image = activation_loss(w, plain, s_img[l]);
      loss.weight_text = activation_loss(w, plain, s_txt[l]);
      if (o.svd == "md") {
        const bool has_img = s_img[l].abs().max().item<double>() > 0;
        const auto fi = has_img ? activation_svd(w, s_img[l], dc, o.eig_eps) : joint;
        const auto ft = activation_svd(w, s_txt[l], dc, o.eig_eps);
        loss.split_image = activation_loss(w, fi, s_img[l]);
        loss.split_text = activation_loss(w, ft, s_txt[l]);
        m.text = branch_from(ft, stage1, k_rows, opts);
        m.image = branch_from(fi, stage1, k_rows, opts);
      } else {
        loss.split_image = loss.joint_image;
        loss.split_text = loss.joint_text;
        m.text = branch_from(joint, stage1, k_rows, opts);
        m.image = m.text;
      }
      report.losses.push_back(loss);
    }
    if (progress) progress("SVD init", l + 1, L);
  }
  report.svd_seconds = seconds_since(start);
  return report;
}

}  // namespace

SaveFormat parse_save_format(const std::string& name) {
  if (name == "authors") return SaveFormat::kAuthors;
  if (name == "mlab") return SaveFormat::kMlab;
  MLAB_FAIL("convert: unknown --format '", name, "' (expected authors or mlab)");
}

void save_converted(const models::Vlm& vlm, const ConvertReport& report,
                    const std::filesystem::path& out, SaveFormat format) {
  namespace fs = std::filesystem;
  const fs::path src = vlm.dir();
  MLAB_CHECK(fs::absolute(src) != fs::absolute(out),
             "convert: --out must differ from the model dir");
  fs::create_directories(out);
  for (const auto& entry : fs::directory_iterator(src)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "config.json" ||
        name.find(".safetensors") != std::string::npos) {
      continue;
    }
    fs::copy_file(entry.path(), out / name, fs::copy_options::overwrite_existing);
  }
  // config.json: the source's, plus the mha2mla block.
  nlohmann::json config = vlm.config().raw;
  if (format == SaveFormat::kMlab) {
    config["mha2mla"] = mlab_block(report.mla);
  } else {
    // Absolute paths, as their code opens them from its working directory.
    const fs::path abs_out = fs::absolute(out).lexically_normal();
    const fs::path ranks_file = abs_out / "mha2mla_ranks.pth";
    const fs::path stage1_dir = abs_out / "stage1";
    const std::string& st = report.mla.strategy;
    if (st != "high" && st != "low" && st != "uniform") {
      MLAB_CHECK(report.ranks.defined(), "convert: no ranks for the keep-sets");
      models::write_authors_rank_file(report.ranks, ranks_file);
    }
    if (report.mla.stage == 2) {
      // Their stage-2 loaders build the stage-1 model from stage1_path's config.json first.
      fs::create_directories(stage1_dir);
      nlohmann::json s1 = vlm.config().raw;
      s1.erase("mha2mla");
      s1["mha2mla"] = authors_block(report, 1, ranks_file, stage1_dir);
      write_json(stage1_dir / "config.json", s1);
    }
    config["mha2mla"] = authors_block(report, report.mla.stage, ranks_file, stage1_dir);
  }
  write_json(out / "config.json", config);
  // Tensors: the source's (canonical names) minus the converted attention, plus the new ones.
  const models::Checkpoint ck = models::Checkpoint::open(src);
  const auto family = vlm.config().family;
  const bool qwen = family == models::ModelFamily::kQwen2_5_VL;
  const std::string layer_prefix = qwen ? "model.layers." : "language_model.model.layers.";
  c10::ScalarType stored = at::kFloat;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& name : ck.names()) {
    const std::string canonical = models::canonical_weight_name(family, name);
    // Every attention tensor of the decoder is rewritten below (the source's q/k/v/o_proj, or a
    // stage-1 source's k_r_proj and kv_proj.*).
    if (canonical.rfind(layer_prefix, 0) == 0 &&
        canonical.find(".self_attn.") != std::string::npos) {
      continue;
    }
    at::Tensor t = ck.get(name);
    if (at::isFloatingType(t.scalar_type())) stored = t.scalar_type();
    tensors.emplace_back(canonical, t);
  }
  const auto& layers = vlm.decoder().layers();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& m = dynamic_cast<const MlaAttention&>(*layers[l].attention);
    const std::string p = layer_prefix + std::to_string(l) + ".self_attn.";
    auto put = [&](const std::string& name, const at::Tensor& t) {
      tensors.emplace_back(p + name, t.to(at::kCPU, stored).contiguous());
    };
    auto put_opt = [&](const std::string& name, const std::optional<at::Tensor>& t) {
      if (t) put(name, *t);
    };
    put("q_proj.weight", m.q_weight);
    put_opt("q_proj.bias", m.q_bias);
    put("k_r_proj.weight", m.k_rope_weight);
    put_opt("k_r_proj.bias", m.k_rope_bias);
    put("o_proj.weight", m.o_weight);
    put_opt("o_proj.bias", m.o_bias);
    auto put_branch = [&](const std::string& b, const MlaBranch& br) {
      if (br.down) put(b + "down_kv.weight", *br.down);
      put(b + "up_k.weight", br.up_k);
      put_opt(b + "up_k.bias", br.k_bias);
      put(b + "up_v.weight", br.up_v);
      put_opt(b + "up_v.bias", br.v_bias);
    };
    if (report.mla.stage == 1) {
      put_branch("kv_proj.", m.text);
    } else {
      put_branch("kv_proj_img.", m.image);
      put_branch("kv_proj_text.", m.text);
    }
  }
  models::save_checkpoint(out, tensors, {{"format", "pt"}, {"producer", "mla-bench convert"}},
                          5ull << 30);
}

}  // namespace mlab::methods
