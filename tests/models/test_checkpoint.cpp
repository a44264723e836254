#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "models/io/checkpoint.hpp"
#include "models/io/tensor_io.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Contains;
using namespace mlab::models;
using mlab::test::read_json;

std::string tensor_hex(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return mlab::test::hex(c.data_ptr(), c.nbytes());
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir))
    out.insert(entry.path().filename().string());
  return out;
}

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         tensor_hex(a) == tensor_hex(b);
}

const fs::path kSharded = mlab::test::data_dir() / "safetensors" / "sharded";

// Tensors of a small model, in state-dict order. Sizes (bytes): 64, 512, 32, 256, 8.
std::vector<std::pair<std::string, at::Tensor>> small_model() {
  at::manual_seed(11);
  return {
      {"model.embed.weight", at::randn({4, 8}).to(at::kBFloat16)},
      {"model.layers.0.proj.weight", at::randn({16, 8})},
      {"model.layers.0.norm.weight", at::ones({8})},
      {"lm_head.weight", at::randn({8, 8})},
      {"model.ids", at::arange(1, at::kLong)},
  };
}

}  // namespace

TEST_CASE("checkpoint: Python-written sharded checkpoint reads bit-exactly", "[checkpoint]") {
  const json sidecar = read_json(mlab::test::data_dir() / "safetensors" / "sharded.expected.json");
  const auto checkpoint = Checkpoint::open(kSharded);
  CHECK(checkpoint.sharded());
  CHECK(checkpoint.shards().size() == 3);
  CHECK(checkpoint.index_total_size() == std::optional<uint64_t>(2080));
  CHECK(checkpoint.metadata() == std::map<std::string, std::string>{{"format", "pt"}});

  std::vector<std::string> expected_names;
  for (const auto& item : sidecar.at("tensors").items()) expected_names.push_back(item.key());
  std::sort(expected_names.begin(), expected_names.end());
  CHECK(checkpoint.names() == expected_names);

  for (const auto& name : checkpoint.names()) {
    INFO(name);
    const json& expected = sidecar.at("tensors").at(name);
    const TensorInfo& info = checkpoint.info(name);
    const at::Tensor t = checkpoint.get(name);
    CHECK(std::string(dtype_name(info.dtype)) == expected.at("dtype").get<std::string>());
    CHECK(t.sizes().vec() == expected.at("shape").get<std::vector<int64_t>>());
    CHECK(t.scalar_type() == to_scalar_type(info.dtype));
    CHECK(tensor_hex(t) == expected.at("hex").get<std::string>());
    CHECK(checkpoint.file_of(name).path().filename() ==
          sidecar.at("shards").at(name).get<std::string>());
  }
  CHECK(checkpoint.contains("lm_head.weight"));
  CHECK_FALSE(checkpoint.contains("lm_head.bias"));
  REQUIRE_THROWS_AS(checkpoint.get("lm_head.wieght"), mlab::Error);
  REQUIRE_THROWS_WITH(checkpoint.get("lm_head.wieght"),
                      Contains("sharded") && Contains("no tensor 'lm_head.wieght'") &&
                          Contains("did you mean 'lm_head.weight'"));

  // The index file itself can be opened, with the same result.
  const auto by_index = Checkpoint::open(kSharded / "model.safetensors.index.json");
  CHECK(by_index.names() == checkpoint.names());
  CHECK(bit_equal(by_index.get("model.norm.weight"), checkpoint.get("model.norm.weight")));
}

TEST_CASE("checkpoint: single files and model.safetensors directories", "[checkpoint]") {
  const fs::path dir = mlab::test::scratch_dir("ckpt-single");
  const auto tensors = small_model();
  save_checkpoint(dir, tensors, {{"format", "pt"}});
  CHECK(files_in(dir) == std::set<std::string>{"model.safetensors"});

  for (const fs::path& path : {dir, dir / "model.safetensors"}) {
    INFO(path);
    const auto checkpoint = Checkpoint::open(path);
    CHECK_FALSE(checkpoint.sharded());
    CHECK(checkpoint.shards().size() == 1);
    CHECK(checkpoint.metadata().at("format") == "pt");
    CHECK(checkpoint.names().size() == tensors.size());
    for (const auto& [name, expected] : tensors) CHECK(bit_equal(checkpoint.get(name), expected));
  }
}

TEST_CASE("checkpoint: save_checkpoint shards like transformers", "[checkpoint]") {
  const fs::path dir = mlab::test::scratch_dir("ckpt-sharded");
  const auto tensors = small_model();  // 64 + 512 + 32 + 256 + 8 = 872 bytes
  save_checkpoint(dir, tensors, {{"format", "pt"}}, /*max_shard_bytes=*/290);
  // [embed 64] | [proj 512 > limit: alone] | [norm 32, lm_head 256] | [ids 8]
  CHECK(files_in(dir) == std::set<std::string>{
                             "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                             "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                             "model.safetensors.index.json"});
  const json index = read_json(dir / "model.safetensors.index.json");
  CHECK(index.at("metadata").at("total_size") == 872);
  CHECK(index.at("metadata").at("total_parameters") == 32 + 128 + 8 + 64 + 1);
  CHECK(index.at("weight_map").size() == tensors.size());
  CHECK(index.at("weight_map").at("model.layers.0.proj.weight") ==
        "model-00002-of-00004.safetensors");
  CHECK(index.at("weight_map").at("lm_head.weight") == "model-00003-of-00004.safetensors");

  const auto checkpoint = Checkpoint::open(dir);
  CHECK(checkpoint.sharded());
  CHECK(checkpoint.index_total_size() == std::optional<uint64_t>(872));
  for (const auto& [name, expected] : tensors) CHECK(bit_equal(checkpoint.get(name), expected));
  for (const auto& shard : checkpoint.shards()) CHECK(shard.metadata().at("format") == "pt");

  SECTION("saving unsharded into the same directory removes the old shards and index") {
    save_checkpoint(dir, tensors, {}, /*max_shard_bytes=*/1 << 20);
    CHECK(files_in(dir) == std::set<std::string>{"model.safetensors"});
    CHECK_FALSE(Checkpoint::open(dir).sharded());
  }
  SECTION("re-sharding with another count removes shards of the old count") {
    save_checkpoint(dir, tensors, {}, /*max_shard_bytes=*/600);
    CHECK(files_in(dir) == std::set<std::string>{"model-00001-of-00002.safetensors",
                                                 "model-00002-of-00002.safetensors",
                                                 "model.safetensors.index.json"});
    CHECK(Checkpoint::open(dir).names().size() == tensors.size());
  }
}

TEST_CASE("checkpoint: save_checkpoint validates before writing", "[checkpoint]") {
  const fs::path dir = mlab::test::scratch_dir("ckpt-bad");
  auto tensors = small_model();
  tensors.push_back(tensors.front());
  REQUIRE_THROWS_WITH(
      save_checkpoint(dir, tensors, {}, 100),
      Contains(dir.string()) && Contains("duplicate tensor name 'model.embed.weight'"));
  tensors.pop_back();
  tensors.emplace_back("z", at::zeros({2}, at::kComplexDouble));
  REQUIRE_THROWS_WITH(save_checkpoint(dir, tensors, {}, 100),
                      Contains("tensor 'z'") && Contains("cannot be stored"));
  CHECK(fs::is_empty(dir));
}
