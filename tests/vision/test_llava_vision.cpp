// LLaVA-1.5 / LLaVA-NeXT vision side (models/vision/llava_vision.hpp) against the transformers
// 5.24 reference outputs of tests/data/tiny_vlms (CLIP features, projector, any-res packing) and
// the token-count worked examples of specs/models.md §2.4.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/config/model_config.hpp"
#include "models/io/checkpoint.hpp"
#include "models/nn/weights.hpp"
#include "models/vision/llava_vision.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using namespace mlab::models;

const fs::path kTiny = mlab::test::data_dir() / "tiny_vlms";

struct Image {
  std::string name;
  int64_t height, width;
};
// tests/data/tiny_vlms/README.md, "Images" (W x H there).
const std::vector<Image> kImages = {
    {"tiny", 5, 7},   {"wide", 45, 600},   {"tall", 480, 36},          {"gray", 131, 97},
    {"rgba", 61, 83}, {"large", 480, 640}, {"portrait_gray", 517, 333}};

struct Loaded {
  ModelConfig config;
  LlavaVision vision;
};

// expect()s every language-model tensor, so that check_all_used() proves the vision tower and
// projector account for every other tensor of the file.
void account_for_language_model(Weights& weights, ModelFamily family) {
  for (const auto& stored : weights.checkpoint().names()) {
    const std::string canonical = canonical_weight_name(family, stored);
    if (canonical.rfind("language_model.", 0) == 0)
      weights.expect(canonical, weights.checkpoint().info(stored).shape);
  }
}

Loaded load(const std::string& dir_name, LoadOptions options = {}) {
  const fs::path dir = kTiny / dir_name;
  ModelConfig config = load_model_config(dir);
  Weights weights = Weights::open(dir, config.family, options);
  LlavaVision vision = LlavaVision::load(weights, config);
  account_for_language_model(weights, config.family);
  weights.check_all_used({"position_ids"});
  return {std::move(config), std::move(vision)};
}

Checkpoint reference(const std::string& family, const std::string& image) {
  return Checkpoint::open(kTiny / "reference" / (family + "__" + image + ".safetensors"));
}

// max|got - ref| / max|ref| (shapes must match).
double rel_diff(const at::Tensor& got, const at::Tensor& ref) {
  REQUIRE(got.sizes() == ref.sizes());
  const at::Tensor g = got.to(at::kCPU, at::kDouble), r = ref.to(at::kDouble);
  return (g - r).abs().max().item<double>() / r.abs().max().item<double>();
}

void report(const std::string& what, double diff) {
  if (std::getenv("MLAB_PRINT_DIFFS")) std::cout << what << " rel max|diff| " << diff << "\n";
}

int64_t image_token_count(const Checkpoint& ref, const ModelConfig& config) {
  return ref.get("input_ids").eq(config.image_token_id).sum().item<int64_t>();
}

const std::vector<std::string> kLayouts = {"", "-hub"};

}  // namespace

TEST_CASE("llava: CLIP features and projector equal transformers", "[vision][llava]") {
  for (const auto& layout : kLayouts) {
    const Loaded m = load("llava" + layout);
    for (const auto& image : kImages) {
      INFO("llava" << layout << " " << image.name);
      const Checkpoint ref = reference("llava", image.name);
      const at::Tensor pixels = ref.get("pixel_values");  // [1, 3, 28, 28]
      const at::Tensor hidden = m.vision.tower_features(pixels);
      const double d_hidden = rel_diff(hidden, ref.get("vision_hidden"));
      const at::Tensor features = m.vision.image_features(pixels, std::nullopt);
      const double d_features = rel_diff(features, ref.get("image_features"));
      CHECK(d_hidden <= 1e-4);
      CHECK(d_features <= 1e-4);
      CHECK(at::equal(m.vision.project(hidden).reshape({-1, 64}), features));
      CHECK(m.vision.image_tokens(image.height, image.width) == features.size(0));
      CHECK(image_token_count(ref, m.config) == features.size(0));
      report("llava" + layout + " " + image.name + " vision_hidden", d_hidden);
      report("llava" + layout + " " + image.name + " image_features", d_features);
    }
  }
}

