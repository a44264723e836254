#pragma once
// The parameters each MHA2MLA-VLM fine-tuning stage trains (Fan et al. 2026, §3 "PEFT" and
// Appendix A, Tables 5-6 "#Param."; specs/method.md §6.1), computed from a model config alone:
// every parameter of the model as transformers 4.51 builds it, after the authors' stage-1 patch
// (patching_model_load.py:patch_model) or stage-2 patch (patch_model_stage2_multimodal), with the
// trainable flag their train_stage{1,2}.py sets. Torch-free; no weights are read.
//
// What the authors' code trains (not what the paper's prose says, see specs/method.md §6.1):
// - swift's prepare_model (train_type full): everything trainable, then the vision tower frozen
//   (freeze_vit) and the aligner trainable (freeze_aligner false; their cfgs): the projector
//   `multi_modal_projector` (LLaVA, LLaVA-NeXT) or `visual.merger` (Qwen2.5-VL). Parameters in no
//   swift group keep requires_grad: LLaVA-NeXT's `image_newline` is trained in both stages.
// - utils.py:freeze_non_attn_weights(LLM, peft_train) on the language model's own names, then
//   lm_head frozen. Its rule is a substring test per name; because of Python's and/or precedence
//   in its v4 clause, a name containing "norm" is trainable under every version (v2..v6):
//     v2: "attn" | "norm"                             (stage 2 in their cfgs)
//     v3: "attn" & !"o_proj"                          | "norm"
//     v4: "attn" & !"o_proj" & !"k_r_proj"            | "norm"   (stage 1 in their cfgs)
//     v5: v4 & !"q_proj"                              | "norm"
//     v6: v5 & !"up_"                                 | "norm"
//   peft_train unset (none): no freezing inside the LLM; lm_head and embeddings train too.
// Stage 0 is ours, not the authors': the unconverted model (q/k/v/o) with peft none and, by
// default, the vision tower trained too (freeze_vit_for_stage): every tensor trainable, what
// training a small VLM from scratch needs (issue F9; docs/synth_models.md).
// Names are our canonical checkpoint names (models/nn/weights.hpp; transformers 4.51's in-memory
// names), the converted attention as methods/mha2mla/mha2mla_converter.hpp save_converted writes
// it. tests/training/test_trainable.cpp checks every name, shape and flag against the authors'
// scripts run on the tiny fixtures (tools/fixtures/make_trainable_fixtures.py).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/config/model_config.hpp"

namespace mlab::training {

// The authors' `peft_train` values. kNone: the argument unset (no LLM freezing).
enum class PeftVersion { kNone, kV2, kV3, kV4, kV5, kV6 };

// "none" | "v2" | ... | "v6"; throws mlab::Error naming the known versions and the closest one.
PeftVersion parse_peft_version(std::string_view name);
std::string_view peft_version_name(PeftVersion version);
// Every version name, in enum order.
const std::vector<std::string>& peft_version_names();
// What the authors' cfgs/stage{1,2}.yaml use: v4 for stage 1, v2 for stage 2 (stage 0: none).
PeftVersion default_peft_version(int stage);

// swift's freeze_vit for `stage` from the CLI's flags: stages 1 and 2 freeze the vision tower
// unless `train_vision` (the authors' cfgs: frozen); stage 0 (all parameters) trains it unless
// `freeze_vision`.
bool freeze_vit_for_stage(int stage, bool train_vision, bool freeze_vision);

// utils.py:freeze_non_attn_weights's test for one parameter name relative to the language model
// (e.g. "model.layers.0.self_attn.q_proj.weight"), precedence quirk included. kNone: true.
bool authors_peft_rule(PeftVersion version, std::string_view llm_name);

struct TrainableOptions {
  int stage = 1;                    // 0: the unconverted model; 1: partial RoPE; 2: MLA
  std::optional<PeftVersion> peft;  // nullopt: default_peft_version(stage)
  int64_t rope_dim = 32;            // r: RoPE dims kept per head (stages 1, 2)
  int64_t d_kv = 64;                // latent per KV head, d_c = n_kv * d_kv (stage 2)
  bool freeze_vit = true;           // swift's freeze_vit (their cfgs: true)
  bool freeze_aligner = false;      // swift's freeze_aligner (their cfgs: false)
};

// One parameter tensor of the model.
struct ParameterEntry {
  std::string name;  // canonical name, e.g. "language_model.model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // as the checkpoint stores it (Linear: [out, in])
  std::string group;           // vision_tower | projector | image_newline | embed_tokens | q_proj |
                               // k_proj | v_proj | o_proj | k_r_proj | kv_proj.up_k |
                               // kv_proj.up_v | kv_proj_{img,text}.{down_kv,up_k,up_v} | mlp |
                               // norms | lm_head
  bool trainable = false;
  int64_t numel() const;
};

// The parameters of one group, in order of first appearance.
struct ParameterGroup {
  std::string name;
  int64_t tensors = 0;
  int64_t parameters = 0;            // elements
  int64_t trainable_parameters = 0;  // elements whose tensor is trainable
};

// All parameters of one stage's model with their trainable flags.
class TrainableSet {
 public:
  // Resolves options.peft and checks the options against the config: stage in {0, 1, 2};
  // rope_dim even and in (0, head_dim]; d_kv in [1, min(n_kv (2 head_dim - r), hidden) / n_kv]
  // (the conversion's bound, methods/mha2mla). Throws mlab::Error naming the value and the range.
  static TrainableSet build(const models::ModelConfig& config, const TrainableOptions& options);

  // transformers 4.51's named_parameters() order (tied lm_head omitted, as it dedups).
  const std::vector<ParameterEntry>& parameters() const { return parameters_; }
  std::vector<ParameterGroup> groups() const;
  const TrainableOptions& options() const { return options_; }  // peft resolved
  int64_t total_parameters() const;
  int64_t trainable_parameters() const;
  // trainable / total (swift's get_model_parameter_info percentage / 100; the paper's Tables 5-6).
  double trainable_share() const;
  // {"stage", "peft", "rope_dim", "d_kv" (stage 2, else null), "freeze_vit", "freeze_aligner",
  //  "total_parameters", "trainable_parameters", "trainable_share", "groups": [{"group",
  //  "tensors", "parameters", "trainable_parameters", "share"}]} plus, with `with_parameters`,
  //  "parameters": [{"name", "shape", "group", "trainable"}].
  nlohmann::json to_json(bool with_parameters = false) const;

 private:
  TrainableOptions options_;
  std::vector<ParameterEntry> parameters_;
};

}  // namespace mlab::training
