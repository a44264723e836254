#include "models/runtime/vlm.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"
#include "core/json_depth.hpp"
#include "models/image/image_processor_factory.hpp"
#include "models/runtime/mha2mla_block.hpp"
#include "models/nn/weights.hpp"
#include "models/vision/llava_vision.hpp"
#include "models/vision/qwen_vision.hpp"

namespace mlab::models {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// eos ids of config.json's text config plus generation_config.json's, without duplicates.
std::vector<int64_t> read_eos_ids(const std::filesystem::path& dir, const TextConfig& text) {
  std::vector<int64_t> ids = text.eos_token_id;
  const auto path = dir / "generation_config.json";
  std::ifstream in(path);
  if (in.good()) {
    nlohmann::json j;
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    check_json_depth(text, path.string());  // F11 D1
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      MLAB_FAIL(path.string(), ": invalid JSON (", e.what(), ")");
    }
    const auto eos = j.value("eos_token_id", nlohmann::json());
    for (const auto& v : eos.is_array() ? eos : nlohmann::json::array({eos})) {
      if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

at::Tensor from_vector(const std::vector<float>& values, const std::vector<int64_t>& shape) {
  return at::from_blob(const_cast<float*>(values.data()), shape, at::kFloat).clone();
}

at::Tensor from_vector(const std::vector<int64_t>& values, const std::vector<int64_t>& shape) {
  return at::from_blob(const_cast<int64_t*>(values.data()), shape, at::kLong).clone();
}

}  // namespace

VlmRequest VlmRequest::single(std::string question, std::vector<image::Rgb8Image> images) {
  VlmRequest r;
  r.turns.push_back({"user", std::move(question), static_cast<int64_t>(images.size())});
  r.images = std::move(images);
  return r;
}

Vlm::Vlm(Vlm&&) noexcept = default;
Vlm& Vlm::operator=(Vlm&&) noexcept = default;
Vlm::~Vlm() = default;

Vlm Vlm::load(const std::filesystem::path& dir, VlmOptions options) {
  Vlm m;
  m.dir_ = dir;
  m.options_ = options;
  if (options.device.is_cuda()) compat::disable_cudnn_sdpa();
  m.config_ = load_model_config(dir);
  // An MHA2MLA-VLM checkpoint in the authors' dialect: derive the stage and the kept
  // frequencies the runtime reads (their rank file resolves against this directory).
  complete_mha2mla_block(m.config_, dir);
  const auto tokenizer_path = dir / "tokenizer.json";
  MLAB_CHECK(std::filesystem::is_regular_file(tokenizer_path), tokenizer_path.string(),
             ": missing (the model directory needs its tokenizer.json)");
  m.tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_file(tokenizer_path));
  m.processor_ = image::load_image_processor(dir, options.pillow, options.processor);
  Weights weights = Weights::open(dir, m.config_.family, {options.device, c10::kFloat});
  m.dtype_ = options.dtype.value_or(weights.stored_dtype());
  weights.set_dtype(m.dtype_);
  m.decoder_ = TextDecoder::load(weights, m.config_);
  if (m.config_.family == ModelFamily::kQwen2_5_VL) {
    m.qwen_vision_ = std::make_unique<QwenVision>(QwenVision::load(weights, m.config_));
  } else {
    m.llava_vision_ = std::make_unique<LlavaVision>(LlavaVision::load(weights, m.config_));
  }
  weights.check_all_used({"position_ids", "inv_freq"});
  m.rope_ = RotaryEmbedding::from_config(m.config_.text, options.device);
  m.eos_ids_ = read_eos_ids(dir, m.config_.text);
  m.pad_id_ = m.config_.pad_token_id.value_or(
      m.config_.text.pad_token_id.value_or(m.eos_ids_.empty() ? 0 : m.eos_ids_.front()));
  return m;
}

prompt::Family Vlm::prompt_family() const {
  switch (config_.family) {
    case ModelFamily::kLlava:
      return prompt::Family::kLlava;
    case ModelFamily::kLlavaNext:
      return prompt::Family::kLlavaNext;
    case ModelFamily::kQwen2_5_VL:
      return prompt::Family::kQwen2_5Vl;
  }
  MLAB_FAIL("bad model family");
}

int64_t Vlm::image_token_count(const image::ProcessedImages& processed, std::size_t index,
                               const image::Rgb8Image& image) const {
  if (qwen_vision_) {
    const auto* g = processed.image_grid_thw.data() + 3 * index;
    return qwen_vision_->image_tokens(g[0], g[1], g[2]);
  }
  return llava_vision_->image_tokens(image.height, image.width);
}

VlmInputs Vlm::prepare(std::span<const VlmRequest> requests) const {
  MLAB_CHECK(!requests.empty(), "prepare: no requests");
  std::vector<image::Rgb8Image> images;
  for (const auto& r : requests) images.insert(images.end(), r.images.begin(), r.images.end());
  VlmInputs inputs;
  image::ProcessedImages processed;
  if (!images.empty()) {
    processed = processor_->preprocess(images);
    inputs.pixel_values = from_vector(processed.pixel_values, processed.shape);
    const auto n = static_cast<int64_t>(images.size());
    if (!processed.image_sizes.empty())
      inputs.image_sizes = from_vector(processed.image_sizes, {n, 2});
    if (!processed.image_grid_thw.empty()) {
      inputs.image_grid_thw = from_vector(processed.image_grid_thw, {n, 3});
    }
  }
  std::vector<std::vector<int32_t>> rows;
  std::size_t next_image = 0;
  for (std::size_t b = 0; b < requests.size(); ++b) {
    const auto& r = requests[b];
    const bool train = r.mode == prompt::PromptMode::kTrain;
    int64_t placeholders = 0;
    for (const auto& t : r.turns) placeholders += t.images;
    if (train) placeholders = prompt::train_image_count(r.turns);
    MLAB_CHECK(placeholders == static_cast<int64_t>(r.images.size()), "request ", b, ": ",
               placeholders, " image placeholder(s) in the turns but ", r.images.size(),
               " image(s)");
    std::vector<int64_t> counts;
    for (const auto& image : r.images) {
      counts.push_back(image_token_count(processed, next_image++, image));
    }
    if (train) {  // no tokenizer specials: the template writes its one BOS itself
      rows.push_back(
          prompt::encode_train(*tokenizer_, prompt_family(), r.turns, counts).input_ids);
      continue;
    }
    auto ids = prompt::encode_prompt(*tokenizer_, prompt_family(), r.turns, counts);
    // The rendered Llama-3 prompt starts with <|begin_of_text|> (the stock template), and the
    // tokenizer's post-processor adds it again; the model dir's own chat_template.json has no
    // BOS, so transformers' processor yields one. Keep one.
    if (ids.size() >= 2 && ids[0] == ids[1] && config_.text.bos_token_id &&
        ids[0] == *config_.text.bos_token_id) {
      ids.erase(ids.begin());
    }
    rows.push_back(std::move(ids));
  }
  std::size_t L = 0;
  for (const auto& row : rows) L = std::max(L, row.size());
  const auto B = static_cast<int64_t>(rows.size());
  inputs.input_ids = at::full({B, static_cast<int64_t>(L)}, pad_id_, at::kLong);
  inputs.attention_mask = at::zeros({B, static_cast<int64_t>(L)}, at::kLong);
  auto ids = inputs.input_ids.accessor<int64_t, 2>();
  auto mask = inputs.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = rows[b];
    const std::size_t offset = L - row.size();  // left padding
    for (std::size_t i = 0; i < row.size(); ++i) {
      ids[b][offset + i] = row[i];
      mask[b][offset + i] = 1;
    }
  }
  return inputs;
}

