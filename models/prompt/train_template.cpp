// ms-swift 3.4.0's training templates of the three families (see train_template.hpp), written out
// in C++ from swift/llm/template/template/{llava,llama,qwen,utils}.py (the TemplateMeta fields)
// and swift/llm/template/base.py (Template._swift_encode, _split_special_tokens,
// _pre_tokenize_images, _simplify_context_list, _encode_context_list, _add_dynamic_eos) and the
// image-token expansion of LlavaHfTemplate._encode / Qwen2VLTemplate._encode.
#include "models/prompt/train_template.hpp"

#include <algorithm>
#include <optional>
#include <string_view>

#include "core/error.hpp"

namespace mlab::prompt {
namespace {

// The TemplateMeta fields swift's encoder reads for these three templates.
struct TemplateMeta {
  std::string_view prefix;
  std::string_view system_prefix;  // with {{SYSTEM}}
  std::string_view prompt;         // with {{QUERY}}
  std::string_view chat_sep;
  std::string_view suffix;
  std::optional<std::string_view> default_system;
  std::string_view image;  // what replace_tag('image') returns
};

const TemplateMeta& template_meta(Family family) {
  static const TemplateMeta llava{
      "<s>",        "<s>{{SYSTEM}}\n", "USER: {{QUERY}}\nASSISTANT:", "</s>", "</s>",
      std::nullopt, "<image>\n"};
  static const TemplateMeta llava_next{
      "<|begin_of_text|>",
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{{SYSTEM}}<|eot_id|>",
      "<|start_header_id|>user<|end_header_id|>\n\n{{QUERY}}<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n",
      "<|eot_id|>",
      "<|eot_id|>",
      std::nullopt,
      "<image>\n"};
  static const TemplateMeta qwen{"",
                                 "<|im_start|>system\n{{SYSTEM}}<|im_end|>\n",
                                 "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n",
                                 "<|im_end|>\n",
                                 "<|im_end|>",
                                 "You are a helpful assistant.",
                                 "<|vision_start|><|image_pad|><|vision_end|>"};
  switch (family) {
    case Family::kLlava:
      return llava;
    case Family::kLlavaNext:
      return llava_next;
    case Family::kQwen2_5Vl:
      return qwen;
  }
  MLAB_FAIL("train template: bad family");
}

// Python's str.replace(old, new): every occurrence, left to right, no rescanning.
std::string replace_all(std::string_view text, std::string_view old, std::string_view with) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t at; (at = text.find(old, from)) != std::string_view::npos;
       from = at + old.size()) {
    out.append(text.substr(from, at - from)).append(with);
  }
  return out.append(text.substr(from));
}

int64_t count_tags(std::string_view text) {
  int64_t n = 0;
  for (std::size_t at = text.find(kImageTag); at != std::string_view::npos;
       at = text.find(kImageTag, at + kImageTag.size())) {
    ++n;
  }
  return n;
}

// A message of swift's list: the turn's image tags, then its text.
struct Message {
  std::string role;
  std::string content;
  bool has_content = true;  // false: the None response swift appends after a final user turn
};

}  // namespace

int64_t train_image_count(std::span<const Turn> turns) {
  int64_t n = 0;
  for (const auto& t : turns) n += t.images + count_tags(t.text);
  return n;
}

