#include "tests/support/catch_torch.hpp"
#include "tests/support/test_files.hpp"

#include "core/error.hpp"
#include "models/config/model_config.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Catch::Contains;
using Catch::StartsWith;
using namespace mlab::models;
using mlab::test::read_json;

fs::path fixtures_dir() { return mlab::test::data_dir() / "configs"; }

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

// Appends "<path>: parsed X, transformers Y" for every difference between `actual` (our parse)
// and `expected` (expected.json); numbers compare as numbers (1e-12 relative for floats).
void diff(const json& actual, const json& expected, const std::string& path,
          std::vector<std::string>& out) {
  if (expected.is_object() && actual.is_object()) {
    for (const auto& [key, value] : expected.items()) {
      const std::string where = path.empty() ? key : path + "." + key;
      if (!actual.contains(key)) {
        out.push_back(where + ": missing from the parse");
      } else {
        diff(actual[key], value, where, out);
      }
    }
    for (const auto& [key, value] : actual.items()) {
      if (!expected.contains(key)) out.push_back(path + "." + key + ": not in expected.json");
    }
    return;
  }
  if (expected.is_array() && actual.is_array() && expected.size() == actual.size()) {
    for (std::size_t i = 0; i < expected.size(); ++i) {
      diff(actual[i], expected[i], path + "[" + std::to_string(i) + "]", out);
    }
    return;
  }
  bool same = actual == expected;
  if (actual.is_number() && expected.is_number()) {
    const double a = actual.get<double>();
    const double e = expected.get<double>();
    same = std::abs(a - e) <= 1e-12 * std::max(1.0, std::abs(e));
  }
  if (!same)
    out.push_back(path + ": parsed " + actual.dump() + ", transformers " + expected.dump());
}

}  // namespace

TEST_CASE("every config fixture parses to what transformers resolves", "[models][config]") {
  std::set<std::string> cases;
  for (const auto& entry : fs::directory_iterator(fixtures_dir())) {
    if (fs::exists(entry.path() / "expected.json")) cases.insert(entry.path().filename().string());
  }
  CHECK(cases == std::set<std::string>{"Qwen2.5-VL-7B-Instruct", "llama3-llava-next-8b-hf",
                                       "llava-1.5-7b-hf", "tiny-llava", "tiny-llava-next",
                                       "tiny-qwen2_5_vl", "tiny-qwen2_5_vl-hub"});
  for (const auto& name : cases) {
    DYNAMIC_SECTION(name) {
      const ModelConfig config = load_model_config(fixtures_dir() / name);
      const json expected = read_json(fixtures_dir() / name / "expected.json");
      std::vector<std::string> mismatches;
      diff(resolved_config_json(config), expected, "", mismatches);
      std::string report;
      for (const auto& line : mismatches) report += "\n  " + line;
      INFO(name << ":" << report);
      CHECK(mismatches.empty());
      CHECK(config.raw == read_json(fixtures_dir() / name / "config.json"));
    }
  }
}

TEST_CASE("the real-checkpoint fixtures are copies of configs/models", "[models][config]") {
  const fs::path models = mlab::test::data_dir().parent_path().parent_path() / "configs/models";
  for (const std::string name :
       {"llava-1.5-7b-hf", "llama3-llava-next-8b-hf", "Qwen2.5-VL-7B-Instruct"}) {
    INFO(name);
    CHECK(read_json(models / (name + ".json")) == read_json(fixtures_dir() / name / "config.json"));
  }
}

