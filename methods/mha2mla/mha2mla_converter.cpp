#include "methods/mha2mla/mha2mla_converter.hpp"

#include <ATen/ATen.h>

#include <chrono>
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

using LayerHook =
    std::function<void(int64_t layer, const AttentionLayer& inner, const at::Tensor& x,
                       const models::RopeTables&, const models::TokenInfo&)>;

// Runs every calibration request (one at a time) through `vlm` with `hook` on every layer.
void run_calibration(models::Vlm& vlm, std::span<const models::VlmRequest> requests,
                     const LayerHook& hook, const std::string& stage,
                     const ConvertProgress& progress) {
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
  try {
    // Tokenising and image preprocessing (CPU) of request n + 1 overlap the forward of request n.
    auto prepare = [&vlm, requests](std::size_t n) { return vlm.prepare(requests.subspan(n, 1)); };
    std::future<models::VlmInputs> next;
    if (!requests.empty()) next = std::async(std::launch::async, prepare, std::size_t{0});
    for (std::size_t n = 0; n < requests.size(); ++n) {
      const models::VlmInputs inputs = next.get();
      if (n + 1 < requests.size()) next = std::async(std::launch::async, prepare, n + 1);
      vlm.prefill(inputs);
      if (progress)
        progress(stage, static_cast<int64_t>(n + 1), static_cast<int64_t>(requests.size()));
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
  MLAB_CHECK(o.svd == "md" || o.svd == "joint" || o.svd == "weight", "mha2mla: unknown SVD init '",
             o.svd, "' (expected md, joint or weight)");
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
                          std::span<const models::VlmRequest> calibration, ConvertReport& report,
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
    const auto subset =
        o.mkl_samples > 0 && static_cast<std::size_t>(o.mkl_samples) < calibration.size()
            ? calibration.subspan(0, static_cast<std::size_t>(o.mkl_samples))
            : calibration;
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

nlohmann::json mla_json(const models::MlaConfig& m) {
  nlohmann::json j = {{"stage", m.stage},
                      {"rope_dim_for_mla", m.rope_dim},
                      {"partial_rope_version", m.strategy},
                      {"mlab_kept_frequencies", m.kept_frequencies},
                      {"producer", "mla-bench convert"}};
  if (m.stage == 2) {
    j["low_rank"] = m.d_kv;
    j["svd_init_method"] = m.svd_init;
  }
  return j;
}

}  // namespace

ConvertReport convert_to_mla(models::Vlm& vlm, const ConvertOptions& o,
                             std::span<const models::VlmRequest> calibration,
                             const ConvertProgress& progress) {
  const auto& c = vlm.config().text;
  check_options(o, c);
  ConvertReport report;
  const KeepSets ks = choose_keep_sets(vlm, o, calibration, report, progress);
  const int64_t L = c.num_hidden_layers, Hk = c.num_key_value_heads, D = c.head_dim,
                E = c.hidden_size, r = o.rope_dim;
  auto& layers = vlm.decoder().layers();
  for (int64_t l = 0; l < L; ++l) {
    layers[l].attention = stage1_layer(as_gqa(*layers[l].attention), ks, l);
  }
  report.mla.stage = o.stage;
  report.mla.rope_dim = r;
  report.mla.strategy = o.ranks.empty() ? o.strategy : "ranks:" + o.ranks.filename().string();
  report.mla.kept_frequencies = ks.freqs;
  if (o.stage == 1) return report;
  report.mla.d_kv = o.d_kv;
  report.mla.svd_init = o.svd;
  const int64_t dc = Hk * o.d_kv;

  // Calibration on the stage-1 model (§3.4): second moments of the K/V input per modality.
  std::vector<at::Tensor> s_img, s_txt;
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
      const at::Tensor s_joint = s_img[l] + s_txt[l];
      const auto joint = activation_svd(w, s_joint, dc, o.eig_eps);
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

void save_converted(const models::Vlm& vlm, const ConvertReport& report,
                    const std::filesystem::path& out) {
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
  config["mha2mla"] = mla_json(report.mla);
  {
    std::ofstream f(out / "config.json");
    MLAB_CHECK(f.good(), (out / "config.json").string(), ": cannot write");
    f << config.dump(2) << "\n";
  }
  // Tensors: the source's (canonical names) minus the converted attention, plus the new ones.
  const models::Checkpoint ck = models::Checkpoint::open(src);
  const auto family = vlm.config().family;
  const bool qwen = family == models::ModelFamily::kQwen2_5_VL;
  const std::string layer_prefix = qwen ? "model.layers." : "language_model.model.layers.";
  c10::ScalarType stored = at::kFloat;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& name : ck.names()) {
    const std::string canonical = models::canonical_weight_name(family, name);
    if (canonical.rfind(layer_prefix, 0) == 0 &&
        (canonical.find(".self_attn.q_proj.") != std::string::npos ||
         canonical.find(".self_attn.k_proj.") != std::string::npos ||
         canonical.find(".self_attn.v_proj.") != std::string::npos ||
         canonical.find(".self_attn.o_proj.") != std::string::npos)) {
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
