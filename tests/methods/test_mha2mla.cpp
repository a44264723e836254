// MHA2MLA-VLM conversion and latent inference on the tiny fixture VLMs (F6 acceptance 1, 2, 4, 5,
// 7): full-rank conversion reproduces the model, stage 1 equals the model with RoPE removed on the
// dropped pairs, absorbed latent decode equals K/V reconstruction, MD-SVD is exact at full rank and
// never worse than the joint factorisation (Theorem 2.1), MKL vs 2-norm on a hand-built case.
#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"
#include "methods/kv_memory.hpp"
#include "methods/mha2mla/md_svd.hpp"
#include "methods/mha2mla/mha2mla_converter.hpp"
#include "methods/mha2mla/mkl_scorer.hpp"
#include "methods/mha2mla/partial_rope.hpp"
#include "models/nn/nn.hpp"
#include "models/runtime/gqa_attention.hpp"
#include "models/runtime/latent_kv_cache.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/image/image_test_support.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/vlm/vlm_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using mlab::methods::ConvertOptions;
using mlab::models::Vlm;

fs::path tiny(const std::string& f) { return mlab::test::tiny_vlm_dir() / f; }
const std::vector<std::string>& families() { return mlab::test::vlm_families(); }
using mlab::test::rel_diff;
using mlab::test::report;

// Calibration / evaluation prompts: images of the fixture with questions, and one text-only.
std::vector<mlab::models::VlmRequest> requests(bool with_text_only = true) {
  std::vector<mlab::models::VlmRequest> r;
  r.push_back(mlab::models::VlmRequest::single("What is in the image?",
                                               {mlab::test::pillow_input("large.jpg")}));
  r.push_back(mlab::models::VlmRequest::single("Describe the colors in detail, please.",
                                               {mlab::test::pillow_input("tall.png")}));
  r.push_back(
      mlab::models::VlmRequest::single("Is it gray?", {mlab::test::pillow_input("gray.png")}));
  if (with_text_only) r.push_back(mlab::models::VlmRequest::single("Tell me a story about a dog."));
  return r;
}

at::Tensor prefill_logits(const Vlm& vlm, const mlab::models::VlmInputs& in) {
  mlab::models::PrefillOptions po;
  po.all_logits = true;
  return vlm.prefill(in, po).logits;
}

// The original layer with RoPE kept only on the given frequencies of each KV head (the reference
// of stage 1: specs/method.md §2.6 "unit test for the harness"): cos = 1, sin = 0 elsewhere.
class MaskedRopeAttention final : public mlab::models::AttentionLayer {
 public:
  MaskedRopeAttention(std::unique_ptr<mlab::models::AttentionLayer> inner,
                      const std::vector<std::vector<int64_t>>& kept)
      : inner_(std::move(inner)) {
    const auto& g = dynamic_cast<const mlab::models::GqaAttention&>(*inner_);
    keep_ = at::zeros({g.kv_heads, g.head_dim}, at::kBool);
    for (std::size_t h = 0; h < kept.size(); ++h) {
      for (auto f : kept[h]) {
        keep_[h][f] = true;
        keep_[h][f + g.head_dim / 2] = true;
      }
    }
  }
  at::Tensor forward(const at::Tensor& x, const mlab::models::RopeTables& rope,
                     const mlab::models::TokenInfo& tokens,
                     mlab::models::KvCache& cache) const override {
    const auto& g = dynamic_cast<const mlab::models::GqaAttention&>(*inner_);
    const int64_t B = x.size(0), L = x.size(1), D = g.head_dim, G = g.heads / g.kv_heads;
    auto heads = [&](const at::Tensor& t, int64_t h) {
      return t.view({B, L, h, D}).transpose(1, 2);
    };
    const auto kmask = keep_.view({1, g.kv_heads, 1, D});
    const auto qmask = keep_.repeat_interleave(G, 0).view({1, g.heads, 1, D});
    auto rot = [&](const at::Tensor& t, const at::Tensor& m) {
      return mlab::models::nn::apply_rotary(t, at::where(m, rope.cos, at::ones_like(rope.cos)),
                                            at::where(m, rope.sin, at::zeros_like(rope.sin)));
    };
    const auto q = rot(heads(mlab::models::nn::linear(x, g.q_weight, g.q_bias), g.heads), qmask);
    const auto k = rot(heads(mlab::models::nn::linear(x, g.k_weight, g.k_bias), g.kv_heads), kmask);
    const auto v = heads(mlab::models::nn::linear(x, g.v_weight, g.v_bias), g.kv_heads);
    cache.append(k, v, tokens.valid);
    const auto o = cache.attend(q, 1.0 / std::sqrt(double(D)));
    return mlab::models::nn::linear(o.transpose(1, 2).reshape({B, L, g.heads * D}), g.o_weight,
                                    g.o_bias);
  }
  std::unique_ptr<mlab::models::KvCache> make_cache(mlab::models::AttentionImpl impl,
                                                    int64_t n) const override {
    return inner_->make_cache(impl, n);
  }

