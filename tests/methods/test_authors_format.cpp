// F14: the MHA2MLA-VLM authors' checkpoints in our runtime and ours in theirs. The fixtures under
// tests/data/authors come from their own code run unmodified (tools/fixtures/authors/
// make_authors_fixtures.py: train_stage1.py for each partial_rope_version, run_svd_init.py,
// train_stage2.py, and the loading sequence of their lmms-eval llava_hf.py under transformers
// 4.51): the dirs as they wrote them, their prefill logits, their MD-SVD factors, and the
// calibration samples as their template encoded them.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "methods/mha2mla/mha2mla_converter.hpp"
#include "models/io/checkpoint.hpp"
#include "models/runtime/mha2mla_block.hpp"
#include "models/runtime/mla_attention.hpp"
#include "models/runtime/vlm.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/vlm/vlm_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using mlab::models::Checkpoint;
using mlab::models::Vlm;
using mlab::models::VlmInputs;
using mlab::test::rel_diff;
using mlab::test::report;

fs::path authors() { return mlab::test::data_dir() / "authors"; }

nlohmann::json summary() {
  std::ifstream in(authors() / "summary.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

at::Tensor prefill_logits(const Vlm& vlm, const VlmInputs& in) {
  mlab::models::PrefillOptions po;
  po.all_logits = true;
  return vlm.prefill(in, po).logits;
}

// The calibration samples of `family` as their swift template encoded them (batch 1 each).
std::vector<VlmInputs> calibration(const std::string& family) {
  const Checkpoint ck = Checkpoint::open(authors() / family / "calib.safetensors");
  std::vector<VlmInputs> out;
  for (int i = 0; ck.contains(std::to_string(i) + ".input_ids"); ++i) {
    const std::string p = std::to_string(i) + ".";
    VlmInputs in;
    in.input_ids = ck.get(p + "input_ids").clone();
    in.attention_mask = at::ones_like(in.input_ids);
    in.pixel_values = ck.get(p + "pixel_values").clone();
    if (ck.contains(p + "image_sizes")) in.image_sizes = ck.get(p + "image_sizes").clone();
    out.push_back(std::move(in));
  }
  REQUIRE(out.size() == 24);
  return out;
}

}  // namespace

TEST_CASE("authors' checkpoints: every stage-1 and stage-2 dir loads as written and matches "
          "their logits",
          "[mha2mla][authors]") {
  const auto s = summary();
  REQUIRE(s["transformers"] == "4.51.0");
  int checked = 0;
  for (const auto& d : s["dirs"]) {
    const std::string family = d["family"], name = d["name"];
    INFO(family << "/" << name);
    const fs::path dir = authors() / family / name;
    // Their blocks carry no stage and no kept frequencies: both are derived.
    const auto raw = mlab::models::load_model_config(dir).raw["mha2mla"];
    CHECK_FALSE(raw.contains("stage"));
    CHECK_FALSE(raw.contains("mlab_kept_frequencies"));
    const Vlm vlm = Vlm::load(dir);
    const auto mla = mlab::models::MlaConfig::from_model_config(vlm.config());
    REQUIRE(mla.has_value());
    CHECK(mla->stage == d["stage"].get<int>());
    CHECK(mla->strategy == d["partial_rope_version"].get<std::string>());
    if (mla->stage == 2) CHECK(mla->svd_init == (name == "stage2_md" ? "md" : "weight"));
    const Checkpoint ref = Checkpoint::open(authors() / family / (name + ".logits.safetensors"));
    const double diff = rel_diff(prefill_logits(vlm, mlab::test::inputs_of(ref)), ref.get("logits"));
    report(family + "/" + name + " ours vs theirs (4.51) logits", diff);
    CHECK(diff <= 1e-5);
    ++checked;
  }
  CHECK(checked == static_cast<int>(s["dirs"].size()));
  CHECK(checked >= 12);  // LLaVA: 4 stage-1 + 2 stage-2; LLaVA-NeXT: 2 + 2; Qwen2.5-VL: 2 stage-1
}

TEST_CASE("authors' checkpoints: keep-sets derived from each partial_rope_version",
          "[mha2mla][authors]") {
  const auto t = Vlm::load(authors() / "llava" / "stage1_high").config().text;
  REQUIRE(t.head_dim == 16);
  auto kept = [&](const nlohmann::json& block) {
    return mlab::models::authors_kept_frequencies(block, t, authors() / "llava", {})[1][0];
  };
  using V = std::vector<int64_t>;
  CHECK(kept({{"partial_rope_version", "high"}, {"rope_dim_for_mla", 8}}) == V{0, 1, 2, 3});
  CHECK(kept({{"partial_rope_version", "low"}, {"rope_dim_for_mla", 8}}) == V{4, 5, 6, 7});
  // Their uniform mask: dims s, s + D // r, ... of the whole head (patch_func.py).
  CHECK(kept({{"partial_rope_version", "uniform"}, {"rope_dim_for_mla", 8},
              {"uniform_start_point", 1}}) == V{1, 3, 5, 7});
  CHECK(kept({{"partial_rope_version", "uniform"}, {"rope_dim_for_mla", 4},
              {"uniform_start_point", 2}}) == V{2, 6});
  CHECK_THROWS_WITH(kept({{"partial_rope_version", "uniform"}, {"rope_dim_for_mla", 8},
                          {"uniform_start_point", 2}}),
                    Catch::Contains("uniform_start_point 2"));
  // mkl: their rank file, found by name in the model dir when the written path is gone.
  const at::Tensor ranks = mlab::models::read_rank_tensor(authors() / "llava" / "ranks.pth");
  const nlohmann::json mkl = {{"partial_rope_version", "mkl"},
                              {"rope_dim_for_mla", 8},
                              {"qk_tensor_path", "/nowhere/ranks.pth"}};
  const V got = kept(mkl);
  for (int64_t f = 0; f < 8; ++f) {
    const bool in_set = std::find(got.begin(), got.end(), f) != got.end();
    CHECK(in_set == (ranks[1][0][f].item<int64_t>() < 4));
  }
  CHECK_THROWS_WITH(mlab::models::authors_kept_frequencies(mkl, t, authors(), {}),
                    Catch::Contains("no such rank file"));
  CHECK_THROWS_WITH(kept({{"partial_rope_version", "mkl"}, {"rope_dim_for_mla", 8}}),
                    Catch::Contains("qk_tensor_path"));
  CHECK_THROWS_WITH(kept({{"partial_rope_version", "fourier"}, {"rope_dim_for_mla", 8}}),
                    Catch::Contains("fourier"));
  CHECK_THROWS_WITH(kept({{"partial_rope_version", "high"},
                          {"rope_dim_for_mla", 8},
                          {"is_gqa2mha2mla", true}}),
                    Catch::Contains("is_gqa2mha2mla"));
  // The released rank files resolve by name to configs/mha2mla/ranks (real model shapes).
  mlab::models::TextConfig next = t;
  next.num_hidden_layers = 32;
  next.num_key_value_heads = 8;
  next.head_dim = 128;
  const auto real = mlab::models::authors_kept_frequencies(
      {{"partial_rope_version", "mkl"},
       {"rope_dim_for_mla", 32},
       {"qk_tensor_path", "mkl/llavanext/llavanext-ranks.pth"}},
      next, authors(), {mlab::test::data_dir().parent_path().parent_path() / "configs" / "mha2mla" / "ranks"});
  CHECK(real.size() == 32);
  CHECK(real[0][0].size() == 16);
  // Stage: their stage-1 blocks say svd_init_method "none", low_rank 0.
  CHECK(mlab::models::authors_stage({{"svd_init_method", "none"}, {"low_rank", 0}}) == 1);
  CHECK(mlab::models::authors_stage({{"svd_init_method", "joint"}, {"low_rank", 64}}) == 2);
}

TEST_CASE("MD-SVD factors equal those of the authors' run_svd_init.py, their S normalisation "
          "included",
          "[mha2mla][authors]") {
  for (const std::string family : {"llava", "llava_next"}) {
    INFO(family);
    Vlm vlm = Vlm::load(authors() / family / "stage1_mkl");
    const auto calib = calibration(family);
    mlab::methods::ConvertOptions o;
    o.stage = 2;
    o.d_kv = 8;  // their --low_rank 8
    o.svd = "md";
    const auto rep = mlab::methods::convert_to_mla_with_inputs(vlm, o, calib);
    CHECK(rep.calibration_samples == 24);
    const Checkpoint theirs = Checkpoint::open(authors() / family / "svd_init.safetensors");
    double worst = 0;
    auto& layers = vlm.decoder().layers();
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const auto& m = dynamic_cast<const mlab::models::MlaAttention&>(*layers[l].attention);
      for (const std::string mod : {"img", "text"}) {
        const auto& b = mod == "img" ? m.image : m.text;
        const std::string k = "." + std::to_string(l);
        const at::Tensor down = theirs.get("W_down_" + mod + k).to(at::kDouble);
        const at::Tensor up = at::cat({theirs.get("W_up_k_" + mod + k), theirs.get("W_up_v_" + mod + k)})
                                  .to(at::kDouble);
        const at::Tensor our_up = at::cat({b.up_k, b.up_v}).to(at::kDouble);
        const at::Tensor our_down = b.down->to(at::kDouble);
        // Column signs of an SVD are arbitrary: align ours to theirs per latent dim.
        const at::Tensor sign = (our_up * up).sum(0).sign();
        const double du = rel_diff(our_up * sign, up), dd = rel_diff(our_down * sign.unsqueeze(1), down);
        worst = std::max({worst, du, dd});
        // Theirs runs in f32: SVDs of S and of D, then down through inv(diag(sqrt(s))) and
        // inv(U_s), which amplifies rounding by S's condition (the tiny LLaVA's 4 image tokens a
        // sample make S_image ill-conditioned); ours is f64 without inverses (md_svd.hpp).
        CHECK(du <= 1e-4);
        CHECK(dd <= 5e-4);
      }
    }
    report(family + " MD-SVD factors ours vs run_svd_init.py (max rel)", worst);
    // Written (a stage-1 source: its k_r_proj / kv_proj are replaced) and read back.
    const auto in = calib.front();
    const at::Tensor before = prefill_logits(vlm, in);
    const fs::path out = mlab::test::scratch_dir("authors_md_" + family);
    mlab::methods::save_converted(vlm, rep, out);
    CHECK(rel_diff(prefill_logits(Vlm::load(out), in), before) <= 1e-6);
  }
}