at::Tensor Vlm::image_features(const VlmInputs& inputs) const {
  MLAB_CHECK(inputs.pixel_values.defined(), "image_features: the inputs have no images");
  if (qwen_vision_) {
    MLAB_CHECK(inputs.image_grid_thw.defined(), "image_features: image_grid_thw is missing");
    return qwen_vision_->image_features(inputs.pixel_values, inputs.image_grid_thw);
  }
  std::optional<at::Tensor> sizes;
  if (inputs.image_sizes.defined()) sizes = inputs.image_sizes;
  return llava_vision_->image_features(inputs.pixel_values, sizes);
}

std::pair<at::Tensor, int64_t> qwen_rope_index(std::span<const int64_t> ids,
                                               std::span<const std::array<int64_t, 3>> grids,
                                               int64_t image_token_id, int64_t merge_size) {
  const auto n = static_cast<int64_t>(ids.size());
  at::Tensor pos = at::empty({3, n}, at::kLong);
  auto p = pos.accessor<int64_t, 2>();
  int64_t cur = 0;
  std::size_t grid = 0;
  int64_t i = 0;
  while (i < n) {
    if (ids[i] != image_token_id) {
      p[0][i] = p[1][i] = p[2][i] = cur++;
      ++i;
      continue;
    }
    MLAB_CHECK(grid < grids.size(), "get_rope_index: more image runs than images (", grids.size(),
               ")");
    const auto [t, h, w] = grids[grid++];
    const int64_t gh = h / merge_size, gw = w / merge_size, count = t * gh * gw;
    MLAB_CHECK(i + count <= n, "get_rope_index: image ", grid - 1, " needs ", count,
               " placeholder tokens, only ", n - i, " remain");
    for (int64_t f = 0; f < t; ++f) {
      for (int64_t r = 0; r < gh; ++r) {
        for (int64_t c = 0; c < gw; ++c, ++i) {
          MLAB_CHECK(ids[i] == image_token_id, "get_rope_index: image ", grid - 1, " has ",
                     f * gh * gw + r * gw + c, " placeholder tokens, expected ", count);
          p[0][i] = cur + f;
          p[1][i] = cur + r;
          p[2][i] = cur + c;
        }
      }
    }
    cur += std::max({t, gh, gw});
  }
  MLAB_CHECK(grid == grids.size(), "get_rope_index: ", grids.size(), " images but ", grid,
             " placeholder runs");
  return {pos, cur};
}