 private:
  std::unique_ptr<mlab::models::AttentionLayer> inner_;
  at::Tensor keep_;  // bool [H_kv, D]
};

void set_decode(Vlm& vlm, mlab::models::MlaDecode mode) {
  for (auto& layer : vlm.decoder().layers()) {
    dynamic_cast<mlab::models::MlaAttention&>(*layer.attention).decode = mode;
  }
}

}  // namespace

TEST_CASE(
    "mha2mla: keeping every frequency at full rank reproduces the model, also after save + load",
    "[mha2mla]") {
  for (const auto& family : families()) {
    INFO(family);
    Vlm vlm = Vlm::load(tiny(family));
    const auto reqs = requests();
    const auto in = vlm.prepare(reqs);  // left-padded batch: images and a text-only prompt
    const at::Tensor before = prefill_logits(vlm, in);
    const auto& t = vlm.config().text;
    ConvertOptions o;
    o.strategy = "high";
    o.rope_dim = t.head_dim;  // all frequencies
    o.d_kv = t.head_dim;      // d_c = n_kv * D = rank of [W_k_nope; W_v]
    o.svd = "weight";
    const auto rep = mlab::methods::convert_to_mla(vlm, o, {});
    const double d = rel_diff(prefill_logits(vlm, in), before);
    report(family + " full-rank MLA vs original logits", d);
    CHECK(d <= 1e-4);
    const fs::path out = mlab::test::scratch_dir("mha2mla_full_" + family);
    mlab::methods::save_converted(vlm, rep, out);
    const Vlm reloaded = Vlm::load(out);
    CHECK(rel_diff(prefill_logits(reloaded, in), before) <= 1e-4);
  }
}

TEST_CASE("mha2mla: stage 1 equals the original model with RoPE removed on the dropped pairs",
          "[mha2mla]") {
  for (const auto& family : families()) {
    for (const std::string strategy : {"high", "uniform", "2norm"}) {
      INFO(family << " " << strategy);
      Vlm converted = Vlm::load(tiny(family));
      Vlm reference = Vlm::load(tiny(family));
      const auto reqs = requests();
      ConvertOptions o;
      o.strategy = strategy;
      o.rope_dim = 4;  // 2 of the 8 frequencies of the tiny heads
      o.stage = 1;
      const auto rep = mlab::methods::convert_to_mla(converted, o, reqs);
      auto& layers = reference.decoder().layers();
      for (std::size_t l = 0; l < layers.size(); ++l) {
        layers[l].attention = std::make_unique<MaskedRopeAttention>(std::move(layers[l].attention),
                                                                    rep.mla.kept_frequencies[l]);
      }
      const auto in = converted.prepare(reqs);
      const double d = rel_diff(prefill_logits(converted, in), prefill_logits(reference, in));
      report(family + " " + strategy + " stage 1 vs masked-RoPE original", d);
      CHECK(d <= 1e-4);
      // Partial RoPE does change the model (the check above is not vacuous).
      CHECK(rel_diff(prefill_logits(converted, in), prefill_logits(Vlm::load(tiny(family)), in)) >
            1e-3);
    }
  }
}