TEST_CASE("llava_next: CLIP, projector and any-res packing equal transformers",
          "[vision][llava_next]") {
  for (const auto& layout : kLayouts) {
    const Loaded m = load("llava_next" + layout);
    for (const auto& image : kImages) {
      INFO("llava_next" << layout << " " << image.name);
      const Checkpoint ref = reference("llava_next", image.name);
      const at::Tensor pixels = ref.get("pixel_values");  // [1, tiles, 3, 28, 28]
      const at::Tensor sizes = ref.get("image_sizes");    // [1, 2]
      REQUIRE(sizes[0][0].item<int64_t>() == image.height);
      REQUIRE(sizes[0][1].item<int64_t>() == image.width);
      const auto [gh, gw] = llava_next_grid_shape(m.config, image.height, image.width);
      CHECK(1 + gh * gw == pixels.size(1));

      const at::Tensor hidden = m.vision.tower_features(pixels[0]);
      const at::Tensor projected = m.vision.project(hidden);
      const at::Tensor features = m.vision.image_features(pixels, sizes);
      const double d_hidden = rel_diff(hidden, ref.get("vision_hidden"));
      const double d_projected = rel_diff(projected, ref.get("projector_out"));
      const double d_features = rel_diff(features, ref.get("image_features"));
      CHECK(d_hidden <= 1e-4);
      CHECK(d_projected <= 1e-4);
      CHECK(d_features <= 1e-4);
      CHECK(m.vision.image_tokens(image.height, image.width) == features.size(0));
      CHECK(llava_next_image_tokens(m.config, image.height, image.width) == features.size(0));
      CHECK(image_token_count(ref, m.config) == features.size(0));
      const std::string what = "llava_next" + layout + " " + image.name;
      report(what + " vision_hidden", d_hidden);
      report(what + " projector_out", d_projected);
      report(what + " image_features", d_features);
    }
  }
}

TEST_CASE("llava and llava_next: both layouts give bit-identical features", "[vision]") {
  for (const std::string family : {"llava", "llava_next"}) {
    const Loaded a = load(family), hub = load(family + "-hub");
    const Checkpoint ref = reference(family, "large");
    std::optional<at::Tensor> sizes;
    if (family == "llava_next") sizes = ref.get("image_sizes");
    CHECK(at::equal(a.vision.image_features(ref.get("pixel_values"), sizes),
                    hub.vision.image_features(ref.get("pixel_values"), sizes)));
  }
}

TEST_CASE("batch of 3 images (llava_next: zero-padded tiles) equals the images one by one",
          "[vision][batch]") {
  const std::vector<std::string> names = {"rgba", "tiny", "tall"};  // README: the batch file
  for (const std::string family : {"llava", "llava_next"}) {
    for (const auto& layout : kLayouts) {
      INFO(family << layout);
      const Loaded m = load(family + layout);
      const Checkpoint batch = reference(family, "batch");
      const at::Tensor pixels = batch.get("pixel_values");
      std::optional<at::Tensor> sizes;
      if (family == "llava_next") sizes = batch.get("image_sizes");
      const at::Tensor features = m.vision.image_features(pixels, sizes);

      std::vector<at::Tensor> singles;
      int64_t expected_rows = 0;
      for (size_t b = 0; b < names.size(); ++b) {
        const Checkpoint one = reference(family, names[b]);
        const at::Tensor one_pixels = one.get("pixel_values");
        // The batch holds the same tiles, then zero tiles up to P_max (llava_next).
        const auto i = static_cast<int64_t>(b);
        if (family == "llava_next") {
          const int64_t n = one_pixels.size(1);
          CHECK(at::equal(pixels[i].slice(0, 0, n), one_pixels[0]));
          CHECK(pixels[i].slice(0, n).abs().sum().item<double>() == 0.0);
          const at::Tensor hw = one.get("image_sizes")[0];
          expected_rows += m.vision.image_tokens(hw[0].item<int64_t>(), hw[1].item<int64_t>());
        } else {
          CHECK(at::equal(pixels[i], one_pixels[0]));
          expected_rows += m.vision.image_tokens(1, 1);
        }
        singles.push_back(one.get("image_features"));
      }
      CHECK(features.size(0) == expected_rows);
      CHECK(image_token_count(batch, m.config) == expected_rows);
      const double d = rel_diff(features, at::cat(singles, 0));
      CHECK(d <= 1e-4);
      report(family + layout + " batch image_features", d);
    }
  }
}

