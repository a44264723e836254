// The quantized-KV methods end to end against transformers 5.24's QuantizedCache (optimum-quanto
// 0.2.7 / hqq 0.2.2 backends; specs/baselines.md §1.2, §2.4): the tiny VLMs of
// tests/data/tiny_vlms, fp32 on the CPU, greedy, with the fixtures of
// tools/fixtures/make_method_fixtures.py
// (tests/data/method_fixtures/<family>__<backend><bits>[__variant].safetensors: prompt tensors,
// transformers' tokens and per-step logits with the quantized cache and with the dynamic one).
//
// Each fixture is replayed through Vlm::prefill + decode_step with the method stack's caches, the
// reference tokens fed back (teacher forcing, so that every step's logits stay comparable), with
// eager attention (what the fixtures ran) and SDPA. Checked on the steps the reference determines
// (metadata determined_steps: the leading steps on which transformers itself gives the same tokens
// and logits within 1e-4 when its cached K/V are perturbed by 1e-7 relative noise, or run with
// SDPA): our argmax equals transformers' token and the logits agree within kLogitTol; free-running
// greedy generation gives transformers' tokens on those steps. Beyond them the reference depends on
// the last bits of the K/V (re-quantization puts values exactly on rounding midpoints, see the
// script), and agreement is reported, not required.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "methods/kv_method.hpp"
#include "models/io/checkpoint.hpp"
#include "models/runtime/quantized_kv_cache.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/vlm/vlm_test_support.hpp"

namespace {

using mlab::test::inputs_of;

namespace fs = std::filesystem;
using mlab::models::AttentionImpl;
using mlab::models::Checkpoint;
using mlab::models::Vlm;
using mlab::models::VlmInputs;

// max |ours - transformers| / max |transformers| of a step's logits, on determined steps. Measured
// on the 16 fixtures (2-core x86 CPU, LibTorch 2.11): <= 1.25e-6 eager, <= 1.44e-6 SDPA (max abs
// 5.3e-6, logits up to ~4); transformers' own perturbed reruns spread by <= 1.7e-6
// (perturbed_max_rel). A flipped quantization code moves the logits by 1e-3 to 1.
constexpr double kLogitTol = 1e-5;

fs::path fixture_dir() { return mlab::test::data_dir() / "method_fixtures"; }

std::vector<fs::path> fixtures() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fixture_dir())) {
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

const std::string& meta(const Checkpoint& ref, const std::string& key) {
  const auto it = ref.metadata().find(key);
  REQUIRE(it != ref.metadata().end());
  return it->second;
}

const Vlm& model(const std::string& family, AttentionImpl impl) {
  static std::map<std::pair<std::string, AttentionImpl>, std::unique_ptr<Vlm>> cache;
  auto& slot = cache[{family, impl}];
  if (!slot) {
    mlab::models::VlmOptions o;
    o.attention = impl;
    slot = std::make_unique<Vlm>(Vlm::load(mlab::test::tiny_vlm_dir() / family, o));
  }
  return *slot;
}

struct Replay {
  at::Tensor logits;  // f32 [B, N, V]: step 0 = prefill, step i = decode step i
  mlab::models::VlmSession session;
};

// Prefill + N-1 decode steps fed with `feed` (i64 [B, N]: the tokens of steps 0..N-2 are fed).
Replay replay(const Vlm& vlm, const VlmInputs& in, const mlab::models::CacheFactory& factory,
              const at::Tensor& feed) {
  const int64_t n = feed.size(1);
  mlab::models::PrefillOptions po;
  po.cache_factory = factory;
  po.reserve_tokens = in.input_ids.size(1) + n;
  Replay r{at::Tensor(), vlm.prefill(in, po)};
  std::vector<at::Tensor> steps = {r.session.last_logits.to(at::kFloat)};
  for (int64_t i = 1; i < n; ++i) {
    steps.push_back(vlm.decode_step(r.session, feed.select(1, i - 1)).to(at::kFloat));
  }
  r.logits = at::stack(steps, 1);
  return r;
}

// f64 [N]: max over rows and vocabulary of |a - b| / max |b| per step.
at::Tensor step_rel(const at::Tensor& a, const at::Tensor& b) {
  const auto a64 = a.to(at::kDouble), b64 = b.to(at::kDouble);
  return ((a64 - b64).abs().amax(-1) / b64.abs().amax(-1)).amax(0);
}

std::vector<int64_t> row(const at::Tensor& t, int64_t b) {
  const auto r = t[b].to(at::kLong).contiguous();
  return {r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel()};
}

}  // namespace