TEST_CASE(
    "mha2mla: absorbed latent decode equals K/V reconstruction (batched, padded, image + text)",
    "[mha2mla]") {
  for (const auto& family : families()) {
    INFO(family);
    Vlm vlm = Vlm::load(tiny(family));
    const auto reqs = requests();
    ConvertOptions o;
    o.strategy = "2norm";
    o.rope_dim = 4;
    o.d_kv = 4;
    o.svd = "md";
    mlab::methods::convert_to_mla(vlm, o, reqs);
    const auto in = vlm.prepare(reqs);
    auto absorbed = vlm.prefill(in);
    auto rebuilt = vlm.prefill(in);
    at::Tensor tokens = absorbed.last_logits.argmax(-1);
    double worst = 0, worst_abs = 0;
    for (int step = 0; step < 6; ++step) {
      set_decode(vlm, mlab::models::MlaDecode::kAbsorbed);
      const at::Tensor a = vlm.decode_step(absorbed, tokens);
      set_decode(vlm, mlab::models::MlaDecode::kReconstruct);
      const at::Tensor r = vlm.decode_step(rebuilt, tokens);
      worst = std::max(worst, (a - r).abs().max().item<double>() / r.abs().max().item<double>());
      worst_abs = std::max(worst_abs, (a - r).abs().max().item<double>());
      tokens = r.argmax(-1);
    }
    report(family + " absorbed vs reconstructed decode logits", worst);
    report(family + " absorbed vs reconstructed decode max |diff|", worst_abs);
    CHECK(worst <= 1e-5);
    CHECK(worst_abs <= 1e-5);
    // The cache holds the latent: bytes = B * S * (d_c + n_kv r) * 4 (f32).
    const auto& t = vlm.config().text;
    const int64_t S = in.input_ids.size(1) + 6, B = in.input_ids.size(0);
    CHECK(absorbed.caches[0]->bytes() ==
          B * S * (t.num_key_value_heads * (o.d_kv + o.rope_dim)) * 4);
    // ... which is the analytic E_MLA of methods/kv_memory (f32: 32-bit elements), all layers.
    const auto analytic = mlab::methods::kv_memory(
        vlm.config(), mlab::methods::parse_method_stack("mha2mla:d_kv=4,rope_dim=4"), S, 32);
    int64_t measured = 0;
    for (const auto& cache : absorbed.caches) measured += cache->bytes();
    CHECK(static_cast<double>(measured) == Approx(analytic.total_bytes_nominal * B));
    // The dense cache of the original model: E_orig, likewise.
    const Vlm dense = Vlm::load(tiny(family));
    const auto ds = dense.prefill(in);
    int64_t dense_bytes = 0;
    for (const auto& cache : ds.caches) dense_bytes += cache->bytes();
    const auto full = mlab::methods::kv_memory(
        dense.config(), mlab::methods::parse_method_stack("full"), in.input_ids.size(1), 32);
    CHECK(static_cast<double>(dense_bytes) == Approx(full.total_bytes_nominal * B));
  }
}

TEST_CASE("mha2mla: MD-SVD is exact at full rank and split loss <= joint loss per layer",
          "[mha2mla]") {
  at::manual_seed(11);
  const auto w = at::randn({24, 16}, at::kDouble);
  const auto x = at::randn({16, 200}, at::kDouble);
  const auto s = at::matmul(x, x.t());
  const auto f = mlab::methods::activation_svd(w, s, 16);
  CHECK((at::matmul(at::matmul(f.up, f.down), x) - at::matmul(w, x)).abs().max().item<double>() <
        1e-9);
  // Algorithm 1 of the paper, literally (SVD of S, D = W U_s S^1/2, SVD of D, f64): the same W'.
  {
    auto [us, ss, vsh] = at::linalg_svd(s, false);
    auto [ud, sd, vdh] = at::linalg_svd(at::matmul(w, us * ss.sqrt()), false);
    const int64_t r = 6;
    const auto up = ud.narrow(1, 0, r) * sd.narrow(0, 0, r).sqrt();
    const auto down = at::matmul(
        sd.narrow(0, 0, r).sqrt().unsqueeze(1) * vdh.narrow(0, 0, r) / ss.sqrt(), at::inverse(us));
    const auto ours = mlab::methods::activation_svd(w, s, r);
    CHECK((at::matmul(ours.up, ours.down) - at::matmul(up, down)).abs().max().item<double>() <
          1e-9);
    CHECK((at::matmul(ours.up.t(), ours.up) - at::matmul(up.t(), up)).abs().max().item<double>() <
          1e-8);
  }
  // The plain SVD keeps MHA2MLA's convention: down = V_R^T has orthonormal rows.
  {
    const auto pw = mlab::methods::weight_svd(w, 6);
    CHECK((at::matmul(pw.down, pw.down.t()) - at::eye(6, at::kDouble)).abs().max().item<double>() <
          1e-9);
  }
  // Lower rank: the activation-aware factors beat the plain SVD on the activation loss.
  const auto a = mlab::methods::activation_svd(w, s, 6);
  const auto p = mlab::methods::weight_svd(w, 6);
  CHECK(mlab::methods::activation_loss(w, a, s) <= mlab::methods::activation_loss(w, p, s));
  for (const auto& family : families()) {
    INFO(family);
    Vlm vlm = Vlm::load(tiny(family));
    ConvertOptions o;
    o.strategy = "high";
    o.rope_dim = 4;
    o.d_kv = 4;
    o.svd = "md";
    const auto rep = mlab::methods::convert_to_mla(vlm, o, requests());
    REQUIRE(rep.losses.size() == static_cast<std::size_t>(vlm.config().text.num_hidden_layers));
    CHECK(rep.image_tokens > 0);
    CHECK(rep.text_tokens > 0);
    for (const auto& l : rep.losses) {
      CHECK(l.split_image <= l.joint_image * (1 + 1e-9));
      CHECK(l.split_text <= l.joint_text * (1 + 1e-9));
      CHECK(l.joint_image + l.joint_text <= l.weight_image + l.weight_text);
      report(family + " layer " + std::to_string(l.layer) + " split/joint",
             (l.split_image + l.split_text) / (l.joint_image + l.joint_text));
    }
  }
}

