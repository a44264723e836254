// Qwen2.5-VL vision tower (models/vision/qwen_vision.hpp) against the transformers 5.24
// reference outputs of tests/data/tiny_vlms (merger output per image), the window-layout worked
// example of specs/models.md §2.5, input validation, and (slow) a live transformers run on a
// bigger random batch with a two-frame grid.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/config/model_config.hpp"
#include "models/io/checkpoint.hpp"
#include "models/nn/weights.hpp"
#include "models/vision/qwen_vision.hpp"
#include "tests/support/catch_torch.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;
using namespace mlab::models;

const fs::path kTiny = mlab::test::data_dir() / "tiny_vlms";
const std::vector<std::string> kCases = {"tiny", "wide",  "tall",          "gray",
                                         "rgba", "large", "portrait_gray", "batch"};

// Loads the tower and proves it, with the text model, accounts for every tensor of the file.
QwenVision load(const std::string& dir_name, LoadOptions options = {}) {
  const fs::path dir = kTiny / dir_name;
  const ModelConfig config = load_model_config(dir);
  Weights weights = Weights::open(dir, config.family, options);
  QwenVision vision = QwenVision::load(weights, config);
  for (const auto& stored : weights.checkpoint().names()) {
    const std::string canonical = canonical_weight_name(config.family, stored);
    if (canonical.rfind("visual.", 0) != 0)
      weights.expect(canonical, weights.checkpoint().info(stored).shape);
  }
  weights.check_all_used();
  return vision;
}

struct Reference {
  at::Tensor pixel_values;    // f32 [S, 1176]
  at::Tensor grid_thw;        // i64 [n, 3]
  at::Tensor image_features;  // f32 [S / 4, 64]
};

Checkpoint checkpoint(const std::string& image) {
  return Checkpoint::open(kTiny / "reference" / ("qwen2_5_vl__" + image + ".safetensors"));
}

// The batch file (images rgba, tiny, tall; README "Reference outputs") stores no image_features:
// its pixel_values are those of the three single-image files concatenated (checked here), so the
// expected rows are their image_features concatenated.
Reference reference(const std::string& image) {
  const Checkpoint ref = checkpoint(image);
  if (image != "batch")
    return {ref.get("pixel_values"), ref.get("image_grid_thw"), ref.get("image_features")};
  std::vector<at::Tensor> pixels, features;
  for (const std::string single : {"rgba", "tiny", "tall"}) {
    const Checkpoint one = checkpoint(single);
    pixels.push_back(one.get("pixel_values"));
    features.push_back(one.get("image_features"));
  }
  const at::Tensor pixel_values = ref.get("pixel_values");
  REQUIRE(at::equal(pixel_values, at::cat(pixels)));
  return {pixel_values, ref.get("image_grid_thw"), at::cat(features)};
}

// max|got - want| / max|want| (got cast to f32 on the CPU).
double relative_diff(const at::Tensor& got, const at::Tensor& want) {
  REQUIRE(got.sizes() == want.sizes());
  const at::Tensor g = got.to(at::kCPU, at::kFloat);
  REQUIRE(at::isfinite(g).all().item<bool>());
  return (g - want).abs().max().item<double>() / want.abs().max().item<double>();
}

