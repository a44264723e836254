#pragma once
// Typed view of a Hugging Face config.json for the paper's three VLM families (specs/models.md
// §1.1): LLaVA-1.5 (`llava`), LLaVA-NeXT (`llava_next`) and Qwen2.5-VL (`qwen2_5_vl`).
// Defaults and derived values are the ones transformers 5 applies (LlamaConfig, CLIPVisionConfig,
// LlavaConfig, LlavaNextConfig, Qwen2_5_VL{,Text,Vision}Config, and the few the modeling files
// hard-code, e.g. Qwen2's q/k/v biases); tests/data/configs/*/expected.json holds what
// transformers resolves for each fixture. Torch-free.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mlab::models {

enum class ModelFamily { kLlava, kLlavaNext, kQwen2_5_VL };

// The config.json `model_type` of a family: "llava", "llava_next" or "qwen2_5_vl".
std::string_view family_name(ModelFamily family);

// Every supported `model_type`, in enum order.
const std::vector<std::string>& family_names();

// The family whose `model_type` is `name`. Throws mlab::Error naming the supported types and the
// closest match otherwise.
ModelFamily parse_family(std::string_view name);

// Rotary position embedding of the text model, after transformers' standardisation
// (`rope_scaling` wins over `rope_parameters`; `rope_theta` inside them wins over a sibling key).
struct RopeConfig {
  std::string type = "default";            // rope_type; Qwen2.5-VL's "mrope" becomes "default"
  double theta = 10000.0;                  // rope_theta (Llama 10000, Qwen2.5-VL text 1e6)
  std::vector<int64_t> mrope_section;      // Qwen2.5-VL only: (t, h, w) split, sums to head_dim / 2
  std::optional<double> factor;            // scaled types (linear, dynamic, yarn, llama3, ...)
  std::optional<double> low_freq_factor;   // llama3
  std::optional<double> high_freq_factor;  // llama3
  std::optional<int64_t> original_max_position_embeddings;  // llama3 / yarn / longrope
};

// The decoder. Member defaults are LlamaConfig's (transformers 5); qwen2_5_vl_text_defaults()
// gives Qwen2_5_VLTextConfig's.
struct TextConfig {
  std::string model_type = "llama";  // "llama" (LLaVA families) or "qwen2_5_vl_text"
  int64_t vocab_size = 32000;        // embedding rows (may exceed the tokenizer's size)
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // Llama: = heads when absent or null
  int64_t head_dim = 128;            // hidden_size / heads when absent (Qwen: always)
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  RopeConfig rope;
  bool attention_bias = false;       // q/k/v projections carry biases (Qwen2: always)
  bool attention_out_bias = false;   // o_proj carries a bias (Llama: = attention_bias; Qwen2: no)
  bool mlp_bias = false;             // gate/up/down projections carry biases
  bool tie_word_embeddings = false;  // as the text config says; ModelConfig's value is the one used
  std::optional<int64_t> bos_token_id = 1;
  std::vector<int64_t> eos_token_id{2};  // an int in the file becomes one element; null -> empty
  std::optional<int64_t> pad_token_id;
  std::optional<std::string> dtype;          // "bfloat16", ... from `dtype` or `torch_dtype`
  bool use_sliding_window = false;           // Qwen2 sliding-window fields; false/nullopt for Llama
  std::optional<int64_t> sliding_window;     // nullopt unless use_sliding_window
  std::optional<int64_t> max_window_layers;  // Qwen2: layers >= this use the window
  std::vector<std::string> layer_types;      // one per layer: "full_attention" |
                                             // "sliding_attention"
};

// Qwen2_5_VLTextConfig's defaults (transformers 5): vocab 152064, hidden 8192, 29568, 80 layers,
// 64 heads, 8 kv heads, max positions 32768, eps 1e-5, rope theta 1e6 with M-RoPE sections
// [16, 24, 24] (the modeling default), q/k/v biases, bos 151643, eos 151645, window 4096 from
// layer 80 (unused unless use_sliding_window).
TextConfig qwen2_5_vl_text_defaults();

// CLIP vision tower of the LLaVA families. Member defaults are CLIPVisionConfig's (ViT-B/32);
// llava_clip_defaults() gives the ViT-L/14-336 that LlavaConfig uses when vision_config is absent.
struct ClipVisionConfig {
  std::string model_type = "clip_vision_model";
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t projection_dim = 512;  // unused by LLaVA (no projection head)
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;  // square input side in pixels
  int64_t patch_size = 32;   // divides image_size
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;

