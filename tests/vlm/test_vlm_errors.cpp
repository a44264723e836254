// Bad inputs to the VLM runtime and to `mla-bench generate` (F3 acceptance 5): each is rejected
// with a message naming the file and the problem.
#include <ATen/ATen.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

namespace {

namespace fs = std::filesystem;
using mlab::models::Checkpoint;
using mlab::models::Vlm;

fs::path tiny(const std::string& name) { return mlab::test::data_dir() / "tiny_vlms" / name; }

// A copy of tiny_vlms/<family> whose weights are edited by `edit`.
fs::path edited_model(
    const std::string& family, const std::string& tag,
    const std::function<void(std::vector<std::pair<std::string, at::Tensor>>&)>& edit) {
  const fs::path dir = mlab::test::scratch_dir("vlm_errors_" + tag);
  for (const auto& entry : fs::directory_iterator(tiny(family))) {
    if (entry.path().filename() != "model.safetensors")
      fs::copy_file(entry.path(), dir / entry.path().filename());
  }
  const Checkpoint ck = Checkpoint::open(tiny(family));
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& name : ck.names()) tensors.emplace_back(name, ck.get(name).clone());
  edit(tensors);
  mlab::models::save_safetensors(dir / "model.safetensors", tensors, {});
  return dir;
}

std::string load_error(const fs::path& dir) {
  try {
    Vlm::load(dir);
  } catch (const mlab::Error& e) {
    return e.what();
  }
  FAIL("Vlm::load accepted " << dir);
  return {};
}

}  // namespace

TEST_CASE("vlm errors: missing or extra or mis-shaped tensors name the file and the tensor",
          "[vlm][errors]") {
  const auto missing = edited_model("llava_next", "missing", [](auto& t) {
    std::erase_if(t, [](const auto& p) {
      return p.first == "language_model.model.layers.1.mlp.up_proj.weight";
    });
  });
  auto message = load_error(missing);
  CHECK_THAT(message,
             Catch::Contains("missing tensor 'language_model.model.layers.1.mlp.up_proj.weight'"));
  CHECK_THAT(message, Catch::Contains(missing.string()));

  const auto extra = edited_model("qwen2_5_vl", "extra", [](auto& t) {
    t.emplace_back("model.layers.9.self_attn.q_proj.weight", at::zeros({64, 64}));
  });
  message = load_error(extra);
  CHECK_THAT(message,
             Catch::Contains("unexpected tensor(s) 'model.layers.9.self_attn.q_proj.weight'"));

  const auto shape = edited_model("llava", "shape", [](auto& t) {
    for (auto& [name, tensor] : t) {
      if (name == "language_model.model.layers.0.self_attn.k_proj.weight")
        tensor = at::zeros({32, 64});
    }
  });
  message = load_error(shape);
  CHECK_THAT(
      message,
      Catch::Contains(
          "model.safetensors: tensor 'language_model.model.layers.0.self_attn.k_proj.weight' has "
          "shape [32, 64], but config.json implies [64, 64]"));

  const auto vision = edited_model("qwen2_5_vl", "vision_shape", [](auto& t) {
    for (auto& [name, tensor] : t) {
      if (name == "visual.merger.mlp.2.weight") tensor = at::zeros({32, 128});
    }
  });
  CHECK_THAT(load_error(vision),
             Catch::Contains("'visual.merger.mlp.2.weight' has shape [32, 128]"));
}

TEST_CASE("vlm errors: placeholders and images and features that disagree", "[vlm][errors]") {
  const Vlm vlm = Vlm::load(tiny("qwen2_5_vl"));
  mlab::models::VlmRequest r;
  r.turns.push_back({"user", "two images?", 1});
  r.images = {mlab::image::filled_rgb8_image(56, 56), mlab::image::filled_rgb8_image(56, 56)};
  CHECK_THROWS_WITH(vlm.prepare(std::span(&r, 1)),
                    Catch::Contains("1 image placeholder(s) in the turns but 2 image(s)"));
  r.images.pop_back();
  auto in = vlm.prepare(std::span(&r, 1));
  // Drop one placeholder token: features no longer fit.
  const auto ids = in.input_ids;
  const auto keep =
      ids.ne(vlm.config().image_token_id)
          .logical_or(at::arange(ids.size(1))
                          .view({1, -1})
                          .ne((ids == vlm.config().image_token_id).to(at::kLong).argmax(1, true)));
  in.input_ids = ids.masked_select(keep).view({1, -1});
  in.attention_mask = in.attention_mask.masked_select(keep).view({1, -1});
  CHECK_THROWS_WITH(vlm.prefill(in), Catch::Contains("placeholder"));
}

TEST_CASE("vlm errors: mla-bench generate on bad images and bad model dirs", "[vlm][errors]") {
  const fs::path dir = mlab::test::scratch_dir("vlm_errors_images");
  const fs::path model = tiny("llava");
  // A truncated PNG: the first 60 bytes of a real one.
  {
    std::ifstream in(mlab::test::data_dir() / "images" / "gray.png", std::ios::binary);
    std::string bytes(60, '\0');
    in.read(bytes.data(), 60);
    std::ofstream(dir / "truncated.png", std::ios::binary) << bytes;
    std::ofstream(dir / "text.jpg") << "not an image at all";
    // A RIFF/WEBP header: a format stb does not decode.
    std::ofstream(dir / "image.webp", std::ios::binary)
        << std::string("RIFF\x24\0\0\0WEBPVP8 ", 16);
  }
  const std::string base = "generate --model " + model.string() + " --prompt hi --image ";
  for (const std::string file : {"truncated.png", "text.jpg", "image.webp", "missing.png"}) {
    INFO(file);
    const auto r = mlab::test::run_mla_bench(base + (dir / file).string());
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains((dir / file).string()));
    CHECK_THAT(r.err,
               Catch::Contains(file == "missing.png" ? "missing" : "corrupt or unsupported image"));
  }
  const auto r = mlab::test::run_mla_bench("generate --model " + dir.string() + " --prompt hi");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("config.json"));
}
