// Multi-row training batches (issue F8, "padding with correct masks and positions"):
// collate_train_batches against ms-swift 3.4's training data collator on three samples of the
// tiny models (tests/data/training/collate, tools/fixtures/make_train_collate_fixtures.py:
// input_ids, labels, attention_mask exact; Qwen2.5-VL's M-RoPE position_ids from
// get_rope_index(attention_mask) exact through Vlm::positions), and a padded 3-row batch against
// the same 3 rows one by one through Vlm::train_logits: the logits at the real positions, the
// loss over the window and the gradient of every parameter (fp32, CPU).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/image/rgb8_image.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"
#include "training/train_batch.hpp"
#include "training/train_data.hpp"

namespace {

using namespace mlab;
namespace fs = std::filesystem;
using nlohmann::json;

json collate_fixture(const std::string& family) {
  return test::read_json(test::data_dir() / "training" / "collate" / (family + ".json"));
}

models::Vlm load_model(const json& doc) {
  return models::Vlm::load(test::data_dir().parent_path().parent_path() /
                           doc.at("model").get<std::string>());
}

// The fixture's samples, each one unpadded row through make_train_batch (swift's training
// template via Vlm::prepare), solid-colour images as the fixture script draws them.
std::vector<training::TrainBatch> encode_rows(const models::Vlm& vlm, const json& doc) {
  std::vector<training::TrainBatch> rows;
  for (const auto& s : doc.at("samples")) {
    std::vector<prompt::Turn> turns;
    for (const auto& t : s.at("turns")) {
      turns.push_back({t.at("role").get<std::string>(), t.at("text").get<std::string>(),
                       t.at("images").get<int64_t>()});
    }
    std::vector<image::Rgb8Image> images;
    for (const auto& wh : s.at("image_sizes")) {
      images.push_back(
          image::filled_rgb8_image(wh[0].get<int64_t>(), wh[1].get<int64_t>(), {90, 140, 200}));
    }
    rows.push_back(training::make_train_batch(vlm, turns, std::move(images), {}));
  }
  return rows;
}

at::Tensor long_tensor(const json& nested) {
  std::vector<int64_t> flat;
  std::vector<int64_t> shape;
  const json* level = &nested;
  while (level->is_array()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
    level = &(*level)[0];
  }
  auto walk = [&](auto&& self, const json& j) -> void {
    if (j.is_array()) {
      for (const auto& e : j) self(self, e);
    } else {
      flat.push_back(j.get<int64_t>());
    }
  };
  walk(walk, nested);
  return at::tensor(flat, at::kLong).reshape(shape);
}

// max |a - b| / max(max |b|, tiny).
double rel_max_diff(const at::Tensor& a, const at::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-30);
  return (a - b).abs().max().item<double>() / scale;
}

}  // namespace

TEST_CASE("collate_train_batches: swift's training collator on three samples",
          "[training][collate]") {
  for (const std::string family : {"llava", "llava_next", "qwen2_5_vl"}) {
    INFO(family);
    const json doc = collate_fixture(family);
    const json& want = doc.at("batch");
    const auto vlm = load_model(doc);
    REQUIRE(vlm.pad_token_id() == doc.at("pad_token_id").get<int64_t>());
    const auto rows = encode_rows(vlm, doc);
    const auto batch = training::collate_train_batches(rows, vlm.pad_token_id());
    CHECK(at::equal(batch.inputs.input_ids, long_tensor(want.at("input_ids"))));
    CHECK(at::equal(batch.labels, long_tensor(want.at("labels"))));
    CHECK(at::equal(batch.inputs.attention_mask, long_tensor(want.at("attention_mask"))));
    const auto [pos, next] = vlm.positions(batch.inputs);
    if (!want.at("position_ids").is_null()) {
      // Qwen2.5-VL: swift's get_rope_index(input_ids, image_grid_thw, attention_mask), [3, B, L],
      // 1 on the padding.
      CHECK(at::equal(pos, long_tensor(want.at("position_ids"))));
    } else {
      // Llama: swift passes no position_ids, transformers uses arange(L) per row; equal on every
      // real token (padding: never attended to by a real token, no label).
      const at::Tensor mask = batch.inputs.attention_mask.to(at::kBool);
      const at::Tensor arange =
          at::arange(pos.size(1), at::kLong).unsqueeze(0).expand_as(pos).contiguous();
      CHECK(at::equal(pos.masked_select(mask), arange.masked_select(mask)));
    }
    if (!want.at("image_sizes").is_null()) {
      CHECK(at::equal(batch.inputs.image_sizes, long_tensor(want.at("image_sizes"))));
    }
    if (!want.at("image_grid_thw").is_null()) {
      CHECK(at::equal(batch.inputs.image_grid_thw, long_tensor(want.at("image_grid_thw"))));
    }
    const auto shape = want.at("pixel_values_shape").get<std::vector<int64_t>>();
    if (family == "llava_next") {
      // swift concatenates the images' patches ([sum P, C, S, S]); ours keeps [N, max P, C, S,
      // S] as the image processor batches them (LlavaVision selects the real patches by size).
      CHECK(batch.inputs.pixel_values.dim() == 5);
      CHECK(batch.inputs.pixel_values.size(0) == 2);
      CHECK(batch.inputs.pixel_values.sizes().slice(2).vec() ==
            std::vector<int64_t>(shape.begin() + 1, shape.end()));
    } else {
      CHECK(batch.inputs.pixel_values.sizes().vec() == shape);
    }
  }
}