namespace {

struct OursCase {
  std::string name;
  int stage;
  std::string strategy;
  std::string svd;
};

// Our conversions of the tiny fixtures that their loader must read (the generator exports them
// with MLAB_AUTHORS_EXPORT=DIR and stores their logits as ours_<name>.logits.safetensors).
const std::vector<OursCase>& ours_cases() {
  static const std::vector<OursCase> c = {{"s1_uniform", 1, "uniform", "md"},
                                          {"s1_2norm", 1, "2norm", "md"},
                                          {"s2_md", 2, "2norm", "md"},
                                          {"s2_activation", 2, "high", "activation"},
                                          {"s2_weight", 2, "low", "weight"}};
  return c;
}

}  // namespace

TEST_CASE("ours in their format: their loader's files and block, and their logits",
          "[mha2mla][authors]") {
  const char* exported = std::getenv("MLAB_AUTHORS_EXPORT");
  const fs::path base = exported ? fs::path(exported) : mlab::test::scratch_dir("authors_ours");
  int compared = 0;
  for (const std::string family : {"llava", "llava_next"}) {
    const auto calib = calibration(family);
    const Checkpoint inputs = Checkpoint::open(authors() / family / "stage1_high.logits.safetensors");
    for (const auto& c : ours_cases()) {
      INFO(family << " " << c.name);
      Vlm vlm = Vlm::load(mlab::test::tiny_vlm_dir() / (family + "-hub"));
      mlab::methods::ConvertOptions o;
      o.stage = c.stage;
      o.strategy = c.strategy;
      o.rope_dim = 8;
      o.uniform_start = 1;
      o.d_kv = 8;
      o.svd = c.svd;
      const auto rep = mlab::methods::convert_to_mla_with_inputs(vlm, o, calib);
      const fs::path out = base / family / c.name;
      mlab::methods::save_converted(vlm, rep, out);
      const at::Tensor ours = prefill_logits(vlm, mlab::test::inputs_of(inputs));

      // The block their arguments.py defines, with values their code accepts.
      const auto block = mlab::models::load_model_config(out).raw["mha2mla"];
      for (const char* key : {"partial_rope_version", "rope_dim_for_mla", "uniform_start_point",
                              "qk_tensor_path", "svd_init_method", "low_rank", "is_gqa2mha2mla",
                              "peft_train", "svd_init_weight_path"}) {
        CHECK(block.contains(key));
      }
      const std::string version = block["partial_rope_version"];
      CHECK((version == "high" || version == "low" || version == "uniform" || version == "mkl"));
      CHECK(block["mlab_partial_rope"] == c.strategy);
      if (version == "mkl") {
        const fs::path ranks = block["qk_tensor_path"].get<std::string>();
        CHECK(ranks.is_absolute());
        const auto again = mlab::models::authors_kept_frequencies(block, vlm.config().text, out, {});
        CHECK(again == rep.mla.kept_frequencies);
      }
      if (c.stage == 1) {
        CHECK(block["svd_init_method"] == "none");
        CHECK_FALSE(block.contains("stage1_path"));  // their llava_hf.py would open it
      } else {
        CHECK(block["svd_init_method"] == "joint");
        CHECK(block["low_rank"] == 8);
        CHECK(block["svd_init_weight_path"].is_null());
        const fs::path s1 = block["stage1_path"].get<std::string>();
        const auto s1_block = mlab::models::load_model_config(s1).raw["mha2mla"];
        CHECK(s1_block["svd_init_method"] == "none");
        CHECK(s1_block["partial_rope_version"] == version);
      }
      // Ours reads it back as written.
      const Vlm reloaded = Vlm::load(out);
      CHECK(rel_diff(prefill_logits(reloaded, mlab::test::inputs_of(inputs)), ours) <= 1e-6);
      // Their loader (transformers 4.51, lmms-eval llava_hf.py's sequence) on the same
      // conversion, when the generator has run it.
      const fs::path theirs = authors() / family / ("ours_" + c.name + ".logits.safetensors");
      if (exported == nullptr && fs::exists(theirs)) {
        const double d = rel_diff(ours, Checkpoint::open(theirs).get("logits"));
        report(family + " ours " + c.name + " in their loader vs ours", d);
        CHECK(d <= 1e-5);
        ++compared;
      }
    }
  }
  if (exported == nullptr) CHECK(compared == 10);
}