std::pair<at::Tensor, at::Tensor> Vlm::positions(const VlmInputs& inputs) const {
  const at::Tensor ids = inputs.input_ids.cpu().to(at::kLong).contiguous();
  const at::Tensor mask = inputs.attention_mask.cpu().to(at::kLong).contiguous();
  const int64_t B = ids.size(0), L = ids.size(1);
  at::Tensor next = at::empty({B}, at::kLong);
  if (!qwen_vision_) {
    // Positions count the unpadded tokens (left padding shifts nothing; pads get 1 as in
    // transformers' position_ids.masked_fill_(mask == 0, 1)).
    at::Tensor pos = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1);
    next.copy_(mask.sum(1));
    return {pos, next};
  }
  at::Tensor pos = at::ones({3, B, L}, at::kLong);
  std::vector<std::array<int64_t, 3>> grids;
  if (inputs.image_grid_thw.defined()) {
    const at::Tensor g = inputs.image_grid_thw.cpu().to(at::kLong).contiguous();
    for (int64_t k = 0; k < g.size(0); ++k) {
      grids.push_back({g[k][0].item<int64_t>(), g[k][1].item<int64_t>(), g[k][2].item<int64_t>()});
    }
  }
  const int64_t merge = config_.qwen_vision->spatial_merge_size;
  const int64_t image_token = config_.image_token_id;
  auto id_at = ids.accessor<int64_t, 2>();
  auto mask_at = mask.accessor<int64_t, 2>();
  std::size_t grid = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> row, where;
    int64_t placeholders = 0;
    for (int64_t i = 0; i < L; ++i) {
      if (mask_at[b][i] == 0) continue;
      row.push_back(id_at[b][i]);
      where.push_back(i);
      placeholders += id_at[b][i] == image_token;
    }
    // This row's images: the next grids, until their token counts cover its placeholders.
    std::vector<std::array<int64_t, 3>> row_grids;
    while (placeholders > 0) {
      MLAB_CHECK(grid < grids.size(), "positions: row ", b,
                 " has more image placeholders than image_grid_thw describes");
      const auto& g = grids[grid++];
      row_grids.push_back(g);
      placeholders -= g[0] * (g[1] / merge) * (g[2] / merge);
    }
    MLAB_CHECK(placeholders == 0, "positions: row ", b,
               "'s image placeholders do not match image_grid_thw");
    auto [p, n] = qwen_rope_index(row, row_grids, image_token, merge);
    pos.select(1, b).index_copy_(1, at::tensor(where, at::kLong), p);
    next[b] = n;
  }
  return {pos, next};
}

at::Tensor Vlm::image_token_mask(const at::Tensor& ids) const {
  at::Tensor mask = ids.eq(config_.image_token_id);
  if (config_.family == ModelFamily::kQwen2_5_VL) {
    // Qwen2.5-VL: <|vision_start|> and <|vision_end|> go with the image (specs/method.md §3.2);
    // video tokens stay text.
    for (const auto& id : {config_.vision_start_token_id, config_.vision_end_token_id}) {
      if (id) mask = mask.logical_or(ids.eq(*id));
    }
  }
  return mask;
}

