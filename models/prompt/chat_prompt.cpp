// Chat templates of the three families (see chat_prompt.hpp), written out in C++ from the
// Jinja sources: lmms-eval llava_hf.py VICUNA_CHAT_TEMPLATE (L48) and its "<image>\n" context
// prefix (L486-500), llama3-llava-next-8b tokenizer_config.json chat_template, Qwen2-VL
// chat_template with lmms-eval qwen2_5_vl.py's messages (L315-400).
#include "models/prompt/chat_prompt.hpp"

#include "core/error.hpp"
#include "core/strings.hpp"
#include "models/tokenizer/unicode.hpp"

namespace mlab::prompt {
namespace {

// lmms-eval's llava_hf context: "<image> <image>\n{text}" when the turn has images.
std::string llava_content(const Turn& turn) {
  std::string content;
  for (int64_t i = 0; i < turn.images; ++i) content += i == 0 ? "<image>" : " <image>";
  if (turn.images > 0) content += "\n";
  return content + turn.text;
}

bool python_space(uint32_t cp) {
  return tokenizer::is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F);
}

// Jinja's `trim` (Python str.strip()).
std::string trim(std::string_view text) {
  std::size_t begin = std::string_view::npos, end = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t at = pos;
    if (!python_space(tokenizer::next_code_point(text, pos))) {
      if (begin == std::string_view::npos) begin = at;
      end = pos;
    }
  }
  return begin == std::string_view::npos ? std::string()
                                         : std::string(text.substr(begin, end - begin));
}

}  // namespace

Family family_from_name(std::string_view name) {
  if (name == "llava") return Family::kLlava;
  if (name == "llava_next") return Family::kLlavaNext;
  if (name == "qwen2_5_vl") return Family::kQwen2_5Vl;
  throw Error(unknown_name_message("model family", name, {"llava", "llava_next", "qwen2_5_vl"}));
}

std::string_view image_placeholder(Family family) {
  return family == Family::kQwen2_5Vl ? "<|image_pad|>" : "<image>";
}

std::string render_prompt(Family family, std::span<const Turn> turns) {
  std::string out;
  switch (family) {
    case Family::kLlava:
      for (std::size_t i = 0; i < turns.size(); ++i) {
        const std::string content = llava_content(turns[i]);
        if (i == 0 || turns[i].role == "user")
          out += "USER: " + content + " ";
        else
          out += " ASSISTANT: " + content + "</s>";
      }
      out += "ASSISTANT:";
      break;
    case Family::kLlavaNext:
      for (std::size_t i = 0; i < turns.size(); ++i) {
        if (i == 0) out += "<|begin_of_text|>";
        out += "<|start_header_id|>" + turns[i].role + "<|end_header_id|>\n\n" +
               trim(llava_content(turns[i])) + "<|eot_id|>";
      }
      out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case Family::kQwen2_5Vl:
      if (turns.empty() || turns.front().role != "system") {
        out += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
      }
      for (const auto& turn : turns) {
        out += "<|im_start|>" + turn.role + "\n";
        for (int64_t i = 0; i < turn.images; ++i)
          out += "<|vision_start|><|image_pad|><|vision_end|>";
        out += turn.text + "<|im_end|>\n";
      }
      out += "<|im_start|>assistant\n";
      break;
  }
  return out;
}

int32_t image_placeholder_id(const Tokenizer& tokenizer, Family family) {
  const std::string_view placeholder = image_placeholder(family);
  const auto id = tokenizer.token_to_id(placeholder);
  MLAB_CHECK(id.has_value() && tokenizer.is_special(*id), "tokenizer ", tokenizer.source(),
             " has no special token '", placeholder, "' (the model's image placeholder)");
  return *id;
}

std::vector<int32_t> encode_prompt(const Tokenizer& tokenizer, Family family,
                                   std::span<const Turn> turns,
                                   std::span<const int64_t> image_tokens) {
  const int32_t image_id = image_placeholder_id(tokenizer, family);
  const std::vector<int32_t> ids = tokenizer.encode(render_prompt(family, turns), true);
  std::vector<int32_t> out;
  out.reserve(ids.size());
  std::size_t image = 0;
  for (const int32_t id : ids) {
    if (id != image_id) {
      out.push_back(id);
      continue;
    }
    MLAB_CHECK(image < image_tokens.size(), "prompt has more image placeholders than the ",
               image_tokens.size(), " image token counts given");
    MLAB_CHECK(image_tokens[image] > 0, "image ", image, ": token count must be positive, got ",
               image_tokens[image]);
    out.insert(out.end(), static_cast<std::size_t>(image_tokens[image]), id);
    ++image;
  }
  MLAB_CHECK(image == image_tokens.size(), "prompt has ", image, " image placeholders but ",
             image_tokens.size(), " image token counts were given");
  return out;
}

}  // namespace mlab::prompt