std::vector<TrainPiece> render_train_pieces(Family family, std::span<const Turn> turns) {
  const TemplateMeta& meta = template_meta(family);
  // StdTemplateInputs.from_dict: a leading system message becomes the system ("" = none).
  std::optional<std::string> system;
  std::vector<Message> messages;
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const Turn& t = turns[i];
    MLAB_CHECK(t.images >= 0, "train template: turn ", i, " has ", t.images, " images");
    std::string content;
    for (int64_t k = 0; k < t.images; ++k) content += kImageTag;
    content += t.text;
    if (t.role == "system") {
      MLAB_CHECK(i == 0, "train template: turn ", i,
                 " is a system turn; only the first turn may be one");
      MLAB_CHECK(t.images == 0, "train template: the system turn cannot have images");
      system = std::move(content);
      continue;
    }
    MLAB_CHECK(t.role == "user" || t.role == "assistant", "train template: turn ", i, " has role '",
               t.role, "' (expected system, user or assistant)");
    messages.push_back({t.role, std::move(content)});
  }
  MLAB_CHECK(!messages.empty(), "train template: the conversation has no user or assistant turn");
  // _get_std_messages: a leading assistant turn gets an empty user turn (pretraining text); a
  // final user turn an absent response (encoded up to the generation prompt).
  if (messages.front().role == "assistant") messages.insert(messages.begin(), Message{"user", ""});
  if (messages.size() % 2 == 1) messages.push_back(Message{"assistant", "", false});
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const char* expected = i % 2 == 0 ? "user" : "assistant";
    MLAB_CHECK(messages[i].role == expected, "train template: expected alternating user and ",
               "assistant turns, but message ", i, " (system turn not counted) is ",
               messages[i].role, " after ", messages[i - 1].role);
  }

  // _swift_encode: the context list with each context's loss (RESPONSE and SUFFIX carry loss).
  std::vector<TrainPiece> contexts;
  auto add = [&contexts](std::string text, bool trained) {
    contexts.push_back({std::move(text), trained});
  };
  const std::optional<std::string> effective =
      system
          ? system
          : (meta.default_system ? std::optional<std::string>(*meta.default_system) : std::nullopt);
  if (effective && !effective->empty()) {
    add(replace_all(meta.system_prefix, "{{SYSTEM}}", *effective), false);
  } else {
    add(std::string(meta.prefix), false);
  }
  const std::size_t rounds = messages.size() / 2;
  for (std::size_t r = 0; r < rounds; ++r) {
    const Message& query = messages[2 * r];
    const Message& response = messages[2 * r + 1];
    // _concat_context_list replaces {{SYSTEM}}, {{QUERY}}, {{ROUND0}}, {{ROUND1}} in turn, so
    // a query holding "{{ROUND0}}" gets the round number, as in swift.
    std::string prompt = replace_all(meta.prompt, "{{QUERY}}", query.content);
    prompt = replace_all(prompt, "{{ROUND0}}", std::to_string(r));
    prompt = replace_all(prompt, "{{ROUND1}}", std::to_string(r + 1));
    add(std::move(prompt), false);
    if (r + 1 < rounds) {
      add(response.content, true);
      add(std::string(meta.chat_sep), false);
    } else if (response.has_content) {
      add(response.content, true);
      add(std::string(meta.suffix), true);
    }
  }

  // _split_special_tokens + _pre_tokenize_images: every "<image>" becomes the family's image
  // text without loss (the counts must match: encode_train checks); empty strings drop. Then
  // _simplify_context_list joins neighbours of equal loss, starting from "no loss".
  std::vector<TrainPiece> pieces;
  std::string run;
  bool run_trained = false;
  auto push = [&](std::string_view text, bool trained) {
    if (text.empty()) return;
    if (trained != run_trained && !run.empty()) {
      pieces.push_back({std::move(run), run_trained});
      run.clear();
    }
    run_trained = trained;
    run.append(text);
  };
  for (const auto& c : contexts) {
    std::string_view text = c.text;
    for (std::size_t at; (at = text.find(kImageTag)) != std::string_view::npos;) {
      push(text.substr(0, at), c.trained);
      push(meta.image, false);
      text.remove_prefix(at + kImageTag.size());
    }
    push(text, c.trained);
  }
  if (!run.empty()) pieces.push_back({std::move(run), run_trained});
  return pieces;
}

TrainEncoding encode_train(const Tokenizer& tokenizer, Family family, std::span<const Turn> turns,
                           std::span<const int64_t> image_tokens) {
  const std::string_view placeholder = image_placeholder(family);
  const int32_t image_id = image_placeholder_id(tokenizer, family);
  const int64_t tags = train_image_count(turns);
  MLAB_CHECK(tags == static_cast<int64_t>(image_tokens.size()), "train template: the turns have ",
             tags, " image tag(s) but ", image_tokens.size(), " image token count(s) were given");

  // _encode_context_list: each piece tokenized on its own, without special tokens.
  std::vector<int32_t> ids, labels;
  for (const auto& piece : render_train_pieces(family, turns)) {
    const std::vector<int32_t> piece_ids = tokenizer.encode(piece.text, false);
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    if (piece.trained) {
      labels.insert(labels.end(), piece_ids.begin(), piece_ids.end());
    } else {
      labels.insert(labels.end(), piece_ids.size(), kIgnoreLabel);
    }
  }

  // _add_dynamic_eos: a loss-free gap [start, i) after a trained stretch and before the next
  // one that begins with the suffix's ids gets them as labels (the end of each earlier answer).
  const std::vector<int32_t> suffix = tokenizer.encode(template_meta(family).suffix, false);
  std::size_t start = 0;
  for (std::size_t i = 1; i < labels.size(); ++i) {
    if (labels[i - 1] >= 0 && labels[i] == kIgnoreLabel) start = i;
    if (start > 0 && labels[i - 1] == kIgnoreLabel && labels[i] >= 0) {
      if (i - start >= suffix.size() &&
          std::equal(suffix.begin(), suffix.end(),
                     ids.begin() + static_cast<std::ptrdiff_t>(start))) {
        std::copy(suffix.begin(), suffix.end(),
                  labels.begin() + static_cast<std::ptrdiff_t>(start));
      }
    }
  }

  // LlavaHfTemplate._encode / Qwen2VLTemplate._encode (_extend_tokens): each placeholder id
  // becomes its image's token count, labels -100.
  TrainEncoding out;
  out.input_ids.reserve(ids.size());
  out.labels.reserve(ids.size());
  std::size_t image = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != image_id) {
      out.input_ids.push_back(ids[i]);
      out.labels.push_back(labels[i]);
      continue;
    }
    MLAB_CHECK(image < image_tokens.size(), "train template: the encoded prompt has more '",
               placeholder, "' tokens than the ", image_tokens.size(), " image(s)");
    MLAB_CHECK(image_tokens[image] > 0, "image ", image, ": token count must be positive, got ",
               image_tokens[image]);
    out.input_ids.insert(out.input_ids.end(), static_cast<std::size_t>(image_tokens[image]),
                         ids[i]);
    out.labels.insert(out.labels.end(), static_cast<std::size_t>(image_tokens[image]),
                      kIgnoreLabel);
    ++image;
  }
  MLAB_CHECK(image == image_tokens.size(), "train template: the encoded prompt has ", image, " '",
             placeholder, "' token(s) but ", image_tokens.size(), " image(s) were given");
  return out;
}

}  // namespace mlab::prompt