TEST_CASE(
    "quanto / hqq caches: greedy tokens and per-step logits equal transformers' "
    "QuantizedCache",
    "[methods][method:quanto][method:hqq][e2e]") {
  const auto files = fixtures();
  REQUIRE(files.size() >= 12);  // 3 families x {quanto, hqq} x {4, 2} at least
  std::printf("%-34s %-5s %-56s %5s %9s %9s %9s %10s %s\n", "fixture", "attn", "spec", "det",
              "max_abs", "max_rel", "ref_sprd", "tf_tokens", "free-run tokens");
  for (const auto& file : files) {
    const Checkpoint ref = Checkpoint::open(file);
    const std::string name = file.stem().string();
    const std::string& family = meta(ref, "family");
    const std::string& spec = meta(ref, "spec");
    const int64_t n = std::stoll(meta(ref, "max_new_tokens"));
    const int64_t determined = std::stoll(meta(ref, "determined_steps"));
    const at::Tensor ref_ids = ref.get("generated_ids");  // i64 [B, N]
    const at::Tensor ref_logits = ref.get("logits");      // f32 [B, N, V]
    const VlmInputs in = inputs_of(ref);
    const int64_t B = in.input_ids.size(0);
    REQUIRE(ref_ids.size(1) == n);
    for (const auto impl : {AttentionImpl::kEager, AttentionImpl::kSdpa}) {
      const std::string attn = impl == AttentionImpl::kEager ? "eager" : "sdpa";
      INFO(name << " (" << spec << ", " << attn << ", determined steps " << determined << ")");
      const Vlm& vlm = model(family, impl);
      const auto stack = mlab::methods::make_method_stack(spec, &vlm);
      REQUIRE(static_cast<bool>(stack.cache_factory()));
      Replay r = replay(vlm, in, stack.cache_factory(), ref_ids);

      // The schedule: after N-1 decode steps, what is quantized and what is in the residual.
      const auto* q =
          dynamic_cast<const mlab::models::QuantizedKvCache*>(r.session.caches.front().get());
      REQUIRE(q != nullptr);
      CHECK(q->quantized_tokens() == std::stoll(meta(ref, "quantized_tokens_at_end")));
      CHECK(q->residual_tokens() == std::stoll(meta(ref, "residual_tokens_at_end")));

      // Teacher-forced: per-step logits and argmax on the determined steps.
      const at::Tensor rel = step_rel(r.logits, ref_logits);
      const at::Tensor ours = r.logits.argmax(-1);  // i64 [B, N]
      REQUIRE(determined >= 1);
      const double max_rel = rel.narrow(0, 0, determined).max().item<double>();
      const double max_abs =
          (r.logits.narrow(1, 0, determined) - ref_logits.narrow(1, 0, determined))
              .abs()
              .max()
              .item<double>();
      const double spread =
          ref.get("perturbed_max_rel").narrow(0, 0, determined).max().item<double>();
      int64_t tf_equal = 0;  // leading steps whose argmax is transformers' token
      while (tf_equal < n && ours.select(1, tf_equal).equal(ref_ids.select(1, tf_equal)))
        ++tf_equal;
      for (int64_t i = 0; i < determined; ++i) {
        INFO("step " << i << ": rel " << rel[i].item<double>());
        CHECK(rel[i].item<double>() <= kLogitTol);
        CHECK(ours.select(1, i).equal(ref_ids.select(1, i)));
      }

      // Free-running greedy generation through Vlm::generate with the stack's caches.
      mlab::models::GenerateOptions go;
      go.max_new_tokens = n;
      go.stop_at_eos = false;  // the reference disabled EOS
      go.cache_factory = stack.cache_factory();
      const auto gen = vlm.generate(in, go);
      int64_t free_equal = n;
      for (int64_t b = 0; b < B; ++b) {
        const auto want = row(ref_ids, b);
        REQUIRE(gen.tokens[b].size() == static_cast<size_t>(n));
        const auto mismatch = std::mismatch(want.begin(), want.end(), gen.tokens[b].begin());
        free_equal = std::min<int64_t>(free_equal, mismatch.first - want.begin());
      }
      CHECK(free_equal >= determined);
      std::printf("%-34s %-5s %-56s %2lld/%-2lld %9.2e %9.2e %9.2e %7lld/%-2lld %lld/%lld%s\n",
                  name.c_str(), attn.c_str(), spec.c_str(), static_cast<long long>(determined),
                  static_cast<long long>(n), max_abs, max_rel, spread,
                  static_cast<long long>(tf_equal), static_cast<long long>(n),
                  static_cast<long long>(free_equal), static_cast<long long>(n),
                  free_equal == n ? "" : "  (differs after the determined steps)");
    }
  }
}

