// StreamingLLM (Xiao et al. 2024, attention sinks): the worked example of docs/adding-a-method.md.
// The kept set is derived by hand: the first `sink` tokens and the newest (cap - sink).
#include <ATen/ATen.h>

#include <set>

#include "methods/kv_method.hpp"
#include "models/runtime/dense_kv_cache.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

// The positions a cache holds, read back from key channel 0 (which carries each token's position).
std::set<int64_t> positions(const mlab::models::DenseKvCache& cache, int64_t head) {
  const auto k = cache.keys().select(0, 0).select(0, head).select(-1, 0).to(at::kLong);
  std::set<int64_t> out;
  for (int64_t i = 0; i < k.size(0); ++i) out.insert(k[i].item<int64_t>());
  return out;
}

}  // namespace

TEST_CASE("streaming_llm keeps the sinks and the newest tokens",
          "[methods][method:streaming_llm]") {
  const auto stack = mlab::methods::make_method_stack("streaming_llm:tokens=6,sink=2");
  CHECK(stack.spec() == "streaming_llm:tokens=6,sink=2,chunk=0");
  mlab::models::DenseKvCache cache(mlab::models::AttentionImpl::kEager, 32);
  cache.set_pruner(stack.recipe().pruner());
  const int64_t H = 2, D = 4, L = 9;
  auto keys = [&](int64_t from, int64_t n) {
    auto k = at::randn({1, H, n, D});
    k.select(-1, 0).copy_(at::arange(from, from + n, at::kFloat).view({1, 1, n}).expand({1, H, n}));
    return k;
  };
  cache.append(keys(0, L), at::randn({1, H, L, D}), at::Tensor());
  cache.prune(at::Tensor(), at::Tensor(), L);
  CHECK(positions(cache, 0) == std::set<int64_t>{0, 1, 5, 6, 7, 8});
  for (int64_t step = 0; step < 5; ++step) {
    const int64_t p = L + step;
    cache.append(keys(p, 1), at::randn({1, H, 1, D}), at::Tensor());
    cache.prune(at::Tensor(), at::Tensor(), 1);
    INFO("position " << p);
    CHECK(cache.tokens() == 6);
    for (int64_t h = 0; h < H; ++h)
      CHECK(positions(cache, h) == std::set<int64_t>{0, 1, p - 3, p - 2, p - 1, p});
  }
}

TEST_CASE("streaming_llm on the tiny LLaVA: every layer holds the budget",
          "[methods][method:streaming_llm]") {
  const auto vlm = mlab::models::Vlm::load(mlab::test::data_dir() / "tiny_vlms" / "llava");
  const auto stack = mlab::methods::make_method_stack("streaming_llm:tokens=16,sink=4", &vlm);
  const auto inputs = vlm.prepare(
      std::vector<mlab::models::VlmRequest>{mlab::models::VlmRequest::single("Is it red?")});
  mlab::models::PrefillOptions po;
  po.cache_factory = stack.cache_factory();
  auto session = vlm.prefill(inputs, po);
  for (int step = 0; step < 4; ++step) vlm.decode_step(session, session.last_logits.argmax(-1));
  const auto& text = vlm.config().text;
  for (const auto& cache : session.caches) {
    CHECK(cache->tokens() == 16);
    CHECK(cache->bytes() == 16 * 2 * text.num_key_value_heads * text.head_dim * 4);  // f32 K and V
  }
}
