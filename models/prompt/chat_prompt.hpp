#pragma once
// Evaluation prompts of the three model families as lmms-eval builds them (specs/models.md §5.1):
//   llava       lmms-eval's VICUNA_CHAT_TEMPLATE: "USER: <image>\n{q} ASSISTANT:", BOS from the
//               tokenizer, <image> expanded to the visual token count (576 for llava-1.5).
//   llava_next  the Llama-3 template of llama3-llava-next-8b's tokenizer_config.json:
//               "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\n{q}<|eot_id|>
//               <|start_header_id|>assistant<|end_header_id|>\n\n" (content trimmed; the
//               tokenizer.json adds no second BOS).
//   qwen2_5_vl  the Qwen2-VL chat template with lmms-eval's system line:
//               "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n
//               <|vision_start|><|image_pad|><|vision_end|>{q}<|im_end|>\n<|im_start|>assistant\n".
// Image placeholders are expanded on the token ids (equivalent to the processors' string
// expansion because every placeholder is an atomic added token).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer/tokenizer.hpp"

namespace mlab::prompt {

enum class Family { kLlava, kLlavaNext, kQwen2_5Vl };

// "llava" | "llava_next" | "qwen2_5_vl"; throws mlab::Error listing the known names.
Family family_from_name(std::string_view name);

// One chat turn: role "system" | "user" | "assistant"; `images` placeholders come before the
// text (lmms-eval puts the images first).
struct Turn {
  std::string role;
  std::string text;
  int64_t images = 0;
};

// The prompt text after the chat template, one placeholder per image, ending with the
// assistant's generation prompt.
std::string render_prompt(Family family, std::span<const Turn> turns);

// The placeholder token of a family: "<image>" (llava, llava_next) or "<|image_pad|>".
std::string_view image_placeholder(Family family);

// The id of the family's image placeholder in `tokenizer`. Throws mlab::Error naming the
// tokenizer when it lacks the placeholder as a special token.
int32_t image_placeholder_id(const Tokenizer& tokenizer, Family family);

// Token ids of the rendered prompt (with the tokenizer's special tokens, as the processors
// tokenize), the k-th image placeholder repeated image_tokens[k] times. Throws mlab::Error when
// the tokenizer lacks the placeholder as an added token or the counts disagree.
std::vector<int32_t> encode_prompt(const Tokenizer& tokenizer, Family family,
                                   std::span<const Turn> turns,
                                   std::span<const int64_t> image_tokens);

}  // namespace mlab::prompt
