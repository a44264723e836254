#pragma once
// Vlm: one of the paper's three VLM families loaded from its Hugging Face directory (DESIGN.md
// §3): tokenizer + chat prompt, image processor, vision tower + projector, text decoder with
// per-layer KV caches; prefill, decode steps and greedy generation, batched with left padding.
// Every step follows transformers 5.24 (specs/models.md §2-3); tests/data/tiny_vlms holds the
// reference outputs it is checked against.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/config/model_config.hpp"
#include "models/image/image_processor.hpp"
#include "models/image/pil_resize.hpp"
#include "models/prompt/chat_prompt.hpp"
#include "models/prompt/train_template.hpp"
#include "models/runtime/kv_cache.hpp"
#include "models/runtime/rotary_embedding.hpp"
#include "models/runtime/text_decoder.hpp"
#include "models/tokenizer/tokenizer.hpp"

namespace mlab::models {

class LlavaVision;
class QwenVision;

struct VlmOptions {
  c10::Device device = c10::Device(c10::kCPU);
  std::optional<c10::ScalarType> dtype;  // compute dtype; nullopt = the dtype the files store
  AttentionImpl attention = AttentionImpl::kSdpa;
  image::PillowPassOrder pillow = image::PillowPassOrder::kPillow13;
  // The transformers release whose image processor to reproduce (models/image/image_processor.hpp).
  image::ProcessorVariant processor = image::ProcessorVariant::kTransformers5;
};

// One conversation to answer: chat turns whose image placeholders (Turn::images) take `images`
// in order.
struct VlmRequest {
  std::vector<prompt::Turn> turns;
  std::vector<image::Rgb8Image> images;
  // kEval: the evaluation chat prompt, ending with the generation prompt (chat_prompt.hpp).
  // kTrain: swift's training template (train_template.hpp): the assistant turns and the closing
  // suffix are part of the ids (labels are not kept), "<image>" tags in the texts are placeholders
  // too; what the MHA2MLA-VLM authors calibrate MD-SVD on.
  prompt::PromptMode mode = prompt::PromptMode::kEval;
  // A single user turn: the images, then `question` (lmms-eval's layout).
  static VlmRequest single(std::string question, std::vector<image::Rgb8Image> images = {});
};

// The model inputs of a batch, as transformers' processors return them.
struct VlmInputs {
  at::Tensor input_ids;       // i64 [B, L], left padded
  at::Tensor attention_mask;  // i64 [B, L], 0 on padding
  at::Tensor pixel_values;    // f32; llava [N, C, S, S], llava_next [N, P, C, S, S],
                              // qwen [P, C*T*14*14]; undefined without images
  at::Tensor image_sizes;     // i64 [N, 2] original (H, W); llava_next only
  at::Tensor image_grid_thw;  // i64 [N, 3]; qwen only
};

// The state of a batch being generated: caches and the position of the next token per row.
struct VlmSession {
  KvCaches caches;
  at::Tensor next_position;   // i64 [B] (M-RoPE: all three streams equal once decoding)
  at::Tensor last_logits;     // f32 [B, V]: logits of the last prompt position / last step
  at::Tensor logits;          // f32 [B, L, V] of the whole prompt, when asked for
  at::Tensor image_features;  // any [N_img_tokens, E] used by the prefill (undefined if none)
};

struct PrefillOptions {
  bool all_logits = false;     // keep logits for every prompt position (VlmSession::logits)
  int64_t reserve_tokens = 0;  // cache room to allocate up front (prompt + new tokens)
  at::Tensor image_features;   // any [N_img_tokens, E]: use instead of running the vision tower
  CacheFactory cache_factory;  // the KV method's caches (methods/); empty = each layer's own
  // > 0: run the prompt through the decoder in chunks of this many tokens (a pruning method then
  // evicts after every chunk, as EasyKV's streaming prefill); 0: one forward for the prompt.
  int64_t chunk = 0;
};

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  std::vector<std::string> stop_strings;  // stop when the decoded answer contains one (cut there)
  bool stop_at_eos = true;                // stop a row at an EOS id (kept in its tokens)
  CacheFactory cache_factory;             // the KV method's caches; empty = each layer's own
  int64_t prefill_chunk = 0;              // PrefillOptions::chunk
};

struct GenerateResult {
  std::vector<std::vector<int64_t>> tokens;  // new tokens per row (stops at EOS / stop string)
  std::vector<std::string> texts;            // decoded, special tokens skipped, cut at a stop
  int64_t prompt_tokens = 0;                 // B * L (padding included)
  int64_t decode_steps = 0;                  // forward passes after the prefill
  double prefill_seconds = 0;                // vision + prefill, device synchronised
  double decode_seconds = 0;
  int64_t kv_bytes = 0;       // KvCache::bytes() summed over layers at the end
  int64_t kv_bytes_peak = 0;  // the largest such sum after any forward (prefill or a step)
  int64_t kv_tokens = 0;      // KvCache::tokens() of the first layer at the end (per row)
};

