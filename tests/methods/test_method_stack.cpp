// The method plugin layer (F7): the QuantizedCache schedule of QuantizedKvCache and of the
// quantized MLA latent (specs/baselines.md §2.4, §7 T6) with a stand-in quantizer, method
// specs and stacks through the registry, the per-layer caches a stack builds, and the registry
// rule (every methods/*/ folder registered, every registered method tested).
#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "methods/kv_method.hpp"
#include "methods/registry.hpp"
#include "models/runtime/dense_kv_cache.hpp"
#include "models/runtime/latent_kv_cache.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/quantized_kv_cache.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mlab::models::AttentionImpl;
using mlab::models::LatentKvCache;
using mlab::models::QuantizedKvCache;

fs::path source_dir() { return mlab::test::data_dir().parent_path().parent_path(); }

// A stand-in format: values rounded to multiples of 1/4 (so "quantized" differs from the input
// and re-quantizing a reconstruction is exact), 1 byte per element; counts its calls.
class QuarterQuantizer final : public mlab::models::Quantizer {
 public:
  struct Block final : mlab::models::QuantizedTensor {
    at::Tensor values;
    at::Tensor dequantize() const override { return values; }
    int64_t bytes() const override { return values.numel(); }
  };
  std::unique_ptr<mlab::models::QuantizedTensor> quantize(const at::Tensor& t) const override {
    ++calls;
    auto b = std::make_unique<Block>();
    b->values = quarter(t);
    return b;
  }
  int bits() const override { return 8; }
  std::string describe() const override { return "quarter"; }
  static at::Tensor quarter(const at::Tensor& t) { return (t * 4).round() / 4; }
  mutable int calls = 0;
};

at::Tensor brute(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  const int64_t rep = q.size(1) / k.size(1), L = q.size(2), S = k.size(2);
  const auto kk = k.to(at::kDouble).repeat_interleave(rep, 1);
  const auto vv = v.to(at::kDouble).repeat_interleave(rep, 1);
  auto s = at::matmul(q.to(at::kDouble), kk.transpose(-1, -2)) * scale;
  const auto allowed = at::ones({L, S}, at::kBool).tril(S - L);
  s = s.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return at::matmul(at::softmax(s, -1), vv);
}

}  // namespace

TEST_CASE("QuantizedKvCache follows transformers' QuantizedCache schedule (T6)",
          "[methods][method:quanto][method:hqq]") {
  // P = 5, R = 4: after decode step j (Q, residual) = (5,1) (5,2) (5,3) (9,0) (9,1) (9,2) (9,3)
  // (13,0) (13,1); the prefill is attended unquantized, every later step over
  // cat(dequantize(Q), residual, new).
  at::manual_seed(3);
  const int64_t B = 1, H = 4, Hkv = 2, D = 8, P = 5, R = 4;
  const double scale = 1.0 / std::sqrt(8.0);
  auto quant = std::make_shared<QuarterQuantizer>();
  QuantizedKvCache cache(quant, quant, R, AttentionImpl::kEager);
  const auto k0 = at::randn({B, Hkv, P, D}), v0 = at::randn({B, Hkv, P, D});
  const auto q0 = at::randn({B, H, P, D});
  cache.append(k0, v0, at::Tensor());
  CHECK((cache.attend(q0, scale).to(at::kDouble) - brute(q0, k0, v0, scale))
            .abs()
            .max()
            .item<double>() < 1e-6);
  CHECK(cache.quantized_tokens() == P);
  CHECK(cache.residual_tokens() == 0);
  // The reference state: stored keys (quantized part reconstructed) and the residual.
  at::Tensor ref_k = QuarterQuantizer::quarter(k0), ref_v = QuarterQuantizer::quarter(v0);
  int64_t ref_q = P;
  at::Tensor res_k = at::zeros({B, Hkv, 0, D}), res_v = at::zeros({B, Hkv, 0, D});
  const std::vector<std::pair<int64_t, int64_t>> expected = {
      {5, 1}, {5, 2}, {5, 3}, {9, 0}, {9, 1}, {9, 2}, {9, 3}, {13, 0}, {13, 1}};
  for (int64_t j = 1; j <= 9; ++j) {
    const auto k1 = at::randn({B, Hkv, 1, D}), v1 = at::randn({B, Hkv, 1, D});
    const auto q1 = at::randn({B, H, 1, D});
    cache.append(k1, v1, at::Tensor());
    const auto all_k = at::cat({ref_k, res_k, k1}, 2), all_v = at::cat({ref_v, res_v, v1}, 2);
    const auto out = cache.attend(q1, scale);
    INFO("step " << j);
    CHECK((out.to(at::kDouble) - brute(q1, all_k, all_v, scale)).abs().max().item<double>() < 1e-6);
    if (res_k.size(2) + 1 >= R) {
      ref_k = QuarterQuantizer::quarter(all_k);
      ref_v = QuarterQuantizer::quarter(all_v);
      ref_q = all_k.size(2);
      res_k = at::zeros({B, Hkv, 0, D});
      res_v = at::zeros({B, Hkv, 0, D});
    } else {
      res_k = at::cat({res_k, k1}, 2);
      res_v = at::cat({res_v, v1}, 2);
    }
    CHECK(cache.quantized_tokens() == expected[j - 1].first);
    CHECK(cache.residual_tokens() == expected[j - 1].second);
    CHECK(ref_q == expected[j - 1].first);
    CHECK(cache.tokens() == P + j);
    // Bytes: 1 per quantized element (K and V) + 4 per residual f32 element.
    CHECK(cache.bytes() == 2 * B * Hkv * D * (expected[j - 1].first + 4 * expected[j - 1].second));
    // Released after the forward (no pruner): nothing full-precision is kept.
    CHECK(cache.reserved_bytes() == cache.bytes());
  }
  CHECK(quant->calls == 2 * 3);  // K and V at the prefill, at j = 4 and at j = 8
}