TEST_CASE("llava-1.5-7b-hf gets the Llama and CLIP defaults of models.md 1.1", "[models][config]") {
  const ModelConfig c = load_model_config(fixtures_dir() / "llava-1.5-7b-hf" / "config.json");
  CHECK(c.family == ModelFamily::kLlava);
  // The file's text_config gives only vocab, eps and max positions; the rest is LlamaConfig's.
  CHECK(c.text.model_type == "llama");
  CHECK(c.text.vocab_size == 32064);
  CHECK(c.text.hidden_size == 4096);
  CHECK(c.text.num_hidden_layers == 32);
  CHECK(c.text.num_attention_heads == 32);
  CHECK(c.text.num_key_value_heads == 32);
  CHECK(c.text.intermediate_size == 11008);
  CHECK(c.text.head_dim == 128);
  CHECK(c.text.hidden_act == "silu");
  CHECK(c.text.rms_norm_eps == 1e-5);
  CHECK(c.text.max_position_embeddings == 4096);
  CHECK(c.text.rope.type == "default");
  CHECK(c.text.rope.theta == 10000.0);
  CHECK(c.text.rope.mrope_section.empty());
  CHECK_FALSE(c.text.attention_bias);
  CHECK_FALSE(c.text.attention_out_bias);
  CHECK(c.text.bos_token_id == 1);
  CHECK(c.text.eos_token_id == std::vector<int64_t>{2});
  CHECK_FALSE(c.text.pad_token_id.has_value());
  CHECK(c.pad_token_id == 32001);
  CHECK(c.image_token_id == 32000);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.dtype == "float16");
  REQUIRE(c.clip_vision.has_value());
  CHECK_FALSE(c.qwen_vision.has_value());
  const ClipVisionConfig& v = *c.clip_vision;
  CHECK(v.hidden_size == 1024);
  CHECK(v.num_hidden_layers == 24);
  CHECK(v.num_attention_heads == 16);
  CHECK(v.head_dim() == 64);
  CHECK(v.intermediate_size == 4096);
  CHECK(v.hidden_act == "quick_gelu");
  CHECK(v.layer_norm_eps == 1e-5);
  CHECK(v.image_size / v.patch_size == 24);
  CHECK(v.num_patches() == 576);  // 336 / 14 = 24 patches a side
  CHECK(c.image_seq_length == v.num_patches());
  CHECK(c.vision_feature_layer == std::vector<int64_t>{-2});
  CHECK(c.vision_feature_select_strategy == "default");
  CHECK(c.projector_hidden_act == "gelu");
  CHECK(c.multimodal_projector_bias);
  CHECK(c.image_grid_pinpoints.empty());
}