TEST_CASE("mha2mla: MKL vs 2-norm on a hand-built case, deterministic on a fixture", "[mha2mla]") {
  // One head, D = 4 (frequencies 0 and 1). Frequency 0: large q/k norms, but every key carries the
  // same frequency-0 component and the positions are all 0 => its score term is the same for
  // every key: ablating it leaves the softmax unchanged (KL 0). Frequency 1: small norms that
  // differ between keys => ablating it changes the distribution. 2-norm prefers 0, MKL 1.
  const int64_t T = 6;
  at::Tensor q = at::zeros({T, 1, 4}), k = at::zeros({T, 1, 4});
  q.select(2, 0).fill_(10.0);  // dims 0 and 2 = frequency 0
  k.select(2, 0).fill_(10.0);
  for (int64_t t = 0; t < T; ++t) {
    q[t][0][1] = 0.5;
    k[t][0][1] = 0.3 * static_cast<double>(t);  // frequency 1 (dims 1 and 3) separates the keys
  }
  mlab::methods::MklScorer mkl(1, 1, 1, 4, 16);
  mkl.add(0, q, k);
  const at::Tensor s = mkl.scores();
  CHECK(s[0][0][0].item<double>() < 1e-9);
  CHECK(s[0][0][1].item<double>() > 1e-3);
  mlab::methods::TwoNormScorer two(1, 1, 1, 4);
  two.add(0, q, k);
  const at::Tensor n = two.scores();
  CHECK(n[0][0][0].item<double>() > n[0][0][1].item<double>());
  // On a fixture: two MKL conversions give identical keep-sets.
  const auto reqs = requests(false);
  ConvertOptions o;
  o.strategy = "mkl";
  o.rope_dim = 4;
  o.stage = 1;
  Vlm a = Vlm::load(tiny("qwen2_5_vl")), b = Vlm::load(tiny("qwen2_5_vl"));
  const auto ra = mlab::methods::convert_to_mla(a, o, reqs),
             rb = mlab::methods::convert_to_mla(b, o, reqs);
  CHECK(ra.mla.kept_frequencies == rb.mla.kept_frequencies);
  CHECK(ra.scores.equal(rb.scores));
}

TEST_CASE("mha2mla: bad conversion options are rejected with clear messages", "[mha2mla][errors]") {
  Vlm vlm = Vlm::load(tiny("llava_next"));
  ConvertOptions o;
  o.rope_dim = 4;
  o.d_kv = 64;  // n_kv = 2: [W_k_nope; W_v] has rank <= 2 * (32 - 4) = 56 < 2 * 64
  o.svd = "weight";
  o.strategy = "high";
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, {}),
                    Catch::Contains("d_kv 64 must be in [1, 28]"));
  o.d_kv = 4;
  o.strategy = "fourier";
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, {}), Catch::Contains("fourier"));
  o.strategy = "mkl";
  const auto text_only =
      std::vector<mlab::models::VlmRequest>{mlab::models::VlmRequest::single("Hello there.")};
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, text_only),
                    Catch::Contains("no image tokens"));
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, {}), Catch::Contains("--calib"));
  o.strategy = "high";
  o.svd = "md";
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, text_only),
                    Catch::Contains("MD-SVD needs image tokens"));
  o.rope_dim = 5;
  CHECK_THROWS_WITH(mlab::methods::convert_to_mla(vlm, o, {}), Catch::Contains("rope_dim 5"));
}