TEST_CASE("LatentKvCache with a quantizer stores c on the same schedule",
          "[methods][method:mha2mla]") {
  at::manual_seed(4);
  const int64_t B = 1, dc = 16, Hkv = 2, r = 4, P = 5, R = 4;
  auto quant = std::make_shared<QuarterQuantizer>();
  LatentKvCache cache(16);
  cache.set_quantizer(quant, R, /*rope_too=*/false);
  const auto c0 = at::randn({B, P, dc}), kr0 = at::randn({B, Hkv, P, r});
  cache.append_latent(c0, kr0, at::Tensor(), at::Tensor());
  // The prefill's forward reads the latent unquantized.
  CHECK(at::equal(cache.latent(), c0));
  at::Tensor ref = QuarterQuantizer::quarter(c0);
  at::Tensor res = at::zeros({B, 0, dc});
  for (int64_t j = 1; j <= 9; ++j) {
    const auto c1 = at::randn({B, 1, dc}), kr1 = at::randn({B, Hkv, 1, r});
    cache.append_latent(c1, kr1, at::Tensor(), at::Tensor());
    const auto expect = at::cat({ref, res, c1}, 1);
    INFO("step " << j);
    CHECK(at::equal(cache.latent(), expect));
    if (res.size(1) + 1 >= R) {
      ref = QuarterQuantizer::quarter(expect);
      res = at::zeros({B, 0, dc});
    } else {
      res = at::cat({res, c1}, 1);
    }
    // c: 1 B per quantized element + 4 B per residual element; k_rope: f32 for every token.
    const int64_t q_tokens = ref.size(1), r_tokens = P + j - q_tokens;
    CHECK(cache.bytes() == B * (q_tokens * dc + r_tokens * dc * 4 + (P + j) * Hkv * r * 4));
  }
}

TEST_CASE("method lists (eval --methods) split on commas that start a new spec", "[methods]") {
  using mlab::methods::split_method_list;
  CHECK(split_method_list("full") == std::vector<std::string>{"full"});
  CHECK(split_method_list("full,h2o:budget=0.5,sink=2,tova:budget=0.25") ==
        std::vector<std::string>{"full", "h2o:budget=0.5,sink=2", "tova:budget=0.25"});
  CHECK(split_method_list("mha2mla+quanto:bits=4,group=64;hqq:bits=2") ==
        std::vector<std::string>{"mha2mla+quanto:bits=4,group=64", "hqq:bits=2"});
  CHECK(split_method_list(" quanto:bits=2 , full ") ==
        std::vector<std::string>{"quanto:bits=2", "full"});
}

