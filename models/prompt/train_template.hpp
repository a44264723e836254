#pragma once
// Training prompts of the three families as ms-swift 3.4.0 encodes a conversation in train mode
// (`template.set_mode("train"); template.encode({"messages", "images"})`), the encoding the
// MHA2MLA-VLM authors use for fine-tuning (train_stage{1,2}.py) and for MD-SVD calibration
// (run_svd_init.py: the S = sum X X^T of §2.5 is taken over these tokens). Swift's templates:
//   llava       llava1_5_hf:  prefix "<s>", prompt "USER: {{QUERY}}\nASSISTANT:", chat_sep "</s>",
//               suffix "</s>", system_prefix "<s>{{SYSTEM}}\n"; an image tag becomes "<image>\n".
//   llava_next  llama3_llava_next_hf (Llama3TemplateMeta): prefix "<|begin_of_text|>", prompt
//               "<|start_header_id|>user<|end_header_id|>\n\n{{QUERY}}<|eot_id|><|start_header_id|>
//               assistant<|end_header_id|>\n\n", chat_sep = suffix = "<|eot_id|>", system_prefix
//               "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{{SYSTEM}}<|eot_id|>";
//               an image tag becomes "<image>\n".
//   qwen2_5_vl  qwen2_5_vl (QwenTemplateMeta, ChatML): no prefix, prompt
//   "<|im_start|>user\n{{QUERY}}
//               <|im_end|>\n<|im_start|>assistant\n", chat_sep "<|im_end|>\n", suffix "<|im_end|>",
//               system_prefix "<|im_start|>system\n{{SYSTEM}}<|im_end|>\n" with the default system
//               "You are a helpful assistant."; an image tag becomes
//               "<|vision_start|><|image_pad|><|vision_end|>".
// How swift builds the ids (swift/llm/template/base.py _swift_encode, _simplify_context_list,
// _encode_context_list, _add_dynamic_eos): the context list is [system_prefix | prefix], then per
// round [prompt(query), response, chat_sep] and for the last round [prompt, response, suffix];
// responses and the final suffix carry loss, everything else not. Image tags are replaced, then
// neighbouring strings of equal loss are JOINED and each joined piece is tokenized on its own
// (add_special_tokens=False). So the ids are not those of the whole string: a piece boundary
// splits BPE merges and restarts per-call normalisation (LLaMA-2's prepended "▁": "ASSISTANT:" +
// "yes</s>" gives "▁yes"). Labels: the piece's ids where it carries loss, else -100; then every
// loss-free gap that starts with the suffix's ids and is followed by a trained piece gets those
// ids as labels (the "</s>" / "<|eot_id|>" / "<|im_end|>" closing each non-final answer); then
// each image placeholder id is repeated to the image's token count with -100 labels.
// A conversation that ends with a user turn is encoded up to the generation prompt (no suffix);
// one that starts with an assistant turn gets an empty user turn first (swift's pretraining rule).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/prompt/chat_prompt.hpp"
#include "models/tokenizer/tokenizer.hpp"

namespace mlab::prompt {

// The label of a token that carries no loss (transformers' / swift's ignore_index).
inline constexpr int32_t kIgnoreLabel = -100;

// Which template turns a conversation into ids: the evaluation prompt (chat_prompt.hpp, ends with
// the generation prompt) or swift's training template (this file: answers and suffix included).
enum class PromptMode { kEval, kTrain };

// One piece swift tokenizes on its own: text after the template and the image-tag replacement,
// and whether its tokens carry loss.
struct TrainPiece {
  std::string text;
  bool trained = false;
};

struct TrainEncoding {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;  // one per id: the id where it carries loss, else kIgnoreLabel
};

// The image tag of swift's templates (every family): "<image>".
inline constexpr std::string_view kImageTag = "<image>";

// Images a conversation refers to: each turn's Turn::images (tags written before its text, where
// swift's _add_default_tags puts missing tags) plus the "<image>" tags written in the turns' texts
// (LLaVA-JSON style, e.g. "<image>\nWhat is ..."), in reading order.
int64_t train_image_count(std::span<const Turn> turns);

// The pieces swift tokenizes, in order, for `turns`: an optional leading "system" turn, then
// alternating "user" / "assistant" turns (see the file comment for the first and last turns).
// Throws mlab::Error for another role, two consecutive user or assistant turns, a system turn
// after the first or with images.
std::vector<TrainPiece> render_train_pieces(Family family, std::span<const Turn> turns);

// Ids and labels of `turns` as swift encodes them in train mode, the k-th image's placeholder
// repeated image_tokens[k] times (k in reading order). Throws mlab::Error as render_train_pieces,
// when the tokenizer lacks the family's placeholder as a special token, or when the number of
// image tags differs from image_tokens.size() or a count is not positive.
TrainEncoding encode_train(const Tokenizer& tokenizer, Family family, std::span<const Turn> turns,
                           std::span<const int64_t> image_tokens);

}  // namespace mlab::prompt
