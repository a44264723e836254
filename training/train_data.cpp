#include "training/train_data.hpp"

#include <ATen/ATen.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/error.hpp"
#include "datasets/image.hpp"
#include "models/image/rgb8_image.hpp"
#include "models/prompt/train_template.hpp"

namespace mlab::training {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string role_of(const std::string& from) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant") return "assistant";
  if (from == "system") return "system";
  return "";
}

// The record's turns and image names, or the reason it is unusable.
std::optional<std::string> parse_record(const json& r, const fs::path& root, TrainRecord& out) {
  if (!r.is_object()) return "not a JSON object";
  std::vector<std::string> images;
  const json* list = nullptr;
  if (r.contains("image")) list = &r.at("image");
  if (r.contains("images")) list = &r.at("images");
  if (list && list->is_string()) images.push_back(list->get<std::string>());
  if (list && list->is_array()) {
    for (const auto& i : *list) {
      if (i.is_string()) images.push_back(i.get<std::string>());
      else if (i.is_object() && i.contains("path")) images.push_back(i.at("path").get<std::string>());
      else return "an image entry is neither a path nor {\"path\"}";
    }
  }
  const bool llava = r.contains("conversations");
  const json* turns = llava ? &r.at("conversations") : r.contains("messages") ? &r.at("messages") : nullptr;
  if (!turns || !turns->is_array()) return "no \"conversations\" or \"messages\" list";
  bool answer = false;
  for (const auto& t : *turns) {
    if (!t.is_object()) return "a turn is not a JSON object";
    const std::string from = t.value(llava ? "from" : "role", std::string());
    const std::string role = role_of(from);
    if (role.empty()) return "unknown role \"" + from + "\"";
    const json& v = t.contains("value") ? t.at("value") : t.contains("content") ? t.at("content") : json();
    if (!v.is_string()) return "a turn has no text";
    out.turns.push_back({role, v.get<std::string>(), 0});
    if (role == "assistant" && !v.get<std::string>().empty()) answer = true;
  }
  if (!answer) return "no assistant turn";
  // Images without an "<image>" tag go before the first user turn's text (swift's
  // _add_default_tags).
  const int64_t tags = prompt::train_image_count(out.turns);
  if (tags < static_cast<int64_t>(images.size())) {
    for (auto& t : out.turns) {
      if (t.role == "user") {
        t.images = static_cast<int64_t>(images.size()) - tags;
        break;
      }
    }
  } else if (tags > static_cast<int64_t>(images.size())) {
    return std::to_string(tags) + " <image> tag(s) but " + std::to_string(images.size()) +
           " image(s)";
  }
  for (const auto& name : images) {
    fs::path p = fs::path(name).is_absolute() ? fs::path(name) : root / name;
    if (!fs::is_regular_file(p)) return "missing image " + p.string();
    out.images.push_back(std::move(p));
  }
  return std::nullopt;
}

}  // namespace

TrainData read_train_data(const fs::path& path, const TrainDataOptions& options) {
  std::ifstream in(path);
  MLAB_CHECK(in.good(), path.string(), ": cannot open the training data");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<json> records;
  try {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '[') {
      for (auto& r : json::parse(text)) records.push_back(std::move(r));
    } else {
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        records.push_back(json::parse(line));
      }
    }
  } catch (const json::exception& e) {
    MLAB_FAIL(path.string(), ": not a JSON list or JSONL: ", e.what());
  }
  const fs::path root = options.image_root.empty() ? path.parent_path() : options.image_root;
  TrainData data;
  for (std::size_t i = 0; i < records.size(); ++i) {
    TrainRecord rec;
    const json& r = records[i];
    rec.id = r.is_object() && r.contains("id")
                 ? (r.at("id").is_string() ? r.at("id").get<std::string>() : r.at("id").dump())
                 : "#" + std::to_string(i);
    if (auto why = parse_record(r, root, rec)) {
      data.skipped.push_back({rec.id, *why});
    } else {
      data.records.push_back(std::move(rec));
    }
  }
  return data;
}

int64_t stream_index(int64_t k, int64_t n, uint64_t seed) {
  MLAB_CHECK(n > 0 && k >= 0, "stream_index: no samples");
  const int64_t epoch = k / n;
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed + static_cast<uint64_t>(epoch));
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
  }
  return order[static_cast<std::size_t>(k % n)];
}

TrainBatch make_train_batch(const models::Vlm& model, const TrainRecord& record,
                            const TrainDataOptions& options) {
  std::vector<image::Rgb8Image> images;
  for (const auto& p : record.images) {
    datasets::Image decoded = datasets::decode_image(p);
    images.push_back(image::make_rgb8_image(decoded.width, decoded.height, std::move(decoded.rgb)));
  }
  return make_train_batch(model, record.turns, std::move(images), options);
}