VlmSession Vlm::prefill(const VlmInputs& inputs, const PrefillOptions& options) const {
  const c10::Device device = options_.device;
  const at::Tensor ids = inputs.input_ids.to(device, at::kLong);
  const at::Tensor valid = inputs.attention_mask.to(device).ne(0);
  const int64_t L = ids.size(1);
  VlmSession s;
  at::Tensor h = decoder_.embed(ids);  // [B, L, E]
  const at::Tensor image_mask = ids.eq(config_.image_token_id);
  const int64_t image_rows = image_mask.sum().item<int64_t>();
  if (image_rows > 0 || inputs.pixel_values.defined()) {
    s.image_features =
        options.image_features.defined() ? options.image_features : image_features(inputs);
    MLAB_CHECK(s.image_features.size(0) == image_rows, "the prompt has ", image_rows,
               " image placeholder tokens but the images give ", s.image_features.size(0),
               " feature rows");
    h = h.masked_scatter(image_mask.unsqueeze(-1),
                         s.image_features.to(h.device(), h.scalar_type()));
  }
  auto [pos, next] = positions(inputs);
  s.next_position = next.to(device);
  const RopeTables rope = rope_->tables(pos.to(device), dtype_);
  s.caches = decoder_.make_caches(options_.attention, std::max(options.reserve_tokens, L),
                                  options.cache_factory);
  const bool padded = !valid.all().item<bool>();
  TokenInfo tokens;
  if (padded) tokens.valid = valid;
  tokens.image = image_token_mask(ids);
  MLAB_CHECK(options.chunk >= 0, "prefill: chunk must be >= 0, got ", options.chunk);
  at::Tensor hidden;
  if (options.chunk == 0 || options.chunk >= L) {
    hidden = decoder_.forward(h, rope, tokens, s.caches);
  } else {
    // The prompt in chunks: each attends to what the caches kept of the chunks before it.
    std::vector<at::Tensor> parts;
    for (int64_t from = 0; from < L; from += options.chunk) {
      const int64_t n = std::min(options.chunk, L - from);
      const RopeTables part_rope{rope.cos.narrow(2, from, n), rope.sin.narrow(2, from, n)};
      TokenInfo part;
      if (tokens.valid.defined()) part.valid = tokens.valid.narrow(1, from, n);
      if (tokens.image.defined()) part.image = tokens.image.narrow(1, from, n);
      const at::Tensor out = decoder_.forward(h.narrow(1, from, n), part_rope, part, s.caches);
      if (options.all_logits || from + n == L) parts.push_back(out);
    }
    hidden = parts.size() == 1 ? parts.front() : at::cat(parts, 1);
  }
  if (options.all_logits) {
    s.logits = decoder_.logits(hidden);
    s.last_logits = s.logits.select(1, L - 1);
  } else {
    s.last_logits = decoder_.logits(hidden.select(1, hidden.size(1) - 1));  // position L - 1
  }
  return s;
}

at::Tensor Vlm::train_logits(const VlmInputs& inputs) const {
  PrefillOptions options;
  options.all_logits = true;
  return prefill(inputs, options).logits;
}

std::vector<std::pair<std::string, at::Tensor>> Vlm::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const ParameterVisitor collect = [&](const std::string& name, at::Tensor& t) {
    if (t.defined()) out.emplace_back(name, t);
  };
  decoder_.for_each_parameter(collect);
  if (llava_vision_) llava_vision_->for_each_parameter(collect);
  if (qwen_vision_) qwen_vision_->for_each_parameter(collect);
  return out;
}

at::Tensor Vlm::decode_step(VlmSession& s, const at::Tensor& tokens) const {
  const c10::Device device = options_.device;
  const at::Tensor ids = tokens.to(device, at::kLong).view({-1, 1});
  TORCH_CHECK(ids.size(0) == s.next_position.size(0), "decode_step: ", ids.size(0),
              " tokens for a batch of ", s.next_position.size(0));
  const at::Tensor h = decoder_.embed(ids);
  at::Tensor pos = s.next_position.view({-1, 1});
  if (!rope_->mrope_section().empty()) pos = pos.unsqueeze(0).expand({3, -1, -1});
  const RopeTables rope = rope_->tables(pos, dtype_);
  const at::Tensor hidden = decoder_.forward(h, rope, TokenInfo{}, s.caches);  // decode: text
  s.next_position = s.next_position + 1;
  s.last_logits = decoder_.logits(hidden.select(1, 0));
  return s.last_logits;
}

