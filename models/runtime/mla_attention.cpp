#include "models/runtime/mla_attention.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"
#include "models/nn/nn.hpp"
#include "models/runtime/dense_kv_cache.hpp"

namespace mlab::models {

namespace {

at::Tensor up(const at::Tensor& c, const at::Tensor& w, const std::optional<at::Tensor>& b) {
  return nn::linear(c, w, b);
}

// `m` of `image` rows, `t` elsewhere; image: bool [B, S] broadcast over the trailing dims.
at::Tensor by_modality(const at::Tensor& image, const at::Tensor& m, const at::Tensor& t) {
  auto mask = image;
  while (mask.dim() < t.dim()) mask = mask.unsqueeze(-1);
  return at::where(mask, m, t);
}

}  // namespace

std::optional<MlaConfig> MlaConfig::from_model_config(const ModelConfig& config) {
  if (!config.raw.is_object() || !config.raw.contains("mha2mla")) return std::nullopt;
  const auto& j = config.raw["mha2mla"];
  MLAB_CHECK(j.is_object(), "config.json: \"mha2mla\" must be an object");
  MlaConfig m;
  try {
    m.stage = j.value("stage", 2);
    m.rope_dim = j.at("rope_dim_for_mla").get<int64_t>();
    m.d_kv = j.value("low_rank", int64_t{0});
    m.strategy = j.value("partial_rope_version", std::string());
    m.svd_init = j.value("svd_init_method", std::string());
    // Names: ours md | activation | weight ("mlab_svd_init"; before F14 our "joint" meant
    // activation); the authors' "joint" is weight SVD, MD-SVD when svd_init_weight_path holds
    // their run_svd_init.py factors.
    if (j.contains("mlab_svd_init")) {
      m.svd_init = j.at("mlab_svd_init").get<std::string>();
    } else if (j.value("producer", std::string()) == "mla-bench convert") {
      if (m.svd_init == "joint") m.svd_init = "activation";
    } else if (m.svd_init == "joint") {
      const nlohmann::json w = j.value("svd_init_weight_path", nlohmann::json());
      m.svd_init = (w.is_string() && w.get<std::string>() != "none") ? "md" : "weight";
    }
    m.kept_frequencies =
        j.at("mlab_kept_frequencies").get<std::vector<std::vector<std::vector<int64_t>>>>();
  } catch (const nlohmann::json::exception& e) {
    MLAB_FAIL("config.json: \"mha2mla\": ", e.what());
  }
  const auto& t = config.text;
  MLAB_CHECK(m.stage == 1 || m.stage == 2, "config.json: mha2mla.stage must be 1 or 2, got ",
             m.stage);
  MLAB_CHECK(m.rope_dim > 0 && m.rope_dim % 2 == 0 && m.rope_dim <= t.head_dim,
             "config.json: mha2mla.rope_dim_for_mla ", m.rope_dim, " must be even in (0, ",
             t.head_dim, "]");
  MLAB_CHECK(m.stage == 1 || m.d_kv > 0, "config.json: mha2mla.low_rank must be positive");
  MLAB_CHECK(static_cast<int64_t>(m.kept_frequencies.size()) == t.num_hidden_layers,
             "config.json: mha2mla.mlab_kept_frequencies has ", m.kept_frequencies.size(),
             " layers, the model ", t.num_hidden_layers);
  for (const auto& layer : m.kept_frequencies) {
    MLAB_CHECK(static_cast<int64_t>(layer.size()) == t.num_key_value_heads,
               "config.json: mha2mla.mlab_kept_frequencies: ", layer.size(),
               " KV heads, the model ", t.num_key_value_heads);
    for (const auto& head : layer) {
      MLAB_CHECK(static_cast<int64_t>(head.size()) == m.rope_dim / 2,
                 "config.json: mha2mla.mlab_kept_frequencies: ", head.size(),
                 " frequencies per head, rope_dim_for_mla / 2 = ", m.rope_dim / 2);
      for (auto f : head) {
        MLAB_CHECK(f >= 0 && f < t.head_dim / 2, "config.json: mha2mla: frequency ", f,
                   " outside [0, ", t.head_dim / 2, ")");
      }
    }
  }
  return m;
}

at::Tensor MlaAttention::rope_index_for(const std::vector<std::vector<int64_t>>& kept,
                                        int64_t head_dim) {
  std::vector<int64_t> idx;
  for (const auto& k : kept) {
    for (auto f : k) idx.push_back(f);
    for (auto f : k) idx.push_back(f + head_dim / 2);
  }
  const auto n = static_cast<int64_t>(kept.size());
  return at::tensor(idx, at::kLong).view({n, -1});
}

std::unique_ptr<MlaAttention> MlaAttention::load(Weights& w, const TextConfig& c,
                                                 const MlaConfig& mla, int64_t layer,
                                                 const std::string& prefix) {
  auto a = std::make_unique<MlaAttention>();
  a->heads = c.num_attention_heads;
  a->kv_heads = c.num_key_value_heads;
  a->head_dim = c.head_dim;
  a->rope_dim = mla.rope_dim;
  const int64_t E = c.hidden_size, D = c.head_dim, r = mla.rope_dim, Hq = a->heads,
                Hk = a->kv_heads;
  a->q_weight = w.take(prefix + "q_proj.weight", {Hq * D, E});
  a->k_rope_weight = w.take(prefix + "k_r_proj.weight", {Hk * r, E});
  if (c.attention_bias) {
    a->q_bias = w.take(prefix + "q_proj.bias", {Hq * D});
    a->k_rope_bias = w.take(prefix + "k_r_proj.bias", {Hk * r});
  }
  a->o_weight = w.take(prefix + "o_proj.weight", {E, Hq * D});
  if (c.attention_out_bias) a->o_bias = w.take(prefix + "o_proj.bias", {E});
  auto branch = [&](const std::string& p, bool low_rank) {
    MlaBranch b;
    const int64_t dc = low_rank ? Hk * mla.d_kv : E;
    if (low_rank) b.down = w.take(p + "down_kv.weight", {dc, E});
    b.up_k = w.take(p + "up_k.weight", {Hk * (D - r), dc});
    b.up_v = w.take(p + "up_v.weight", {Hk * D, dc});
    if (c.attention_bias) {
      b.k_bias = w.take(p + "up_k.bias", {Hk * (D - r)});
      b.v_bias = w.take(p + "up_v.bias", {Hk * D});
    }
    return b;
  };
  if (mla.stage == 1) {
    a->text = branch(prefix + "kv_proj.", false);
    a->image = a->text;
  } else {
    a->text = branch(prefix + "kv_proj_text.", true);
    a->image = branch(prefix + "kv_proj_img.", true);
  }
  a->rope_index = rope_index_for(mla.kept_frequencies.at(layer), D).to(a->q_weight.device());
  return a;
}

at::Tensor MlaAttention::latent(const at::Tensor& x, const at::Tensor& image_mask) const {
  auto down = [&](const MlaBranch& b) { return b.down ? nn::linear(x, *b.down) : x; };
  at::Tensor c = down(text);
  if (image_mask.defined() && image.down && image_mask.any().item<bool>()) {
    c = by_modality(image_mask, down(image), c);
  }
  return c;
}

at::Tensor MlaAttention::forward(const at::Tensor& x, const RopeTables& rope,
                                 const TokenInfo& tokens, KvCache& cache_base) const {
  const int64_t B = x.size(0), L = x.size(1), D = head_dim, r = rope_dim;
  const at::Tensor q = nn::linear(x, q_weight, q_bias);  // [B, L, H*D] (RoPE rows first)
  at::Tensor q_rope = q.narrow(-1, 0, heads * r).view({B, L, heads, r}).transpose(1, 2);
  const at::Tensor q_nope =
      q.narrow(-1, heads * r, heads * (D - r)).view({B, L, heads, D - r}).transpose(1, 2);
  at::Tensor k_rope =
      nn::linear(x, k_rope_weight, k_rope_bias).view({B, L, kv_heads, r}).transpose(1, 2);
  // cos/sin of each head's kept pairs: [B, 1, L, D] -> [B, H_kv, L, r]
  const at::Tensor idx = rope_index.flatten();
  auto pick = [&](const at::Tensor& t) {
    return t.index_select(-1, idx).view({t.size(0), L, kv_heads, r}).transpose(1, 2);
  };
  const at::Tensor cos_k = pick(rope.cos), sin_k = pick(rope.sin);
  const int64_t group = heads / kv_heads;
  k_rope = nn::apply_rotary(k_rope, cos_k, sin_k);
  q_rope = nn::apply_rotary(q_rope, cos_k.repeat_interleave(group, 1),
                            sin_k.repeat_interleave(group, 1));
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor o;  // [B, H, L, D]
  auto* cache = dynamic_cast<LatentKvCache*>(&cache_base);
  if (cache == nullptr) {
    // A K/V cache (a method stacked with target=kv): the new tokens' keys and values are
    // reconstructed from their latent and stored as such, the authors' MLA + quantized cache
    // (specs/baselines.md §1.5-5). Keys keep the re-laid-out order (RoPE dims first), as q.
    const at::Tensor c = latent(x, tokens.image);  // [B, L, d_c]
    at::Tensor k_nope = up(c, text.up_k, text.k_bias);
    at::Tensor v = up(c, text.up_v, text.v_bias);
    if (tokens.image.defined() && image.down) {
      k_nope = by_modality(tokens.image, up(c, image.up_k, image.k_bias), k_nope);
      v = by_modality(tokens.image, up(c, image.up_v, image.v_bias), v);
    }
    const at::Tensor k =
        at::cat({k_rope, k_nope.view({B, L, kv_heads, D - r}).transpose(1, 2)}, -1);
    cache_base.append(k, v.view({B, L, kv_heads, D}).transpose(1, 2), tokens.valid);
    const at::Tensor qf = at::cat({q_rope, q_nope}, -1);
    o = cache_base.attend(qf, scale);
    if (TokenPruner* p = cache_base.pruner()) {
      const AttentionStat which = p->stat();
      cache_base.prune(which == AttentionStat::kNone ? at::Tensor()
                                                     : cache_base.attention_stat(qf, scale, which),
                       tokens.image, L);
    }
  } else {
    cache->append_latent(latent(x, tokens.image), k_rope, tokens.image, tokens.valid);
    o = (L == 1 && decode == MlaDecode::kAbsorbed) ? attend_absorbed(q_rope, q_nope, *cache)
                                                   : attend_reconstruct(q_rope, q_nope, *cache);
    if (TokenPruner* p = cache->pruner()) {
      const AttentionStat which = p->stat();
      cache->prune(which == AttentionStat::kNone
                       ? at::Tensor()
                       : latent_attention_stat(q_rope, q_nope, *cache, which),
                   tokens.image, L);
    }
  }
  return nn::linear(o.transpose(1, 2).reshape({B, L, heads * D}), o_weight, o_bias);
}

at::Tensor MlaAttention::attend_reconstruct(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                            const LatentKvCache& cache) const {
  const at::Tensor c = cache.latent();  // [B, S, d_c]
  const int64_t B = c.size(0), S = c.size(1), L = q_rope.size(2), D = head_dim, r = rope_dim;
  at::Tensor k_nope = up(c, text.up_k, text.k_bias);
  at::Tensor v = up(c, text.up_v, text.v_bias);
  if (cache.has_image()) {
    k_nope = by_modality(cache.image(), up(c, image.up_k, image.k_bias), k_nope);
    v = by_modality(cache.image(), up(c, image.up_v, image.v_bias), v);
  }
  const at::Tensor k = at::cat(
      {cache.k_rope(), k_nope.view({B, S, kv_heads, D - r}).transpose(1, 2)}, -1);  // [B,H_kv,S,D]
  v = v.view({B, S, kv_heads, D}).transpose(1, 2);
  const at::Tensor q = at::cat({q_rope, q_nope}, -1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::optional<at::Tensor> mask;
  bool causal = false;
  if (!cache.all_valid()) {
    mask = cache.mask(L);
  } else if (L > 1) {
    causal = true;
  }
  if (impl == AttentionImpl::kEager) {
    const int64_t group = heads / kv_heads;
    return std::get<0>(compat::attention_with_weights(
        q, k.repeat_interleave(group, 1), v.repeat_interleave(group, 1), mask, causal, scale));
  }
  return compat::sdpa_gqa(q, k, v, mask, causal, scale);
}

// specs/method.md §5.2: logit = (q_rope . k_rope + (W_uk^m[g]^T q_nope) . c + q_nope . b_k^m[g]) /
// sqrt(D), for the queries [from, from + count) of the L new ones; masked with -inf:
// f32 [B, H_kv, G * count, S].
at::Tensor MlaAttention::absorbed_scores(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                         const LatentKvCache& cache, int64_t from,
                                         int64_t count) const {
  const at::Tensor c = cache.latent();  // [B, S, d_c]
  const int64_t B = c.size(0), S = c.size(1), dc = c.size(2), L = q_rope.size(2);
  const int64_t D = head_dim, r = rope_dim, G = heads / kv_heads, Hk = kv_heads;
  // Group the query heads by KV head: [B, H_kv, G*count, .]
  const at::Tensor qr = q_rope.narrow(2, from, count).reshape({B, Hk, G * count, r});
  const at::Tensor qn = q_nope.narrow(2, from, count).reshape({B, Hk, G * count, D - r});
  const at::Tensor ct = c.unsqueeze(1).transpose(-1, -2);                // [B, 1, d_c, S]
  at::Tensor scores = at::matmul(qr, cache.k_rope().transpose(-1, -2));  // [B, H_kv, GL, S]
  auto latent_scores = [&](const MlaBranch& b) {
    const at::Tensor wk = b.up_k.view({Hk, D - r, dc});
    at::Tensor s = at::matmul(at::matmul(qn, wk), ct);  // [B, H_kv, GL, S]
    if (b.k_bias) {
      s = s + (qn * b.k_bias->view({1, Hk, 1, D - r})).sum(-1, true);
    }
    return s;
  };
  at::Tensor lat = latent_scores(text);
  const at::Tensor img = cache.image().view({B, 1, 1, S});
  if (cache.has_image()) lat = at::where(img, latent_scores(image), lat);
  scores = (scores + lat).to(at::kFloat) * (1.0 / std::sqrt(static_cast<double>(D)));
  const at::Tensor mask = cache.mask(L)
                              .narrow(2, from, count)  // [B, 1, count, S]
                              .unsqueeze(2)            // [B, 1, 1, count, S]
                              .expand({B, Hk, G, count, S})
                              .reshape({B, Hk, G * count, S});
  return scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
}

// o = sum_m W_uv^m[g] (sum_{s in m} p_s c_s) + P^m b_v^m[g].
at::Tensor MlaAttention::attend_absorbed(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                         const LatentKvCache& cache) const {
  const at::Tensor c = cache.latent();  // [B, S, d_c]
  const int64_t B = c.size(0), S = c.size(1), dc = c.size(2), L = q_rope.size(2);
  const int64_t D = head_dim, Hk = kv_heads;
  const at::Tensor scores = absorbed_scores(q_rope, q_nope, cache, 0, L);
  const at::Tensor p = at::softmax(scores, -1).to(c.scalar_type());  // [B, H_kv, GL, S]
  auto output = [&](const MlaBranch& b, const at::Tensor& pm) {
    const at::Tensor u = at::matmul(pm, c.unsqueeze(1));               // [B, H_kv, GL, d_c]
    const at::Tensor wv = b.up_v.view({Hk, D, dc}).transpose(-1, -2);  // [H_kv, d_c, D]
    at::Tensor o = at::matmul(u, wv);                                  // [B, H_kv, GL, D]
    if (b.v_bias) o = o + pm.sum(-1, true) * b.v_bias->view({1, Hk, 1, D});
    return o;
  };
  at::Tensor o;
  if (cache.has_image()) {
    const at::Tensor is_img = cache.image().view({B, 1, 1, S}).to(p.scalar_type());
    o = output(text, p * (1 - is_img)) + output(image, p * is_img);
  } else {
    o = output(text, p);
  }
  return o.view({B, heads, L, D});
}

at::Tensor MlaAttention::latent_attention_stat(const at::Tensor& q_rope, const at::Tensor& q_nope,
                                               const LatentKvCache& cache,
                                               AttentionStat which) const {
  const int64_t B = q_rope.size(0), L = q_rope.size(2), S = cache.tokens();
  const int64_t G = heads / kv_heads;
  // [B, H_kv, G*count, S] -> per query head [B, H, count, S] (head h = kv * G + g).
  auto probs = [&](int64_t from, int64_t count) {
    return at::softmax(absorbed_scores(q_rope, q_nope, cache, from, count), -1)
        .view({B, kv_heads, G, count, S})
        .reshape({B, heads, count, S});
  };
  return reduce_attention_stat(which, L, B * heads * S, probs);
}

std::unique_ptr<KvCache> MlaAttention::make_cache(AttentionImpl, int64_t reserve_tokens) const {
  return std::make_unique<LatentKvCache>(reserve_tokens);
}

void MlaAttention::for_each_parameter(const std::string& prefix, const ParameterVisitor& visit) {
  visit(prefix + "q_proj.weight", q_weight);
  if (q_bias) visit(prefix + "q_proj.bias", *q_bias);
  visit(prefix + "k_r_proj.weight", k_rope_weight);
  if (k_rope_bias) visit(prefix + "k_r_proj.bias", *k_rope_bias);
  auto branch = [&](const std::string& p, MlaBranch& b) {
    if (b.down) visit(p + "down_kv.weight", *b.down);
    visit(p + "up_k.weight", b.up_k);
    if (b.k_bias) visit(p + "up_k.bias", *b.k_bias);
    visit(p + "up_v.weight", b.up_v);
    if (b.v_bias) visit(p + "up_v.bias", *b.v_bias);
  };
  if (!text.down) {  // stage 1: one kv_proj, `image` is a copy of the same tensor handles
    branch(prefix + "kv_proj.", text);
  } else {
    branch(prefix + "kv_proj_img.", image);
    branch(prefix + "kv_proj_text.", text);
  }
  visit(prefix + "o_proj.weight", o_weight);
  if (o_bias) visit(prefix + "o_proj.bias", *o_bias);
}

}  // namespace mlab::models