TEST_CASE("full: the same prompts without quantization equal transformers' dynamic cache",
          "[methods][method:full][e2e]") {
  for (const auto& file : fixtures()) {
    const Checkpoint ref = Checkpoint::open(file);
    INFO(file.stem().string());
    const Vlm& vlm = model(meta(ref, "family"), AttentionImpl::kEager);
    const auto stack = mlab::methods::make_method_stack("full", &vlm);
    CHECK(stack.is_plain());
    const at::Tensor ref_ids = ref.get("full_generated_ids");
    const VlmInputs in = inputs_of(ref);
    const Replay r = replay(vlm, in, stack.cache_factory(), ref_ids);
    const double rel = step_rel(r.logits, ref.get("full_logits")).max().item<double>();
    mlab::test::report(file.stem().string() + " full logits", rel);
    CHECK(rel <= kLogitTol);
    CHECK(r.logits.argmax(-1).equal(ref_ids));
  }
}

TEST_CASE("a residual window longer than the answer: only the prefill is quantized",
          "[methods][method:quanto][method:hqq][e2e]") {
  // transformers quantizes the prefill K/V right after the prefill forward whatever R is, so with
  // R > the answer length quantization still happens (from decode step 1 on) and the tokens leave
  // the full run's where the reference says (first_step_differing_from_full). What R > N does
  // guarantee: the first token (from the unquantized prefill) is the full run's, bit for bit, and
  // nothing is ever re-quantized (every decode step's K/V stay in the residual).
  int cases = 0;
  for (const auto& file : fixtures()) {
    const Checkpoint ref = Checkpoint::open(file);
    if (meta(ref, "variant") != "large_residual") continue;
    ++cases;
    const std::string name = file.stem().string();
    INFO(name);
    const Vlm& vlm = model(meta(ref, "family"), AttentionImpl::kEager);
    const int64_t n = std::stoll(meta(ref, "max_new_tokens"));
    REQUIRE(std::stoll(meta(ref, "residual_length")) > n);
    const at::Tensor ref_ids = ref.get("generated_ids");
    const VlmInputs in = inputs_of(ref);
    const auto quant = mlab::methods::make_method_stack(meta(ref, "spec"), &vlm);
    const auto full = mlab::methods::make_method_stack("full", &vlm);
    const Replay rq = replay(vlm, in, quant.cache_factory(), ref_ids);
    const Replay rf = replay(vlm, in, full.cache_factory(), ref_ids);
    CHECK(rq.logits.select(1, 0).equal(rf.logits.select(1, 0)));
    const auto* q =
        dynamic_cast<const mlab::models::QuantizedKvCache*>(rq.session.caches.front().get());
    REQUIRE(q != nullptr);
    CHECK(q->quantized_tokens() == in.input_ids.size(1));
    CHECK(q->residual_tokens() == n - 1);
    // Greedy, free running: our quantized tokens vs our full-cache tokens, against transformers'.
    mlab::models::GenerateOptions go;
    go.max_new_tokens = n;
    go.stop_at_eos = false;
    go.cache_factory = quant.cache_factory();
    const auto gq = vlm.generate(in, go).tokens[0];
    go.cache_factory = full.cache_factory();
    const auto gf = vlm.generate(in, go).tokens[0];
    CHECK(gq == row(ref_ids, 0));
    CHECK(gf == row(ref.get("full_generated_ids"), 0));
    const int64_t split = std::mismatch(gq.begin(), gq.end(), gf.begin()).first - gq.begin();
    const int64_t want = std::stoll(meta(ref, "first_step_differing_from_full"));
    CHECK(split == (want < 0 ? n : want));
    std::printf("%-34s quantized == full for the first %lld of %lld tokens (transformers: %lld)\n",
                name.c_str(), static_cast<long long>(split), static_cast<long long>(n),
                static_cast<long long>(want < 0 ? n : want));
  }
  CHECK(cases >= 2);
}