GenerateResult Vlm::generate(const VlmInputs& inputs, const GenerateOptions& options) const {
  MLAB_CHECK(options.max_new_tokens > 0, "generate: max_new_tokens must be positive, got ",
             options.max_new_tokens);
  const int64_t B = inputs.input_ids.size(0), L = inputs.input_ids.size(1);
  // F11 D4: a prompt whose positions (its unpadded length) run past the config's
  // max_position_embeddings would be run silently past the trained RoPE range. The new tokens are
  // not counted: generation usually stops at EOS long before max_new_tokens (transformers
  // refuses neither).
  {
    const int64_t longest = inputs.attention_mask.defined()
                                ? inputs.attention_mask.sum(1).max().item<int64_t>()
                                : L;
    const int64_t limit = config_.text.max_position_embeddings;
    MLAB_CHECK(longest <= limit, "prompt of ", longest,
               " tokens exceeds max_position_embeddings ", limit);
  }
  GenerateResult result;
  result.prompt_tokens = B * L;
  result.tokens.resize(B);
  result.texts.resize(B);
  std::vector<bool> finished(B, false);
  auto start = std::chrono::steady_clock::now();
  PrefillOptions prefill_options;
  prefill_options.reserve_tokens = L + options.max_new_tokens;
  prefill_options.cache_factory = options.cache_factory;
  prefill_options.chunk = options.prefill_chunk;
  VlmSession s = prefill(inputs, prefill_options);
  // Bytes the caches hold (host-side sizes, no device synchronisation), at their peak.
  auto note_bytes = [&] {
    int64_t bytes = 0;
    for (const auto& cache : s.caches) bytes += cache->bytes();
    result.kv_bytes_peak = std::max(result.kv_bytes_peak, bytes);
    return bytes;
  };
  note_bytes();
  at::Tensor next = s.last_logits.argmax(-1).cpu();
  result.prefill_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  std::size_t stop_window = 16;
  for (const auto& stop : options.stop_strings)
    stop_window = std::max(stop_window, 16 + 2 * stop.size());
  auto is_eos = [&](int64_t id) {
    return std::find(eos_ids_.begin(), eos_ids_.end(), id) != eos_ids_.end();
  };
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const auto* next_ids = next.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      if (finished[b]) continue;
      result.tokens[b].push_back(next_ids[b]);
      if (options.stop_at_eos && is_eos(next_ids[b])) finished[b] = true;
      if (!options.stop_strings.empty()) {
        // A stop string completes with the newest token, so it lies in the text of the last few
        // tokens (each adds at least one byte): decode a window that covers the longest stop
        // with room to spare, not the whole answer (which made every step O(answer length)).
        const auto& all = result.tokens[b];
        const std::size_t from = all.size() > stop_window ? all.size() - stop_window : 0;
        const std::vector<int32_t> ids32(all.begin() + static_cast<std::ptrdiff_t>(from),
                                         all.end());
        const std::string text = tokenizer_->decode(ids32, true);
        for (const auto& stop : options.stop_strings) {
          if (!stop.empty() && text.find(stop) != std::string::npos) finished[b] = true;
        }
      }
    }
    if (step + 1 == options.max_new_tokens ||
        std::all_of(finished.begin(), finished.end(), [](bool f) { return f; })) {
      break;
    }
    at::Tensor feed = next.clone();
    for (int64_t b = 0; b < B; ++b) {
      if (finished[b]) feed[b] = pad_id_;
    }
    next = decode_step(s, feed).argmax(-1).cpu();
    note_bytes();
    ++result.decode_steps;
  }
  result.decode_seconds = seconds_since(start);  // each step's .cpu() already waited for the device
  for (int64_t b = 0; b < B; ++b) {
    const std::vector<int32_t> ids32(result.tokens[b].begin(), result.tokens[b].end());
    std::string text = tokenizer_->decode(ids32, true);
    std::size_t cut = std::string::npos;
    for (const auto& stop : options.stop_strings) {
      if (!stop.empty()) cut = std::min(cut, text.find(stop));
    }
    if (cut != std::string::npos) text.resize(cut);
    result.texts[b] = std::move(text);
  }
  result.kv_bytes = note_bytes();
  if (!s.caches.empty()) result.kv_tokens = s.caches.front()->tokens();
  return result;
}

}  // namespace mlab::models