TEST_CASE("collate_train_batches: a padded 3-row batch equals its rows one by one",
          "[training][collate]") {
  for (const std::string family : {"llava", "llava_next", "qwen2_5_vl"}) {
    INFO(family);
    const json doc = collate_fixture(family);
    auto vlm = load_model(doc);
    std::vector<std::pair<std::string, at::Tensor>> params;
    for (auto& [name, t] : vlm.named_parameters()) {
      if (!at::isFloatingType(t.scalar_type())) continue;
      t.set_requires_grad(true);
      params.emplace_back(name, t);
    }
    const auto rows = encode_rows(vlm, doc);
    const auto batch = training::collate_train_batches(rows, vlm.pad_token_id());
    REQUIRE(batch.inputs.input_ids.size(0) == 3);
    int64_t supervised = 0;
    for (const auto& r : rows) supervised += training::supervised_tokens(r.labels);
    CHECK(training::supervised_tokens(batch.labels) == supervised);
    const auto denominator = static_cast<double>(supervised);

    const at::AutoGradMode grad_mode(true);
    const at::Tensor batch_logits = vlm.train_logits(batch.inputs);  // f32 [3, L, V]
    const at::Tensor batch_loss = training::causal_lm_loss(batch_logits, batch.labels, denominator);
    batch_loss.backward();
    std::map<std::string, at::Tensor> batch_grads;
    for (auto& [name, t] : params) {
      if (t.grad().defined()) batch_grads[name] = t.grad().clone();
      t.mutable_grad() = at::Tensor();
    }

    double row_loss = 0, logits_diff = 0;
    for (std::size_t b = 0; b < rows.size(); ++b) {
      const at::Tensor logits = vlm.train_logits(rows[b].inputs);  // f32 [1, n, V]
      const int64_t n = logits.size(1);
      logits_diff = std::max(
          logits_diff, rel_max_diff(batch_logits.detach()[static_cast<int64_t>(b)].narrow(0, 0, n),
                                    logits.detach()[0]));
      const at::Tensor loss = training::causal_lm_loss(logits, rows[b].labels, denominator);
      loss.backward();  // accumulates, as the trainer's micro-batches do
      row_loss += loss.item<double>();
    }
    CHECK(logits_diff < 1e-5);
    CHECK(std::fabs(batch_loss.item<double>() - row_loss) <= 1e-5 * std::fabs(row_loss));
    // Relative to each gradient's largest entry, but at least 1e-2 of the largest of all: the
    // CLIP key biases get gradients that are zero up to rounding (softmax is invariant to them),
    // ~1e-9 either way.
    double global = 0;
    for (auto& [name, t] : params) {
      if (t.grad().defined()) global = std::max(global, t.grad().abs().max().item<double>());
    }
    double grad_diff = 0;
    int64_t compared = 0;
    for (auto& [name, t] : params) {
      INFO(name);
      const auto it = batch_grads.find(name);
      REQUIRE(t.grad().defined() == (it != batch_grads.end()));
      if (!t.grad().defined()) continue;
      const double scale = std::max(t.grad().abs().max().item<double>(), 1e-2 * global);
      const double d = (it->second - t.grad()).abs().max().item<double>() / scale;
      grad_diff = std::max(grad_diff, d);
      CHECK(d < 1e-5);
      ++compared;
    }
    CHECK(compared > 10);
    if (std::getenv("MLAB_TEST_REPORT")) {
      std::printf("%s: B=3 L=%lld: logits max rel %.2e, loss %.8f vs %.8f, %lld gradients max "
                  "rel %.2e\n",
                  family.c_str(), static_cast<long long>(batch.inputs.input_ids.size(1)),
                  logits_diff, batch_loss.item<double>(), row_loss,
                  static_cast<long long>(compared), grad_diff);
    }
  }
}