std::vector<int64_t> ints(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("qwen vision: image_features equal transformers on every reference", "[vision][qwen]") {
  for (const std::string dir : {"qwen2_5_vl", "qwen2_5_vl-hub"}) {
    const QwenVision vision = load(dir);
    for (const auto& name : kCases) {
      INFO(dir << " / " << name);
      const Reference ref = reference(name);
      const at::Tensor& grid = ref.grid_thw;
      const at::Tensor& want = ref.image_features;
      const double diff = relative_diff(vision.image_features(ref.pixel_values, grid), want);
      std::cout << "qwen vision " << dir << " " << name << ": max|diff| / max|ref| = " << diff
                << " (rows " << want.size(0) << ")\n";
      CHECK(diff <= 1e-4);
      const std::vector<int64_t> g = ints(grid);
      int64_t tokens = 0;
      for (size_t i = 0; i < g.size(); i += 3)
        tokens += vision.image_tokens(g[i], g[i + 1], g[i + 2]);
      CHECK(tokens == want.size(0));
      if (name == "batch") CHECK(grid.size(0) == 3);
    }
  }
}

TEST_CASE("qwen vision: bf16 and fp16 stay close to the fp32 reference", "[vision][qwen]") {
  const Reference ref = reference("batch");
  for (const auto dtype : {at::kBFloat16, at::kHalf}) {
    const QwenVision vision = load("qwen2_5_vl", LoadOptions{.dtype = dtype});
    // pixel_values in f64 on purpose: any float dtype is accepted and cast.
    const at::Tensor got = vision.image_features(ref.pixel_values.to(at::kDouble), ref.grid_thw);
    CHECK(got.scalar_type() == dtype);
    const double diff = relative_diff(got, ref.image_features);
    std::cout << "qwen vision batch " << c10::toString(dtype) << ": max|diff| / max|ref| = " << diff
              << "\n";
    CHECK(diff <= 5e-2);
  }
}

TEST_CASE("qwen vision: image_tokens", "[vision][qwen]") {
  const QwenVision vision = load("qwen2_5_vl");
  CHECK(vision.image_tokens(1, 34, 46) == 391);  // specs §4.4: 640x480
  CHECK(vision.image_tokens(2, 4, 6) == 12);
  CHECK_THROWS_WITH(vision.image_tokens(1, 3, 4), Contains("divisible by spatial_merge_size 2"));
  CHECK_THROWS_WITH(vision.image_tokens(0, 4, 4), Contains("must be positive"));
}

TEST_CASE("qwen vision: window layout worked example of specs §2.5", "[vision][qwen]") {
  const QwenWindowLayout l = qwen_window_layout({{1, 14, 18}}, 112, 14, 2);
  CHECK(l.cu_window_seqlens == std::vector<int64_t>{0, 64, 128, 144, 192, 240, 252});
  CHECK(std::vector<int64_t>(l.window_index.begin(), l.window_index.begin() + 9) ==
        std::vector<int64_t>{0, 1, 2, 3, 9, 10, 11, 12, 18});
  CHECK(l.window_index.size() == 63);
  CHECK(l.cu_full_seqlens == std::vector<int64_t>{0, 252});
}

TEST_CASE("qwen vision: window layout when a merged side is a multiple of 4", "[vision][qwen]") {
  // merged 7x4 (portrait_gray): HF pads a whole empty window column, which is skipped.
  QwenWindowLayout l = qwen_window_layout({{1, 14, 8}}, 112, 14, 2);
  CHECK(l.cu_window_seqlens == std::vector<int64_t>{0, 64, 112});
  CHECK(l.window_index.size() == 28);
  CHECK(l.window_index[16] == 16);  // second window starts at merged row 4
  // merged 4x4 twice (two frames) and then 2x8 -> frames have their own windows, offsets run on.
  l = qwen_window_layout({{2, 8, 8}, {1, 4, 16}}, 112, 14, 2);
  CHECK(l.cu_window_seqlens == std::vector<int64_t>{0, 64, 128, 160, 192});
  CHECK(l.cu_full_seqlens == std::vector<int64_t>{0, 64, 128, 192});
  CHECK(l.window_index[16] == 16);
  CHECK(std::vector<int64_t>(l.window_index.begin() + 32, l.window_index.begin() + 40) ==
        std::vector<int64_t>{32, 33, 34, 35, 40, 41, 42, 43});
  CHECK(l.window_index.back() == 47);
}

TEST_CASE("qwen vision: bad inputs are rejected with the problem named", "[vision][qwen]") {
  const QwenVision vision = load("qwen2_5_vl");
  const at::Tensor pv = at::zeros({24, 1176});
  const at::Tensor grid = at::tensor(std::vector<int64_t>{1, 4, 6}, at::kLong).view({1, 3});
  CHECK(vision.image_features(pv, grid).sizes() == at::IntArrayRef{6, 64});
  CHECK(vision.image_features(at::zeros({0, 1176}), at::zeros({0, 3}, at::kLong)).sizes() ==
        at::IntArrayRef{0, 64});  // no images: no rows
  CHECK_THROWS_WITH(vision.image_features(at::zeros({23, 1176}), grid),
                    Contains("pixel_values has 23 rows but grid_thw gives sum t*h*w = 24"));
  CHECK_THROWS_WITH(vision.image_features(at::zeros({24, 1175}), grid),
                    Contains("pixel_values must be [S, 1176]"));
  CHECK_THROWS_WITH(vision.image_features(at::zeros({24, 1176, 1}), grid),
                    Contains("pixel_values must be [S, 1176]"));
  CHECK_THROWS_WITH(
      vision.image_features(pv, at::tensor(std::vector<int64_t>{1, 3, 8}, at::kLong).view({1, 3})),
      Contains("h and w must be divisible by spatial_merge_size 2"));
  CHECK_THROWS_WITH(vision.image_features(pv, grid.view({3})), Contains("grid_thw must be [n, 3]"));
  CHECK_THROWS_WITH(vision.image_features(pv, at::ones({1, 3})),
                    Contains("grid_thw must be an integer tensor"));
  CHECK_THROWS_WITH(
      vision.image_features(pv, at::tensor(std::vector<int64_t>{-1, 4, 6}, at::kLong).view({1, 3})),
      Contains("must be positive"));
  const ModelConfig llava = load_model_config(kTiny / "llava");
  Weights weights = Weights::open(kTiny / "llava", llava.family, {});
  CHECK_THROWS_WITH(QwenVision::load(weights, llava), Contains("not qwen2_5_vl"));
}

// The oracle: transformers' model.visual on random pixels, grids [[2,22,30],[1,16,8],[1,2,2]]
// (a two-frame grid, a merged side % 4 == 0, a grid smaller than a window).
static const char* kOracle = R"PY(
import sys, torch
from safetensors.torch import save_file
from transformers import Qwen2_5_VLForConditionalGeneration
model_dir, out = sys.argv[1], sys.argv[2]
model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
    model_dir, dtype=torch.float32, attn_implementation="eager").eval()