TEST_CASE("llama3-llava-next and Qwen2.5-VL-7B hold the models.md 1.1 values", "[models][config]") {
  const ModelConfig next = load_model_config(fixtures_dir() / "llama3-llava-next-8b-hf");
  CHECK(next.family == ModelFamily::kLlavaNext);
  CHECK(next.text.num_key_value_heads == 8);
  CHECK(next.text.head_dim == 128);
  CHECK(next.text.intermediate_size == 14336);
  CHECK(next.text.vocab_size == 128320);
  CHECK(next.text.rope.theta == 500000.0);
  CHECK(next.text.bos_token_id == 128000);
  CHECK(next.text.eos_token_id == std::vector<int64_t>{128009});
  CHECK(next.text.dtype == "bfloat16");
  CHECK(next.image_token_id == 128256);
  CHECK(next.use_image_newline_parameter == true);
  const std::vector<std::array<int64_t, 2>> pinpoints = {
      {336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
  CHECK((next.image_grid_pinpoints == pinpoints));  // (( )): Catch cannot print std::array

  const ModelConfig qwen = load_model_config(fixtures_dir() / "Qwen2.5-VL-7B-Instruct");
  CHECK(qwen.family == ModelFamily::kQwen2_5_VL);
  CHECK(qwen.text.model_type == "qwen2_5_vl_text");
  CHECK(qwen.text.hidden_size == 3584);
  CHECK(qwen.text.num_hidden_layers == 28);
  CHECK(qwen.text.num_attention_heads == 28);
  CHECK(qwen.text.num_key_value_heads == 4);
  CHECK(qwen.text.head_dim == 128);
  CHECK(qwen.text.rms_norm_eps == 1e-6);
  CHECK(qwen.text.rope.theta == 1e6);
  CHECK(qwen.text.rope.type == "default");
  CHECK(qwen.text.rope.mrope_section == std::vector<int64_t>{16, 24, 24});
  CHECK(qwen.text.attention_bias);
  CHECK_FALSE(qwen.text.attention_out_bias);
  CHECK_FALSE(qwen.text.sliding_window.has_value());  // use_sliding_window false
  CHECK(qwen.text.layer_types == std::vector<std::string>(28, "full_attention"));
  CHECK(qwen.vision_start_token_id == 151652);
  CHECK(qwen.vision_end_token_id == 151653);
  CHECK(qwen.vision_token_id == 151654);
  CHECK(qwen.image_token_id == 151655);
  CHECK(qwen.video_token_id == 151656);
  REQUIRE(qwen.qwen_vision.has_value());
  CHECK(qwen.qwen_vision->head_dim() == 80);
  CHECK(qwen.qwen_vision->in_channels == 3);  // from in_chans
  CHECK(qwen.qwen_vision->fullatt_block_indexes == std::vector<int64_t>{7, 15, 23, 31});
  CHECK(qwen.qwen_vision->rope_theta == 10000.0);
}

TEST_CASE("sparse inline configs get the transformers defaults", "[models][config]") {
  SECTION("llava without text_config or vision_config: LlamaConfig and LLaVA's CLIP-L/336") {
    const ModelConfig c = parse_model_config(json{{"model_type", "llava"}}, "<inline>");
    CHECK(c.text.vocab_size == 32000);
    CHECK(c.text.max_position_embeddings == 2048);
    CHECK(c.text.rms_norm_eps == 1e-6);
    CHECK(c.clip_vision->hidden_size == 1024);
    CHECK(c.clip_vision->projection_dim == 768);
    CHECK(c.clip_vision->image_size == 336);
    CHECK(c.clip_vision->patch_size == 14);
  }
  SECTION("a vision_config dict without model_type starts from CLIPVisionConfig, not LLaVA's") {
    const ModelConfig c =
        parse_model_config(json::parse(R"({"model_type": "llava_next", "image_token_id": 7,
                        "vision_config": {"hidden_size": 64, "num_attention_heads": 4},
                        "vision_feature_layer": [-2, -5]})"),
                           "<inline>");
    CHECK(c.clip_vision->projection_dim == 512);
    CHECK(c.clip_vision->image_size == 224);
    CHECK(c.clip_vision->patch_size == 32);
    CHECK(c.clip_vision->num_hidden_layers == 12);
    CHECK(c.image_token_id == 7);
    CHECK(c.vision_feature_layer == std::vector<int64_t>{-2, -5});
    CHECK(c.image_grid_pinpoints.size() == 5);
  }
  SECTION("Llama: null kv heads and head_dim are derived; eos lists; rope_scaling wins") {
    const ModelConfig c = parse_model_config(json::parse(R"({"model_type": "llava",
        "text_config": {"hidden_size": 96, "num_attention_heads": 3, "num_key_value_heads": null,
                        "head_dim": null, "eos_token_id": [2, 7], "bos_token_id": null,
                        "max_position_embeddings": 8192, "rope_theta": 7.0,
                        "rope_parameters": {"rope_type": "default", "rope_theta": 5.0},
                        "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                         "low_freq_factor": 1.0, "high_freq_factor": 4}}})"),
                                             "<inline>");
    CHECK(c.text.num_key_value_heads == 3);
    CHECK(c.text.head_dim == 32);
    CHECK(c.text.eos_token_id == std::vector<int64_t>{2, 7});
    CHECK_FALSE(c.text.bos_token_id.has_value());
    CHECK(c.text.rope.type == "llama3");
    CHECK(c.text.rope.theta == 7.0);
    CHECK(c.text.rope.factor == 8.0);
    CHECK(c.text.rope.high_freq_factor == 4.0);
    CHECK(c.text.rope.original_max_position_embeddings == 8192);
  }
  SECTION("Qwen flat: kv heads default to 8, vision aliases, mrope_section falls back") {
    const ModelConfig c = parse_model_config(json::parse(R"({"model_type": "qwen2_5_vl",
        "hidden_size": 2048, "num_attention_heads": 16, "tie_word_embeddings": true,
        "rope_theta": 1000000.0, "use_sliding_window": true, "sliding_window": 64,
        "max_window_layers": 1, "num_hidden_layers": 2, "pad_token_id": 9,
        "vision_config": {"num_attention_heads": 8, "num_hidden_layers": 3, "in_chans": 1,
                          "hidden_size": 64, "out_hidden_size": 2048,
                          "fullatt_block_indexes": [2]}})"),
                                             "<inline>");
    CHECK(c.text.num_key_value_heads == 8);
    CHECK(c.text.head_dim == 128);
    CHECK(c.text.rope.mrope_section == std::vector<int64_t>{16, 24, 24});
    CHECK(c.text.sliding_window == 64);
    CHECK(c.text.layer_types == std::vector<std::string>{"full_attention", "sliding_attention"});
    CHECK(c.text.pad_token_id == 9);
    CHECK_FALSE(c.pad_token_id.has_value());
    CHECK(c.tie_word_embeddings);
    CHECK(c.qwen_vision->num_heads == 8);
    CHECK(c.qwen_vision->depth == 3);
    CHECK(c.qwen_vision->in_channels == 1);
    CHECK(c.qwen_vision->tokens_per_second == 4);
  }
  CHECK(family_name(parse_family("llava_next")) == "llava_next");
  REQUIRE_THROWS_WITH(parse_family("qwen2_vl"), Contains("did you mean 'qwen2_5_vl'?"));
}

TEST_CASE("malformed config.json files are rejected naming the file and the problem",
          "[models][config][malformed]") {
  const fs::path dir = mlab::test::scratch_dir("config-malformed");
  const json llava = read_json(fixtures_dir() / "tiny-llava" / "config.json");
  const json next = read_json(fixtures_dir() / "tiny-llava-next" / "config.json");
  const json qwen = read_json(fixtures_dir() / "tiny-qwen2_5_vl-hub" / "config.json");
  struct Case {
    std::string name;
    std::function<std::string()> text;  // the file's bytes
    std::string problem;                // a phrase the message must contain
  };
  const auto edit = [](json base, const std::function<void(json&)>& change) {
    return [base, change]() mutable {
      change(base);
      return base.dump(2);
    };
  };
  const auto raw = [](std::string text) { return [text] { return text; }; };
  const std::vector<Case> cases = {
      {"truncated", raw(R"({"model_type": "llava", "text_config": {)"), "invalid JSON at byte 41"},
      {"empty", raw(""), "invalid JSON at byte"},
      {"not-an-object", raw("[1, 2]"), "expected a JSON object at the top level, got array [1,2]"},
      {"no-model-type", edit(llava, [](json& j) { j.erase("model_type"); }),
       "model_type: missing; supported: llava, llava_next, qwen2_5_vl"},
      {"unknown-model-type", edit(llava, [](json& j) { j["model_type"] = "lava"; }),
       "unknown model_type 'lava'; did you mean 'llava'?"},
      {"heads-string", edit(llava, [](json& j) { j["text_config"]["num_attention_heads"] = "32"; }),
       R"(text_config.num_attention_heads: expected an integer, got string "32")"},
      {"heads-float", edit(llava, [](json& j) { j["text_config"]["num_attention_heads"] = 4.0; }),
       "text_config.num_attention_heads: expected an integer, got number 4.0"},
      {"negative-hidden", edit(llava, [](json& j) { j["text_config"]["hidden_size"] = -64; }),
       "text_config.hidden_size: must be positive, got -64"},
      {"zero-eps", edit(llava, [](json& j) { j["text_config"]["rms_norm_eps"] = 0; }),
       "text_config.rms_norm_eps: must be positive"},
      {"hidden-not-multiple",
       edit(llava,
            [](json& j) {
              j["text_config"]["hidden_size"] = 66;
              j["text_config"].erase("head_dim");
            }),
       "text_config.hidden_size: 66 is not a multiple of text_config.num_attention_heads 4"},
      {"kv-not-divisor", edit(next, [](json& j) { j["text_config"]["num_key_value_heads"] = 3; }),
       "text_config.num_key_value_heads: 4 attention heads are not a multiple of 3 key/value"},
      {"odd-head-dim", edit(llava, [](json& j) { j["text_config"]["head_dim"] = 15; }),
       "text_config.head_dim: 15 must be even for rotary embeddings"},
      {"text-config-string", edit(llava, [](json& j) { j["text_config"] = "llama"; }),
       R"(text_config: expected an object, got string "llama")"},
      {"text-mistral", edit(llava, [](json& j) { j["text_config"]["model_type"] = "mistral"; }),
       "text_config.model_type: unsupported text model 'mistral'"},
      {"rope-typo",
       edit(llava, [](json& j) { j["text_config"]["rope_parameters"]["rope_type"] = "lama3"; }),
       "text_config.rope_parameters.rope_type: unknown rope type 'lama3'; did you mean 'llama3'?"},
      {"eos-string", edit(llava, [](json& j) { j["text_config"]["eos_token_id"] = "2"; }),
       "text_config.eos_token_id: expected an integer or a list of integers"},
      {"mrope-sum",
       edit(qwen,
            [](json& j) {
              j["rope_scaling"]["mrope_section"] = {2, 3, 4};
            }),
       "rope_scaling.mrope_section: M-RoPE sections [2, 3, 4] sum to 9, but head_dim / 2 = 8"},
      {"qwen-head-dim", edit(qwen, [](json& j) { j["head_dim"] = 32; }),
       "head_dim: 32 disagrees with hidden_size / num_attention_heads = 16"},
      {"strategy", edit(llava, [](json& j) { j["vision_feature_select_strategy"] = "cls"; }),
       R"(vision_feature_select_strategy: expected "default" or "full", got "cls")"},
      {"feature-layer", edit(llava, [](json& j) { j["vision_feature_layer"] = -5; }),
       "vision_feature_layer: layer -5 is out of range for a vision tower with 3 layers"},
      {"pinpoints-triple",
       edit(next,
            [](json& j) {
              j["image_grid_pinpoints"] = {{28, 56}, {56, 28, 1}};
            }),
       "image_grid_pinpoints[1]: expected a list of [height, width] pairs of positive integers"},
      {"pinpoints-string", edit(next, [](json& j) { j["image_grid_pinpoints"] = "anyres"; }),
       "image_grid_pinpoints: expected a list of [height, width] pairs"},
      {"fullatt-range",
       edit(qwen,
            [](json& j) {
              j["vision_config"]["fullatt_block_indexes"] = {1, 9};
            }),
       "vision_config.fullatt_block_indexes: block 9 is out of range for depth 4"},
      {"image-not-multiple", edit(llava, [](json& j) { j["vision_config"]["image_size"] = 30; }),
       "vision_config.image_size: 30 is not a multiple of vision_config.patch_size 14"},
      {"clip-siglip",
       edit(llava, [](json& j) { j["vision_config"]["model_type"] = "siglip_vision_model"; }),
       "vision_config.model_type: unsupported vision model 'siglip_vision_model'"},
      {"in-chans-conflict", edit(qwen, [](json& j) { j["vision_config"]["in_channels"] = 1; }),
       "vision_config.in_channels: 1 disagrees with in_chans 3"},
      {"merger-width", edit(qwen, [](json& j) { j["vision_config"]["out_hidden_size"] = 32; }),
       "vision_config.out_hidden_size: the merger's out_hidden_size 32 differs from the text "
       "hidden_size 64"},
      {"image-token-conflict", edit(llava, [](json& j) { j["image_token_id"] = 7; }),
       "image_token_index: 500 disagrees with image_token_id 7"},
      {"bool-as-int", edit(qwen, [](json& j) { j["vision_config"]["depth"] = true; }),
       "vision_config.depth: expected an integer, got boolean true"},
  };
  REQUIRE(cases.size() >= 12);
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const fs::path case_dir = dir / c.name;
      fs::create_directories(case_dir);
      const fs::path file = case_dir / "config.json";
      write_text(file, c.text());
      REQUIRE_THROWS_AS(load_model_config(case_dir), mlab::Error);
      REQUIRE_THROWS_WITH(load_model_config(case_dir),
                          StartsWith(file.string() + ": ") && Contains(c.problem));
    }
  }
  SECTION("a missing file and a directory without config.json") {
    REQUIRE_THROWS_WITH(load_model_config(dir / "absent.json"),
                        StartsWith((dir / "absent.json").string()) && Contains("no such file"));
    REQUIRE_THROWS_WITH(load_model_config(dir),
                        StartsWith((dir / "config.json").string()) && Contains("cannot open"));
  }
  SECTION("parse_model_config names its source") {
    REQUIRE_THROWS_WITH(parse_model_config(json{{"model_type", 3}}, "<inline>"),
                        StartsWith("<inline>: model_type: expected a string, got number 3"));
  }
}