TEST_CASE("collate_train_batches: errors", "[training][collate]") {
  training::TrainBatch a;
  a.inputs.input_ids = at::ones({1, 4}, at::kLong);
  a.inputs.attention_mask = at::ones({1, 4}, at::kLong);
  a.labels = at::ones({1, 4}, at::kLong);
  CHECK_THROWS_WITH(training::collate_train_batches({}, 0), Catch::Contains("no rows"));
  training::TrainBatch padded = a;
  padded.inputs.attention_mask = at::tensor({1, 1, 1, 0}, at::kLong).view({1, 4});
  std::vector<training::TrainBatch> rows = {a, padded};
  CHECK_THROWS_WITH(training::collate_train_batches(rows, 0), Catch::Contains("padded already"));
  training::TrainBatch two = a;
  two.inputs.input_ids = at::ones({2, 4}, at::kLong);
  rows = {a, two};
  CHECK_THROWS_WITH(training::collate_train_batches(rows, 0),
                    Catch::Contains("must be one sequence"));
  // Rows of different lengths: the shorter one padded on the right.
  training::TrainBatch shorter = a;
  shorter.inputs.input_ids = at::full({1, 2}, 7, at::kLong);
  shorter.inputs.attention_mask = at::ones({1, 2}, at::kLong);
  shorter.labels = at::full({1, 2}, 9, at::kLong);
  rows = {shorter, a};
  const auto b = training::collate_train_batches(rows, 3);
  CHECK(at::equal(b.inputs.input_ids[0], at::tensor({7, 7, 3, 3}, at::kLong)));
  CHECK(at::equal(b.labels[0], at::tensor({9, 9, -100, -100}, at::kLong)));
  CHECK(at::equal(b.inputs.attention_mask[0], at::tensor({1, 1, 0, 0}, at::kLong)));
  CHECK(!b.inputs.pixel_values.defined());
}

TEST_CASE("make_train_batch --prompt-format chat: the evaluation prompt, then answer + EOS",
          "[training][collate]") {
  // The prompt part must be what eval feeds the model for the same question and image (the
  // kEval path, itself checked token for token against transformers' processors in F3), the
  // "<image>\n" tag becoming the turn's leading image as in lmms-eval's layout; then the answer
  // as the tokenizer encodes it alone and the model's first EOS id: the only supervised tokens.
  for (const std::string family : {"llava", "qwen2_5_vl"}) {
    INFO(family);
    const auto vlm = models::Vlm::load(test::data_dir() / "tiny_vlms" / family);
    const auto image = image::filled_rgb8_image(40, 30, {90, 140, 200});
    training::TrainDataOptions chat;
    chat.prompt = "chat";
    const std::vector<prompt::Turn> turns = {{"user", "<image>\nIs there a cat?", 0},
                                             {"assistant", "yes", 0}};
    const auto batch = training::make_train_batch(vlm, turns, {image}, chat);
    const auto eval = vlm.prepare(
        std::vector<models::VlmRequest>{models::VlmRequest::single("Is there a cat?", {image})});
    const int64_t P = eval.input_ids.size(1);
    const auto answer = vlm.tokenizer().encode("yes", false);
    const int64_t L = batch.inputs.input_ids.size(1);
    REQUIRE(L == P + static_cast<int64_t>(answer.size()) + 1);
    CHECK(at::equal(batch.inputs.input_ids.narrow(1, 0, P), eval.input_ids));
    CHECK(at::equal(batch.inputs.pixel_values, eval.pixel_values));
    for (std::size_t i = 0; i < answer.size(); ++i) {
      CHECK(batch.inputs.input_ids[0][P + static_cast<int64_t>(i)].item<int64_t>() == answer[i]);
      CHECK(batch.labels[0][P + static_cast<int64_t>(i)].item<int64_t>() == answer[i]);
    }
    CHECK(batch.inputs.input_ids[0][L - 1].item<int64_t>() == vlm.eos_token_ids().front());
    CHECK(batch.labels[0][L - 1].item<int64_t>() == vlm.eos_token_ids().front());
    CHECK(batch.labels.narrow(1, 0, P).eq(prompt::kIgnoreLabel).all().item<bool>());
    CHECK(batch.inputs.attention_mask.eq(1).all().item<bool>());
    // The swift format differs (LLaVA: "...\nASSISTANT:" against eval's "... ASSISTANT:").
    const auto swift = training::make_train_batch(vlm, turns, {image}, {});
    if (family == "llava") {
      CHECK_FALSE(at::equal(swift.inputs.input_ids.narrow(1, 0, std::min(P, swift.inputs.input_ids.size(1))),
                            eval.input_ids.narrow(1, 0, std::min(P, swift.inputs.input_ids.size(1)))));
    }
  }
  training::TrainDataOptions bad;
  bad.prompt = "vicuna";
  const auto vlm = models::Vlm::load(test::data_dir() / "tiny_vlms" / "llava");
  CHECK_THROWS_WITH(training::make_train_batch(vlm, {{"user", "q", 0}, {"assistant", "a", 0}}, {},
                                               bad),
                    Catch::Contains("unknown prompt format 'vicuna'"));
}