TEST_CASE("method stacks resolve through the registry",
          "[methods][method:full][method:h2o]"
          "[method:tova][method:streaming_llm]") {
  using mlab::methods::make_method_stack;
  const auto full = make_method_stack("full");
  CHECK(full.spec() == "full");
  CHECK(full.is_plain());
  CHECK(!full.cache_factory());
  const auto q = make_method_stack("quanto:bits=2,residual=8");
  CHECK(q.spec() ==
        "quanto:bits=2,group=64,residual=8,axis_key=0,axis_value=0,quantize_rope=0,target=latent");
  CHECK(q.recipe().key_quantizer != nullptr);
  CHECK(q.recipe().key_quantizer->bits() == 2);
  CHECK(q.recipe().residual == 8);
  const auto h = make_method_stack("h2o:budget=0.5+hqq:bits=4");
  CHECK(static_cast<bool>(h.recipe().pruner));
  CHECK(h.recipe().pruner() != nullptr);
  CHECK(h.recipe().key_quantizer != nullptr);
  for (const char* spec : {"tova:tokens=16", "streaming_llm:budget=0.5,sink=2"}) {
    const auto s = make_method_stack(spec);
    REQUIRE(static_cast<bool>(s.recipe().pruner));
    CHECK(s.recipe().pruner()->stat() == (std::string(spec).rfind("tova", 0) == 0
                                              ? mlab::models::AttentionStat::kLastQuery
                                              : mlab::models::AttentionStat::kNone));
  }
  CHECK_THROWS_WITH(make_method_stack("quanto+quanto"), Contains("at most one quantizer"));
  CHECK_THROWS_WITH(make_method_stack("quanto:bits=3"), Contains("must be 2 or 4"));
}

TEST_CASE("method stacks on the tiny models: converted and unconverted",
          "[methods][method:mha2mla]") {
  using mlab::methods::make_method_stack;
  const auto llava = mlab::models::Vlm::load(mlab::test::data_dir() / "tiny_vlms" / "llava");
  // mha2mla needs a converted model, and says how to make one.
  CHECK_THROWS_WITH(make_method_stack("mha2mla", &llava),
                    Contains("is not converted to MLA") && Contains("mla-bench convert"));
  CHECK_THROWS_WITH(make_method_stack("mha2mla+quanto:bits=4", &llava),
                    Contains("is not converted to MLA"));
  // An unconverted model's stacks build dense or quantized caches with the pruner attached.
  const auto s = make_method_stack("quanto:bits=4,residual=2+tova:tokens=4", &llava);
  auto caches = llava.decoder().make_caches(AttentionImpl::kSdpa, 8, s.cache_factory());
  REQUIRE(caches.size() == 2);
  CHECK(caches[0]->kind() == "quantized");
  CHECK(caches[0]->pruner() != nullptr);
  CHECK(caches[0]->pruner() != caches[1]->pruner());  // one pruner per layer
}

TEST_CASE("every methods/ folder is registered and every registered method is tested",
          "[methods]") {
  std::set<std::string> registered;
  for (const auto& e : mlab::methods::method_entries()) registered.insert(e.name);
  // Folders: methods/<name>/ must be a registered name.
  // Configs: configs/methods/<name>.json only for registered names.
  for (const auto& entry : fs::directory_iterator(source_dir() / "configs" / "methods")) {
    INFO(entry.path());
    CHECK(registered.count(entry.path().stem().string()) == 1);
  }
  for (const auto& entry : fs::directory_iterator(source_dir() / "methods")) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    INFO("methods/" << name << "/");
    CHECK(registered.count(name) == 1);
  }
  // Tests: some tests/methods/*.cpp carries the tag [method:<name>] for each registered method.
  std::string all;
  for (const auto& entry : fs::directory_iterator(source_dir() / "tests" / "methods")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    all += text.str();
  }
  for (const auto& name : registered) {
    INFO("registered method " << name << " has no test tagged [method:" << name << "]");
    CHECK(all.find("[method:" + name + "]") != std::string::npos);
    // And a folder of its own.
    CHECK(fs::is_directory(source_dir() / "methods" / name));
    // And one config, configs/methods/<name>.json, whose spec (the documented default) builds.
    CHECK(fs::is_regular_file(source_dir() / "configs" / "methods" / (name + ".json")));
    const auto preset = mlab::methods::method_preset(name);
    REQUIRE(preset.has_value());
    CHECK_NOTHROW(mlab::methods::make_method_stack(*preset));
  }
}