TEST_CASE("bf16 and fp16 weights run and stay close to the fp32 reference", "[vision][dtype]") {
  for (const auto dtype : {at::kBFloat16, at::kHalf}) {
    for (const std::string family : {"llava", "llava_next"}) {
      INFO(family << " " << c10::toString(dtype));
      const Loaded m = load(family, LoadOptions{.dtype = dtype});
      const Checkpoint ref = reference(family, "large");
      std::optional<at::Tensor> sizes;
      if (family == "llava_next") sizes = ref.get("image_sizes");
      const at::Tensor features = m.vision.image_features(ref.get("pixel_values"), sizes);
      CHECK(features.scalar_type() == dtype);
      const double d = rel_diff(features, ref.get("image_features"));
      CHECK(d <= 3e-2);
      report(family + " " + c10::toString(dtype) + " large image_features", d);
    }
  }
}

TEST_CASE("strategy 'full' keeps CLS and feature layers and projector width must agree",
          "[vision][config]") {
  const fs::path dir = kTiny / "llava";
  ModelConfig config = load_model_config(dir);
  const Checkpoint ref = reference("llava", "gray");
  {
    config.vision_feature_select_strategy = "full";
    Weights weights = Weights::open(dir, config.family, {});
    const LlavaVision vision = LlavaVision::load(weights, config);
    const at::Tensor hidden = vision.tower_features(ref.get("pixel_values"));
    REQUIRE(hidden.sizes() == at::IntArrayRef({1, 5, 32}));
    CHECK(rel_diff(hidden.slice(1, 1), ref.get("vision_hidden")) <= 1e-4);
    CHECK(vision.image_tokens(131, 97) == 5);
    CHECK(vision.image_features(ref.get("pixel_values"), std::nullopt).size(0) == 5);
  }
  {
    config.vision_feature_select_strategy = "default";
    config.vision_feature_layer = {-2, 1};  // projector would need 64 input channels
    Weights weights = Weights::open(dir, config.family, {});
    CHECK_THROWS_WITH(LlavaVision::load(weights, config),
                      Contains("multi_modal_projector.linear_1.weight") && Contains("[64, 64]"));
  }
  {
    config.vision_feature_layer = {4};
    Weights weights = Weights::open(dir, config.family, {});
    CHECK_THROWS_WITH(LlavaVision::load(weights, config),
                      Contains("vision_feature_layer 4 is outside the 4 hidden states"));
  }
  {
    config.vision_feature_layer = {-2};
    config.vision_feature_select_strategy = "cls_patch";
    Weights weights = Weights::open(dir, config.family, {});
    CHECK_THROWS_WITH(LlavaVision::load(weights, config),
                      Contains("vision_feature_select_strategy must be 'default' or 'full'"));
  }
  ModelConfig next = load_model_config(kTiny / "llava_next");
  next.vision_feature_select_strategy = "full";
  Weights weights = Weights::open(kTiny / "llava_next", next.family, {});
  CHECK_THROWS_WITH(LlavaVision::load(weights, next),
                    Contains("needs vision_feature_select_strategy 'default'"));
}

TEST_CASE("the tower loads only up to the deepest feature layer", "[vision][load]") {
  // Feature layer -2 of a 3-layer CLIP is hidden_states[2]: layers 0 and 1 run, layer 2 and
  // post_layernorm are only expect()ed, so a wrongly shaped one is still caught.
  const fs::path dir = kTiny / "llava";
  ModelConfig config = load_model_config(dir);
  config.vision_feature_layer = {0};  // hidden_states[0] = after pre_layrnorm, no layer runs
  Weights weights = Weights::open(dir, config.family, {});
  const LlavaVision vision = LlavaVision::load(weights, config);
  account_for_language_model(weights, config.family);
  CHECK_NOTHROW(weights.check_all_used({"position_ids"}));
  const Checkpoint ref = reference("llava", "tiny");
  CHECK(vision.tower_features(ref.get("pixel_values")).sizes() == at::IntArrayRef({1, 4, 32}));

  Weights partial = Weights::open(dir, config.family, {});
  (void)LlavaVision::load(partial, load_model_config(dir));
  CHECK_THROWS_WITH(partial.check_all_used({"position_ids"}), Contains("language_model."));
}