  // Per-head width of the attention (hidden_size is a multiple of the heads after parsing).
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  // Patch tokens per image, the class token excluded: (image_size / patch_size)^2.
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

// LlavaConfig / LlavaNextConfig default vision tower: hidden 1024, 4096, projection 768, 24 layers,
// 16 heads, image 336, patch 14 (CLIP defaults otherwise).
ClipVisionConfig llava_clip_defaults();

// Qwen2.5-VL window-attention ViT. Member defaults are Qwen2_5_VLVisionConfig's (transformers 5).
struct QwenVisionConfig {
  std::string model_type = "qwen2_5_vl_vision";
  int64_t depth = 32;  // blocks (alias num_hidden_layers)
  int64_t hidden_size = 3584;
  int64_t intermediate_size = 3420;
  int64_t num_heads = 16;   // alias num_attention_heads
  int64_t in_channels = 3;  // alias in_chans (hub files)
  int64_t patch_size = 14;
  int64_t spatial_merge_size = 2;   // merger joins merge x merge patches
  int64_t temporal_patch_size = 2;  // frames per patch (an image is repeated)
  int64_t tokens_per_second = 4;
  int64_t window_size = 112;                                  // window side in pixels
  int64_t out_hidden_size = 3584;                             // merger output = text hidden_size
  std::vector<int64_t> fullatt_block_indexes{7, 15, 23, 31};  // blocks with full attention
  std::string hidden_act = "silu";
  double rope_theta = 10000.0;  // 2-D rotary base (vision_config.rope_parameters; not in hub files)

  // Per-head width of the attention; a multiple of 4 after parsing (2-D rotary embedding).
  int64_t head_dim() const { return hidden_size / num_heads; }
};

// A whole model: family, decoder, vision tower and the multimodal glue.
struct ModelConfig {
  ModelFamily family = ModelFamily::kLlava;
  TextConfig text;
  std::optional<ClipVisionConfig> clip_vision;  // LLaVA families
  std::optional<QwenVisionConfig> qwen_vision;  // Qwen2.5-VL
  int64_t image_token_id = 32000;               // LLaVA: `image_token_index` or `image_token_id`
  // LLaVA families only (defaults as in LlavaConfig otherwise):
  std::vector<int64_t> vision_feature_layer{-2};  // CLIP hidden_states index(es); an int -> one
  std::string vision_feature_select_strategy = "default";  // "default" drops CLS | "full"
  std::string projector_hidden_act = "gelu";
  bool multimodal_projector_bias = true;
  int64_t image_seq_length = 576;                            // image tokens per (base) image
  std::vector<std::array<int64_t, 2>> image_grid_pinpoints;  // LLaVA-NeXT (height, width) pairs
  std::optional<bool> use_image_newline_parameter;  // as in the file (transformers always adds it)
  // Qwen2.5-VL special ids (nullopt for the LLaVA families unless the file has them):
  std::optional<int64_t> video_token_id;
  std::optional<int64_t> vision_start_token_id;
  std::optional<int64_t> vision_end_token_id;
  std::optional<int64_t> vision_token_id;  // extra hub key, not a transformers field
  std::optional<int64_t> pad_token_id;     // top-level key (Qwen flat layout: moved to text)
  bool tie_word_embeddings = false;        // the value transformers ties lm_head with
  std::optional<std::string> dtype;        // top-level `dtype` or `torch_dtype`
  nlohmann::json raw;                      // the whole file, unchanged
};

// Parses a config.json document. `source` names it in errors (a file path or e.g. "<inline>").
// Accepts the nested LLaVA layout, Qwen2.5-VL's flat hub layout (text keys at the top level,
// `rope_theta` + `rope_scaling`) and transformers-5's nested layout (`text_config`,
// `rope_parameters`). Unknown keys are ignored. Throws mlab::Error "<source>: <key path>:
// <problem>" for a missing or unknown model_type, wrong JSON types, non-positive sizes and
// inconsistent shapes (heads vs hidden size / kv heads / head_dim, M-RoPE sections,
// image vs patch size, feature layers, pinpoints, full-attention blocks, merger width).
ModelConfig parse_model_config(const nlohmann::json& document, const std::string& source);

// Reads and parses `dir_or_file` (a directory means <dir>/config.json). Errors start with the
// file's path; invalid JSON reports the parser's byte position.
ModelConfig load_model_config(const std::filesystem::path& dir_or_file);

// The resolved values (raw excluded) as JSON, in the schema of the fixtures' expected.json
// written by tools/fixtures/make_config_fixtures.py; fields that do not apply to the family are
// null. For printing and for storing with results.
nlohmann::json resolved_config_json(const ModelConfig& config);

}  // namespace mlab::models