namespace {

// Records the statistic it is handed and keeps everything.
class RecordingPruner final : public mlab::models::TokenPruner {
 public:
  explicit RecordingPruner(mlab::models::AttentionStat which) : which_(which) {}
  mlab::models::AttentionStat stat() const override { return which_; }
  at::Tensor select(const at::Tensor& stat, const at::Tensor&, const at::Tensor&, int64_t,
                    int64_t) override {
    stats.push_back(stat.clone());
    return {};
  }
  std::string_view name() const override { return "recording"; }
  std::vector<at::Tensor> stats;

 private:
  mlab::models::AttentionStat which_;
};

// A random MHA2MLA layer (E 32, H 4, H_kv 2, D 8, r 2, d_kv 4) with distinct image/text branches.
std::unique_ptr<mlab::models::MlaAttention> random_mla_layer() {
  auto a = std::make_unique<mlab::models::MlaAttention>();
  const int64_t E = 32, H = 4, Hk = 2, D = 8, r = 2, dc = Hk * 4;
  a->heads = H;
  a->kv_heads = Hk;
  a->head_dim = D;
  a->rope_dim = r;
  a->q_weight = at::randn({H * D, E}) * 0.3;
  a->k_rope_weight = at::randn({Hk * r, E}) * 0.3;
  a->o_weight = at::randn({E, H * D}) * 0.3;
  for (auto* b : {&a->text, &a->image}) {
    b->down = at::randn({dc, E}) * 0.3;
    b->up_k = at::randn({Hk * (D - r), dc}) * 0.3;
    b->up_v = at::randn({Hk * D, dc}) * 0.3;
    b->k_bias = at::randn({Hk * (D - r)}) * 0.1;
    b->v_bias = at::randn({Hk * D}) * 0.1;
  }
  a->rope_index = mlab::models::MlaAttention::rope_index_for({{0}, {3}}, D);
  return a;
}

mlab::models::RopeTables rope_for(int64_t from, int64_t L, int64_t D) {
  const auto pos = at::arange(from, from + L, at::kFloat).view({1, 1, L, 1});
  const auto freq = at::pow(10000.0, -at::arange(0, D / 2, at::kFloat) * 2.0 / D).repeat({2});
  const auto angle = pos * freq.view({1, 1, 1, D});
  return {angle.cos(), angle.sin()};
}

}  // namespace

TEST_CASE("MLA stacks: absorbed-latent statistics and pruning equal reconstructed K/V's",
          "[methods][method:mha2mla][method:h2o][method:tova]") {
  // The latent cache scores tokens with absorbed attention (specs/baselines.md §6.2); the same
  // layer over a K/V cache (target=kv) reconstructs keys and values. Both must see the same
  // attention: equal statistics, equal outputs, and equal kept sets when a pruner acts.
  at::manual_seed(11);
  const auto layer = random_mla_layer();
  const int64_t B = 1, L = 7, E = 32;
  const auto x0 = at::randn({B, L, E});
  mlab::models::TokenInfo prefill;
  prefill.image = at::tensor({0, 1, 1, 1, 0, 0, 0}, at::kLong).ne(0).view({B, L});
  std::vector<at::Tensor> steps;
  for (int i = 0; i < 6; ++i) steps.push_back(at::randn({B, 1, E}));
  for (auto which :
       {mlab::models::AttentionStat::kQuerySum, mlab::models::AttentionStat::kLastQuery}) {
    mlab::models::LatentKvCache latent(16);
    mlab::models::DenseKvCache dense(AttentionImpl::kEager, 16);
    auto rl = std::make_unique<RecordingPruner>(which);
    auto rd = std::make_unique<RecordingPruner>(which);
    auto* rec_l = rl.get();
    auto* rec_d = rd.get();
    latent.set_pruner(std::move(rl));
    dense.set_pruner(std::move(rd));
    auto o_l = layer->forward(x0, rope_for(0, L, 8), prefill, latent);
    auto o_d = layer->forward(x0, rope_for(0, L, 8), prefill, dense);
    CHECK((o_l - o_d).abs().max().item<double>() < 1e-5);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      o_l = layer->forward(steps[i], rope_for(L + i, 1, 8), {}, latent);
      o_d = layer->forward(steps[i], rope_for(L + i, 1, 8), {}, dense);
      INFO("step " << i);
      CHECK((o_l - o_d).abs().max().item<double>() < 1e-5);
    }
    REQUIRE(rec_l->stats.size() == steps.size() + 1);
    REQUIRE(rec_d->stats.size() == rec_l->stats.size());
    for (std::size_t i = 0; i < rec_l->stats.size(); ++i) {
      CHECK(rec_l->stats[i].sizes() == rec_d->stats[i].sizes());
      CHECK((rec_l->stats[i] - rec_d->stats[i]).abs().max().item<double>() < 1e-5);
    }
  }
  // With TOVA (one token set per layer) both caches keep the same tokens at every step.
  const auto tova = mlab::methods::make_method_stack("tova:tokens=5");
  mlab::models::LatentKvCache latent(16);
  mlab::models::DenseKvCache dense(AttentionImpl::kEager, 16);
  latent.set_pruner(tova.recipe().pruner());
  dense.set_pruner(tova.recipe().pruner());
  layer->forward(x0, rope_for(0, L, 8), prefill, latent);
  layer->forward(x0, rope_for(0, L, 8), prefill, dense);
  CHECK(latent.tokens() == 5);
  CHECK(dense.tokens() == 5);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const auto o_l = layer->forward(steps[i], rope_for(L + i, 1, 8), {}, latent);
    const auto o_d = layer->forward(steps[i], rope_for(L + i, 1, 8), {}, dense);
    INFO("step " << i);
    CHECK(latent.tokens() == 5);
    CHECK((o_l - o_d).abs().max().item<double>() < 1e-5);
    // The latent's modality flags travel with its tokens.
    CHECK(latent.image().size(1) == 5);
  }
}