TEST_CASE("llava_next token counts: worked examples of specs §2.4 on the real config",
          "[vision][tokens]") {
  const fs::path path = mlab::test::data_dir().parent_path().parent_path() /
                        "configs/models/llama3-llava-next-8b-hf.json";
  const ModelConfig config = load_model_config(path);
  // (W x H in the spec) -> tokens; the function takes (height, width).
  CHECK(llava_next_image_tokens(config, 480, 640) == 2340);
  CHECK(llava_next_image_tokens(config, 375, 500) == 2340);
  CHECK(llava_next_image_tokens(config, 517, 333) == 1526);
  CHECK(llava_next_image_tokens(config, 200, 1000) == 1598);
  CHECK(llava_next_image_tokens(config, 336, 336) == 1176);
  CHECK(llava_next_grid_shape(config, 480, 640) == std::array<int64_t, 2>{2, 2});
  CHECK(llava_next_grid_shape(config, 517, 333) == std::array<int64_t, 2>{2, 1});
  CHECK(llava_next_grid_shape(config, 200, 1000) == std::array<int64_t, 2>{1, 3});
  CHECK(llava_next_grid_shape(config, 336, 336) == std::array<int64_t, 2>{1, 2});

  const ModelConfig llava = load_model_config(mlab::test::data_dir().parent_path().parent_path() /
                                              "configs/models/llava-1.5-7b-hf.json");
  CHECK_THROWS_WITH(llava_next_image_tokens(llava, 480, 640),
                    Contains("needs a llava_next config"));
  CHECK_THROWS_WITH(llava_next_image_tokens(config, 0, 640), Contains("must be positive"));
}

TEST_CASE("bad inputs are rejected with a message naming the problem", "[vision][errors]") {
  const Loaded llava = load("llava");
  const Loaded next = load("llava_next");
  const Checkpoint ref = reference("llava_next", "large");  // 5 tiles, 480 x 640
  const at::Tensor pixels = ref.get("pixel_values");
  const at::Tensor sizes = ref.get("image_sizes");

  CHECK_THROWS_WITH(llava.vision.image_features(at::zeros({1, 3, 30, 30}), std::nullopt),
                    Contains("pixel_values must be [N, 3, 28, 28]") && Contains("[1, 3, 30, 30]"));
  CHECK_THROWS_WITH(llava.vision.image_features(pixels, std::nullopt),
                    Contains("pixel_values must be [N, 3, 28, 28]"));
  CHECK_THROWS_WITH(llava.vision.tower_features(at::zeros({1, 4, 28, 28})),
                    Contains("image_size 28"));
  CHECK_THROWS_WITH(llava.vision.tower_features(at::zeros({1, 3, 28, 28}, at::kLong)),
                    Contains("must be floating point"));
  CHECK_THROWS_WITH(llava.vision.project(at::zeros({4, 31})), Contains("[..., 32]"));

  CHECK_THROWS_WITH(next.vision.image_features(pixels, std::nullopt),
                    Contains("llava_next needs image_sizes"));
  CHECK_THROWS_WITH(next.vision.image_features(pixels[0], sizes),
                    Contains("pixel_values must be [B, P_max, 3, 28, 28]"));
  CHECK_THROWS_WITH(next.vision.image_features(pixels, at::cat({sizes, sizes}, 0)),
                    Contains("image_sizes must be [B, 2] with B = 1") && Contains("[2, 2]"));
  CHECK_THROWS_WITH(next.vision.image_features(pixels, sizes.view({2})),
                    Contains("image_sizes must be [B, 2]"));
  CHECK_THROWS_WITH(next.vision.image_features(pixels, sizes.to(at::kFloat)),
                    Contains("image_sizes must be integer"));
  CHECK_THROWS_WITH(next.vision.image_features(pixels.slice(1, 0, 4), sizes),
                    Contains("needs 5 tiles but pixel_values has 4"));
  CHECK_THROWS_WITH(next.vision.image_tokens(-1, 5), Contains("must be positive"));
}