TEST_CASE("authors' checkpoints through the CLI: generate and eval run their dirs as written and "
          "--format mlab and the old --svd joint stay readable",
          "[mha2mla][authors]") {
  const std::string dir = (authors() / "llava_next" / "stage2_md").string();
  const auto gen = mlab::test::run_mla_bench("generate --model " + dir + " --image " +
                                             (mlab::test::data_dir() / "images" / "tall.png").string() +
                                             " --prompt 'What is shown?' --max-new-tokens 3 --json");
  INFO(gen.err);
  CHECK(gen.code == 0);
  const fs::path db = mlab::test::scratch_dir("authors_eval") / "results.sqlite";
  fs::remove(db);
  const auto ev = mlab::test::run_mla_bench(
      "eval --model " + dir + " --tasks pope --datasets " +
      (mlab::test::data_dir() / "datasets").string() + " --limit 2 --db " + db.string());
  INFO(ev.err);
  CHECK(ev.code == 0);
  CHECK(ev.out.find("2 new") != std::string::npos);

  // Our old dialect (--format mlab) and the old spelling of --svd activation.
  const fs::path out = mlab::test::scratch_dir("authors_mlab_format") / "out";
  fs::remove_all(out);
  const auto conv = mlab::test::run_mla_bench(
      "convert --model " + (mlab::test::tiny_vlm_dir() / "llava").string() + " --out " +
      out.string() + " --rope high --rope-dims 8 --d-kv 8 --svd joint --format mlab --calib " +
      (mlab::test::data_dir() / "datasets" / "pope").string() + " --calib-samples 3");
  INFO(conv.err);
  REQUIRE(conv.code == 0);
  CHECK(conv.err.find("now called 'activation'") != std::string::npos);
  const auto block = mlab::models::load_model_config(out).raw["mha2mla"];
  CHECK(block["svd_init_method"] == "activation");
  CHECK_FALSE(block.contains("stage1_path"));
  const Vlm vlm = Vlm::load(out);
  CHECK(mlab::models::MlaConfig::from_model_config(vlm.config())->svd_init == "activation");
  CHECK(mlab::test::run_mla_bench("convert --model x --out y --format hf").code == 2);
}
