#pragma once
// KvMethod: the plugin interface of the KV-cache methods (DESIGN.md §3; after llama.cpp's
// llama_memory_i, one small interface). A method is named by a spec `name:key=value,...`
// (methods/kv_memory.hpp parses and validates it against the method's option schema); methods
// join into a stack with '+' (`mha2mla+quanto:bits=4`, `quanto:bits=4+h2o:budget=0.5`). Each
// method of a stack adds its part to one CacheRecipe — storage (dense, latent, quantized) and
// eviction (a TokenPruner per layer) — and the stack turns the recipe into the per-layer caches
// the runtime fills (models::CacheFactory). Methods never reach into the runner: eval, memory and
// the benchmarks all go through make_method_stack().
//
// Adding a method: docs/adding-a-method.md (one folder, one line in methods.def, one config).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "methods/kv_memory.hpp"
#include "models/runtime/kv_cache.hpp"
#include "models/runtime/quantizer.hpp"
#include "models/runtime/text_decoder.hpp"

namespace mlab::models {
class Vlm;
}

namespace mlab::methods {

// What a stack asks of the caches; every method fills its own part.
struct CacheRecipe {
  // The converted model's latent cache (mha2mla). Without it a converted model's layers store
  // reconstructed K/V (the authors' quantized-MLA setting, target=kv).
  bool latent = false;
  // Quantized storage (quanto | hqq): the formats of keys and values (for a latent cache the key
  // quantizer stores c, and k_rope too when quantize_rope), the residual window R.
  std::shared_ptr<const models::Quantizer> key_quantizer, value_quantizer;
  int64_t residual = 128;
  bool quantize_rope = false;
  // A fresh pruner per layer (h2o | tova | streaming_llm); empty = no eviction.
  std::function<std::unique_ptr<models::TokenPruner>()> pruner;
  // > 0: the prompt is prefilled in chunks of this many tokens and the pruner evicts after each
  // (EasyKV's streaming prefill, specs/baselines.md §4.2); 0: after the whole prompt (H2O, TOVA,
  // kvpress). Vlm GenerateOptions::prefill_chunk.
  int64_t prefill_chunk = 0;
};

class KvMethod {
 public:
  virtual ~KvMethod() = default;
  // The canonical spec, every option with its resolved value ("h2o:budget=0.5,sink=4,...").
  virtual std::string describe() const = 0;
  // Throws mlab::Error (a usage problem: the CLI exits 2) when the loaded model cannot run the
  // method, saying why and what is valid (e.g. mha2mla on an unconverted model).
  virtual void check_model(const models::Vlm& vlm) const { (void)vlm; }
  // Adds this method's part to the recipe of its stack (called in stack order).
  virtual void configure(CacheRecipe& recipe) const = 0;
};

// The integer option `key` of a resolved spec (make_method_stack writes every default out).
int64_t spec_int(const MethodSpec& spec, const std::string& key);

// A method whose whole part is a per-layer pruner (h2o, tova, streaming_llm): one
// `Pruner::from_options(spec.options)` per layer cache, and the prompt prefilled in chunks of
// `chunk` tokens when the spec asks (EasyKV's streaming prefill).
template <class Pruner>
class PruningMethod final : public KvMethod {
 public:
  explicit PruningMethod(MethodSpec spec) : spec_(std::move(spec)) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override {
    const auto options = spec_.options;
    recipe.pruner = [options]() -> std::unique_ptr<models::TokenPruner> {
      return Pruner::from_options(options);
    };
    if (options.count("chunk")) recipe.prefill_chunk = spec_int(spec_, "chunk");
  }

 private:
  MethodSpec spec_;
};

// A method whose whole part is quantized storage (quanto, hqq): `make(spec, axis)` builds the
// quantizer of keys (axis_key) and of values (axis_value); the residual window, quantize_rope and
// target (latent | kv, when stacked on mha2mla) are read from the spec.
class QuantizingMethod final : public KvMethod {
 public:
  using Make = std::shared_ptr<const models::Quantizer> (*)(const MethodSpec& spec, int axis);
  QuantizingMethod(MethodSpec spec, Make make) : spec_(std::move(spec)), make_(make) {}
  std::string describe() const override { return format_method_stack({spec_}); }
  void configure(CacheRecipe& recipe) const override;

 private:
  MethodSpec spec_;
  Make make_;
};

// One registered method: builds the method from its validated spec.
using MethodFactory = std::unique_ptr<KvMethod> (*)(const MethodSpec& spec);

// A parsed, checked stack with its recipe.
class MethodStack {
 public:
  // The canonical spec of the whole stack ("mha2mla:d_kv=8,rope_dim=4+quanto:bits=4,...").
  const std::string& spec() const { return spec_; }
  const std::vector<MethodSpec>& parts() const { return parts_; }
  const CacheRecipe& recipe() const { return recipe_; }
  // The per-layer caches the runtime builds for this stack (Vlm GenerateOptions::cache_factory).
  models::CacheFactory cache_factory() const;
  // True when the stack changes nothing of the model as loaded (full, or mha2mla alone).
  bool is_plain() const;

 private:
  friend MethodStack make_method_stack(std::string_view, const models::Vlm*);
  std::string spec_;
  std::vector<MethodSpec> parts_;
  std::vector<std::unique_ptr<KvMethod>> methods_;
  CacheRecipe recipe_;
};

// Parses `spec` (methods/kv_memory.hpp's grammar), builds every method through the registry
// (methods.def) and, when `vlm` is given, resolves and checks the stack against the loaded
// model: on a converted MHA2MLA model the latent cache is part of every stack (`full` means
// `mha2mla`, `quanto:bits=4` means `mha2mla+quanto:bits=4`), and mha2mla's d_kv / rope_dim come
// from the model (given ones must agree). Throws mlab::Error listing what is valid.
MethodStack make_method_stack(std::string_view spec, const models::Vlm* vlm = nullptr);

// Expands every part of `spec` written as a bare name (no ':' options) that has a
// configs/methods/<name>.json into that config's "spec" (each method's documented default, e.g.
// `h2o` -> `h2o:budget=0.375,sink=4,recent_ratio=0.1`). Other parts are unchanged.
std::string expand_method_presets(std::string_view spec);

// A comma-separated list of specs as `eval --methods` takes it: a comma starts a new spec unless
// what follows is an option (key=value) of the spec before it ("full,h2o:budget=0.5,sink=4,tova:
// budget=0.5" -> 3 specs); ';' always separates.
std::vector<std::string> split_method_list(std::string_view list);

}  // namespace mlab::methods