class Vlm {
 public:
  // Loads config.json, tokenizer.json, the image processor and the weights of `dir`. Throws
  // mlab::Error naming the file and the problem (missing/extra tensors, wrong shapes, ...).
  static Vlm load(const std::filesystem::path& dir, VlmOptions options = {});
  Vlm(Vlm&&) noexcept;
  Vlm& operator=(Vlm&&) noexcept;
  ~Vlm();

  // Tokenises and preprocesses a batch (left padded). Throws mlab::Error when a request's
  // placeholders and images disagree or an image is rejected by the processor.
  VlmInputs prepare(std::span<const VlmRequest> requests) const;

  // The rows that replace the image placeholders, images in order: any [N_img_tokens, E].
  at::Tensor image_features(const VlmInputs& inputs) const;

  // Positions of every prompt token: i64 [B, L] (Llama: 0.. over the unpadded tokens) or
  // [3, B, L] (Qwen2.5-VL get_rope_index); next: i64 [B] position of the first new token.
  std::pair<at::Tensor, at::Tensor> positions(const VlmInputs& inputs) const;

  // Tokens of the image modality in `ids` (i64 [B, L]) -> bool [B, L]: the image placeholders,
  // and for Qwen2.5-VL also <|vision_start|> / <|vision_end|> (MHA2MLA-VLM's routing rule).
  at::Tensor image_token_mask(const at::Tensor& ids) const;

  // Runs the prompt through the model into fresh caches.
  VlmSession prefill(const VlmInputs& inputs, const PrefillOptions& options = {}) const;
  // Feeds one token per row (i64 [B]); returns f32 [B, V] and advances the session.
  at::Tensor decode_step(VlmSession& session, const at::Tensor& tokens) const;
  // Greedy decoding (argmax, first index on ties, as transformers).
  GenerateResult generate(const VlmInputs& inputs, const GenerateOptions& options) const;

  // Training forward (F8): the prompt through the same modules prefill() runs (all positions at
  // once, causal attention, into throwaway caches) with the logits of every position. Nothing
  // here disables autograd: with grad mode on and parameters that require grad (see
  // named_parameters()), the result carries the graph. -> f32 [B, L, V].
  at::Tensor train_logits(const VlmInputs& inputs) const;

  // Every loaded weight as (canonical checkpoint name, the model's own tensor handle): the
  // decoder (TextDecoder::for_each_parameter), then the vision side: LLaVA's tower, projector and
  // image_newline, or Qwen2.5-VL's patch_embed, blocks and merger (QwenVision::for_each_parameter).
  // Setting requires_grad on a handle or updating it in place changes the model.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters();

  const ModelConfig& config() const { return config_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const image::ImageProcessor& image_processor() const { return *processor_; }
  TextDecoder& decoder() { return decoder_; }
  const TextDecoder& decoder() const { return decoder_; }
  const VlmOptions& options() const { return options_; }
  c10::ScalarType dtype() const { return dtype_; }
  const std::vector<int64_t>& eos_token_ids() const { return eos_ids_; }
  int64_t pad_token_id() const { return pad_id_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  Vlm() = default;
  prompt::Family prompt_family() const;
  int64_t image_token_count(const image::ProcessedImages& processed, std::size_t index,
                            const image::Rgb8Image& image) const;

  std::filesystem::path dir_;
  VlmOptions options_;
  c10::ScalarType dtype_ = c10::kFloat;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<image::ImageProcessor> processor_;
  std::unique_ptr<LlavaVision> llava_vision_;
  std::unique_ptr<QwenVision> qwen_vision_;
  TextDecoder decoder_;
  std::optional<RotaryEmbedding> rope_;
  std::vector<int64_t> eos_ids_;
  int64_t pad_id_ = 0;
};

// Qwen2.5-VL get_rope_index (specs/models.md §3.3) for one unpadded sequence: ids of its tokens,
// the (t, h, w) grids of its images in order, the image token id and the merge size. Returns
// i64 [3, n] positions and the next position (max + 1).
std::pair<at::Tensor, int64_t> qwen_rope_index(std::span<const int64_t> ids,
                                               std::span<const std::array<int64_t, 3>> grids,
                                               int64_t image_token_id, int64_t merge_size);

}  // namespace mlab::models