TEST_CASE("chunked prefill: equal logits without a pruner, eviction after every chunk with one",
          "[methods][method:h2o][method:tova]") {
  for (const char* family : {"llava", "qwen2_5_vl"}) {
    INFO(family);
    const auto vlm = mlab::models::Vlm::load(mlab::test::data_dir() / "tiny_vlms" / family);
    const auto inputs = vlm.prepare(std::vector<mlab::models::VlmRequest>{
        mlab::models::VlmRequest::single("Is there a dog in the picture? Answer yes or no."),
        mlab::models::VlmRequest::single("Red?")});  // left padding in row 1
    mlab::models::PrefillOptions whole, chunked;
    whole.all_logits = chunked.all_logits = true;
    chunked.chunk = 5;
    const auto a = vlm.prefill(inputs, whole);
    const auto b = vlm.prefill(inputs, chunked);
    const auto valid = inputs.attention_mask.ne(0).unsqueeze(-1);
    CHECK(((a.logits - b.logits).abs() * valid).max().item<double>() < 1e-4);
    CHECK((a.last_logits - b.last_logits).abs().max().item<double>() < 1e-4);
    // H2O with a token budget evicts after every 4-token chunk: the caches never exceed it.
    const auto stack = mlab::methods::make_method_stack("h2o:tokens=12,chunk=4", &vlm);
    CHECK(stack.recipe().prefill_chunk == 4);
    mlab::models::PrefillOptions po;
    po.cache_factory = stack.cache_factory();
    po.chunk = stack.recipe().prefill_chunk;
    const auto s = vlm.prefill(inputs, po);
    for (const auto& cache : s.caches) CHECK(cache->tokens() == 12);
  }
}

TEST_CASE("quantizer groups must tile every token of what they store", "[methods][method:quanto]") {
  using mlab::methods::make_method_stack;
  // The tiny Qwen2.5-VL: 2 KV heads x head_dim 16 = 32 elements per token for K and for V.
  const auto qwen = mlab::models::Vlm::load(mlab::test::data_dir() / "tiny_vlms" / "qwen2_5_vl");
  CHECK_THROWS_WITH(make_method_stack("quanto:bits=4", &qwen),
                    Contains("group=64 does not divide the K/V width n_kv * head_dim = 32") &&
                        Contains("e.g. group=32 | 16 | 8 | 4"));
  CHECK_THROWS_WITH(make_method_stack("hqq:bits=2,group=48", &qwen), Contains("group=48"));
  CHECK_NOTHROW(make_method_stack("quanto:bits=4,group=32", &qwen));
  CHECK_NOTHROW(make_method_stack("hqq:bits=4,group=16", &qwen));
}
