// `mha2mla`: the latent cache of a model converted by `mla-bench convert` (MHA2MLA-VLM, Fan et al.
// 2026, §2-3; specs/method.md §3.2, §5.2): per token the joint latent c and the RoPE key part,
// attended with absorbed up-projections. The conversion itself is methods/mha2mla/*_converter;
// this method only selects the latent storage and checks that the model has one.
#include "core/error.hpp"
#include "methods/kv_method.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/vlm.hpp"

namespace mlab::methods {
namespace {

class Mha2mlaMethod final : public KvMethod {
 public:
  explicit Mha2mlaMethod(MethodSpec spec) : spec_(std::move(spec)) {}

  std::string describe() const override { return format_method_stack({spec_}); }

  void check_model(const models::Vlm& vlm) const override {
    const auto mla = models::MlaConfig::from_model_config(vlm.config());
    MLAB_CHECK(mla.has_value(), "method mha2mla: the model at ", vlm.dir().string(),
               " is not converted to MLA (its config.json has no \"mha2mla\" block); convert it "
               "first with `mla-bench convert --model DIR --out DIR`, or evaluate it with full, "
               "quanto, hqq, h2o, tova or streaming_llm");
    MLAB_CHECK(mla->stage == 2, "method mha2mla: the model at ", vlm.dir().string(),
               " is a stage-1 MHA2MLA model (partial RoPE only): it has no latent cache; "
               "evaluate it with full (or any other method), or convert it to stage 2");
    auto agree = [&](const char* key, int64_t model_value) {
      const auto it = spec_.options.find(key);
      if (it == spec_.options.end()) return;
      MLAB_CHECK(it->second == std::to_string(model_value), "method mha2mla: ", key, "=",
                 it->second, " but the model at ", vlm.dir().string(), " was converted with ", key,
                 "=", model_value, " (leave it out to use the model's)");
    };
    agree("d_kv", mla->d_kv);
    agree("rope_dim", mla->rope_dim);
  }

  void configure(CacheRecipe& recipe) const override { recipe.latent = true; }

 private:
  MethodSpec spec_;
};

}  // namespace

std::unique_ptr<KvMethod> make_mha2mla_method(const MethodSpec& spec) {
  return std::make_unique<Mha2mlaMethod>(spec);
}

}  // namespace mlab::methods