namespace {

// TrainDataOptions::prompt == "chat": the eval prompt of the turns before the last answer, then
// the answer and EOS (supervised).
TrainBatch make_chat_train_batch(const models::Vlm& model, const std::vector<prompt::Turn>& turns,
                                 std::vector<image::Rgb8Image> images,
                                 const TrainDataOptions& options) {
  std::size_t last = turns.size();
  for (std::size_t i = 0; i < turns.size(); ++i)
    if (turns[i].role == "assistant") last = i;
  MLAB_CHECK(last < turns.size() && !turns[last].text.empty(), "no assistant answer");
  models::VlmRequest request;
  for (std::size_t i = 0; i < last; ++i) {
    prompt::Turn t = turns[i];
    // "<image>" tags (and the newline after each) become the turn's leading images.
    for (std::size_t at = t.text.find("<image>"); at != std::string::npos;
         at = t.text.find("<image>")) {
      const std::size_t n = at + 7 < t.text.size() && t.text[at + 7] == '\n' ? 8 : 7;
      t.text.erase(at, n);
      ++t.images;
    }
    request.turns.push_back(std::move(t));
  }
  request.images = std::move(images);
  TrainBatch batch;
  batch.inputs = model.prepare({&request, 1});
  const auto answer = model.tokenizer().encode(turns[last].text, /*add_special_tokens=*/false);
  MLAB_CHECK(!model.eos_token_ids().empty(), "the model has no EOS id to close the answer with");
  std::vector<int64_t> tail(answer.begin(), answer.end());
  tail.push_back(model.eos_token_ids().front());
  const int64_t prompt_len = batch.inputs.input_ids.size(1);
  const at::Tensor tail_ids = at::tensor(tail, at::kLong).unsqueeze(0);
  batch.inputs.input_ids = at::cat({batch.inputs.input_ids, tail_ids}, 1);
  batch.inputs.attention_mask = at::ones_like(batch.inputs.input_ids);
  const int64_t L = batch.inputs.input_ids.size(1);
  MLAB_CHECK(options.max_length <= 0 || L <= options.max_length, L,
             " tokens, over ", options.max_length_name, " ", options.max_length);
  batch.labels = at::full({1, L}, prompt::kIgnoreLabel, at::kLong);
  batch.labels.narrow(1, prompt_len, L - prompt_len).copy_(tail_ids);
  return batch;
}

}  // namespace

TrainBatch make_train_batch(const models::Vlm& model, const std::vector<prompt::Turn>& turns,
                            std::vector<image::Rgb8Image> images, const TrainDataOptions& options) {
  MLAB_CHECK(options.prompt == "swift" || options.prompt == "chat", "unknown prompt format '",
             options.prompt, "' (swift | chat)");
  if (options.prompt == "chat") return make_chat_train_batch(model, turns, std::move(images), options);
  models::VlmRequest request;
  request.turns = turns;
  request.mode = prompt::PromptMode::kTrain;
  request.images = std::move(images);
  TrainBatch batch;
  batch.inputs = model.prepare({&request, 1});
  const at::Tensor ids = batch.inputs.input_ids;
  const int64_t L = ids.size(1);
  MLAB_CHECK(options.max_length <= 0 || L <= options.max_length, L,
             " tokens, over ", options.max_length_name, " ", options.max_length);
  // The image token counts prepare used: the runs of the placeholder id, in order.
  const auto family = prompt::family_from_name(models::family_name(model.config().family));
  const int64_t placeholder = prompt::image_placeholder_id(model.tokenizer(), family);
  std::vector<int64_t> counts;
  const auto* row = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < L; ++i) {
    if (row[i] != placeholder) continue;
    if (i == 0 || row[i - 1] != placeholder) counts.push_back(0);
    ++counts.back();
  }
  const auto enc = prompt::encode_train(model.tokenizer(), family, request.turns, counts);
  MLAB_CHECK(static_cast<int64_t>(enc.input_ids.size()) == L,
             "the training template gave ", enc.input_ids.size(), " ids, prepare ", L);
  batch.labels = at::empty({1, L}, at::kLong);
  auto* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < L; ++i) {
    MLAB_CHECK(enc.input_ids[static_cast<std::size_t>(i)] == row[i],
               "the training template and prepare disagree at token ", i);
    labels[i] = enc.labels[static_cast<std::size_t>(i)];
  }
  MLAB_CHECK(supervised_tokens(batch.labels) > 0, "no supervised token");
  return batch;
}

}  // namespace mlab::training