grid = torch.tensor([[2, 22, 30], [1, 16, 8], [1, 2, 2]])
gen = torch.Generator().manual_seed(20250611)
pixel_values = torch.randn(int(grid.prod(1).sum()), 1176, generator=gen)
with torch.no_grad():
    y = model.model.visual(pixel_values, grid_thw=grid).pooler_output
save_file({"pixel_values": pixel_values, "image_grid_thw": grid,
           "image_features": y.contiguous()}, out)
)PY";

TEST_CASE("qwen vision: live transformers on a bigger random batch", "[vision][qwen][slow]") {
  const std::string python = mlab::test::python();
  if (python.empty() ||
      std::system(("\"" + python + "\" -c \"import transformers\" 2>/dev/null").c_str()) != 0) {
    WARN("skipped: no Python with transformers configured (MLAB_PYTHON)");
    return;
  }
  const fs::path dir = mlab::test::scratch_dir("qwen_vision_live");
  std::ofstream(dir / "oracle.py") << kOracle;
  const fs::path out = dir / "live.safetensors";
  const std::string command = "\"" + python + "\" \"" + (dir / "oracle.py").string() + "\" \"" +
                              (kTiny / "qwen2_5_vl").string() + "\" \"" + out.string() +
                              "\" >/dev/null 2>&1";
  REQUIRE(std::system(command.c_str()) == 0);
  const Checkpoint ref = Checkpoint::open(out);
  const QwenVision vision = load("qwen2_5_vl");
  const double diff =
      relative_diff(vision.image_features(ref.get("pixel_values"), ref.get("image_grid_thw")),
                    ref.get("image_features"));
  std::cout << "qwen vision live (grids 2x22x30, 1x16x8, 1x2x2): max|diff| / max|ref| = " << diff
            << "\n";
  CHECK(diff <= 1e-4);
}
