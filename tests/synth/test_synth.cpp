// `mla-bench synth` (issue F9, docs/synth.md): determinism, the interchange format (DatasetReader,
// check-dataset), gold answers scoring 1.0 through the project's scorer, a constant guess and
// the blind oracle (majority answer per distinct prompt text) at the recorded chance, train and
// eval sharing no image, train.jsonl through training::read_train_data, and bad arguments.
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "datasets/dataset_reader.hpp"
#include "datasets/task_config.hpp"
#include "datasets/task_prompt.hpp"
#include "evaluators/task_scoring.hpp"
#include "synth/bitmap_font.hpp"
#include "synth/picture.hpp"
#include "synth/png_writer.hpp"
#include "synth/synth_suite.hpp"
#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"
#include "tests/support/test_files.hpp"
#include "training/train_data.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

const std::vector<std::string> kTasks = {
    "ai2d", "gqa", "pope", "seedbench", "realworldqa", "mmbench_en_dev", "chartqa", "docvqa_val"};

fs::path configs_dir() { return fs::path(MLAB_SOURCE_DIR_FOR_TESTS) / "configs" / "tasks"; }

mlab::test::BinaryResult synth(const std::string& args) {
  return mlab::test::run_mla_bench("synth --quiet " + args);
}

// relative path -> bytes of every file under `root`.
std::map<std::string, std::string> tree_bytes(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      files[fs::relative(e.path(), root).string()] = mlab::test::read_file(e.path());
    }
  }
  return files;
}

// What the gold answer looks like as a model output (the train records' gpt turn).
std::string gold(const std::string& task, const json& doc) {
  if (task == "ai2d")
    return std::string(1, static_cast<char>('A' + std::stoi(doc.at("answer").get<std::string>())));
  if (task == "docvqa_val") return doc.at("answers").at(0).get<std::string>();
  return doc.at("answer").get<std::string>();
}

// The task's headline score of `predictions` on `docs`, as a fraction (MMBench's x100 undone).
double headline(const std::string& task, const std::vector<json>& docs,
                const std::vector<std::string>& predictions) {
  std::vector<json> scored;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    scored.push_back(mlab::evaluators::score_sample(task, predictions[i], docs[i]));
  }
  const json agg = mlab::evaluators::aggregate_scores(task, scored);
  const auto config = mlab::datasets::TaskConfig::load(configs_dir(), task);
  const std::string metric = config.headline.substr(0, config.headline.find(','));
  const double v = agg.at(metric).get<double>();
  return task == "mmbench_en_dev" ? v / 100.0 : v;
}

}  // namespace

TEST_CASE("synth: font, pictures and the PNG writer", "[synth]") {
  for (char c : std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :.-?/%()")) {
    CHECK(mlab::synth::font_covers(std::string(1, c)));
  }
  CHECK_FALSE(mlab::synth::font_covers("a~"));
  CHECK_THROWS_WITH(mlab::synth::glyph('~'), Contains("no glyph"));
  mlab::synth::Picture p;
  p.size = 112;
  p.shapes.push_back({mlab::synth::ShapeKind::kCircle, 30, 30, 14, {220, 30, 30}});
  p.texts.push_back({"A7", 60, 60, 2, {0, 0, 0}});
  const auto img = mlab::synth::render_picture(p);
  // The glyph is 14 px tall at scale 2 (>= 12 px at the default 112 px image).
  int top = 1000, bottom = -1;
  for (int y = 0; y < 112; ++y) {
    for (int x = 60; x < 112; ++x) {
      if (img.rgb[(y * 112 + x) * 3] == 0) top = std::min(top, y), bottom = std::max(bottom, y);
    }
  }
  CHECK(bottom - top + 1 == 14);
  CHECK(img.rgb[(30 * 112 + 30) * 3] == 220);  // the circle's centre
  const fs::path dir = mlab::test::scratch_dir("synth_png");
  mlab::synth::write_png(dir / "a.png", img);
  mlab::synth::write_png(dir / "b.png", img);
  const auto back = mlab::datasets::decode_image(dir / "a.png");  // libpng decode, Pillow-exact
  CHECK(back.width == 112);
  CHECK(back.rgb == img.rgb);
  CHECK(mlab::test::read_file(dir / "a.png") == mlab::test::read_file(dir / "b.png"));
  CHECK_THROWS_WITH(mlab::synth::write_png(dir / "missing" / "c.png", img),
                    Contains("cannot open for writing"));
}

TEST_CASE("synth: --help and bad arguments exit 2 with a message", "[synth]") {
  const auto help = mlab::test::run_mla_bench("synth --help");
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Contains("--train-n") && Contains("--image-size") && Contains("--tasks"));
  const fs::path dir = mlab::test::scratch_dir("synth_bad");
  const auto n0 = synth("--out " + (dir / "s").string() + " --n 0");
  CHECK(n0.code == 2);
  CHECK_THAT(n0.err, Contains("--n must be >= 1"));
  CHECK_FALSE(fs::exists(dir / "s"));
  { std::ofstream(dir / "file.txt") << "x"; }
  const auto onto_file = synth("--out " + (dir / "file.txt").string());
  CHECK(onto_file.code == 2);
  CHECK_THAT(onto_file.err, Contains("is not a directory"));
  fs::create_directories(dir / "foreign");
  { std::ofstream(dir / "foreign" / "keep.txt") << "x"; }
  const auto foreign = synth("--out " + (dir / "foreign").string());
  CHECK(foreign.code == 2);
  CHECK_THAT(foreign.err, Contains("without synth.json"));
  CHECK(mlab::test::read_file(dir / "foreign" / "keep.txt") == "x");
  const auto task = synth("--out " + (dir / "t").string() + " --tasks ai2d,popee");
  CHECK(task.code == 2);
  CHECK_THAT(task.err, Contains("pope"));
  const auto size = synth("--out " + (dir / "t").string() + " --image-size 20");
  CHECK(size.code == 2);
  CHECK_THAT(size.err, Contains("--image-size"));
  const auto train = synth("--out " + (dir / "t").string() + " --train-n -3");
  CHECK(train.code == 2);
  const auto seed = synth("--out " + (dir / "t").string() + " --seed -1");
  CHECK(seed.code == 2);
  CHECK_THAT(seed.err, Contains("must be >= 0"));
  CHECK_FALSE(fs::exists(dir / "t"));
}

TEST_CASE("synth: identical bytes for identical arguments, other bytes for another seed",
          "[synth]") {
  const fs::path dir = mlab::test::scratch_dir("synth_det");
  const std::string args = " --n 6 --train-n 5 --seed 7";
  REQUIRE(synth("--out " + (dir / "a").string() + args).code == 0);
  REQUIRE(synth("--out " + (dir / "b").string() + args).code == 0);
  REQUIRE(synth("--out " + (dir / "c").string() + " --n 6 --train-n 5 --seed 8").code == 0);
  const auto a = tree_bytes(dir / "a"), b = tree_bytes(dir / "b"), c = tree_bytes(dir / "c");
  CHECK(a.size() > 100);
  CHECK(a == b);
  // A rerun into the same dir replaces the suite with the same bytes.
  REQUIRE(synth("--out " + (dir / "a").string() + args).code == 0);
  CHECK(tree_bytes(dir / "a") == b);
  CHECK(a.at("synth.json") != c.at("synth.json"));
  int same_images = 0, images = 0;
  for (const auto& [path, bytes] : a) {
    if (path.find(".png") == std::string::npos || !c.count(path)) continue;
    ++images;
    same_images += c.at(path) == bytes;
  }
  CHECK(images > 50);
  CHECK(same_images == 0);
  const json manifest = json::parse(a.at("synth.json"));
  CHECK(manifest.at("format") == "mla-bench-synth");
  CHECK(manifest.at("seed") == 7);
  CHECK(manifest.at("tasks").size() == 8);
  CHECK(manifest.at("tasks").at("pope").at("samples") == 18);            // 6 per category
  CHECK(manifest.at("tasks").at("mmbench_en_dev").at("samples") == 24);  // 4 circular copies
}

TEST_CASE("synth: every task dir reads, passes check-dataset, and its gold answers score 1.0",
          "[synth]") {
  const fs::path dir = mlab::test::scratch_dir("synth_read");
  REQUIRE(synth("--out " + dir.string() + " --n 12 --seed 3").code == 0);
  for (const std::string& task : kTasks) {
    INFO(task);
    const auto samples = mlab::datasets::read_dataset(dir / task, task, {.decode_images = true});
    const json dataset = mlab::test::read_json(dir / task / "dataset.json");
    const json& source = dataset.at("source");
    CHECK(source.at("generator") == "mla-bench synth");
    CHECK(source.at("version") == 1);
    CHECK(source.at("seed") == 3);
    CHECK(source.size() == 4);
    REQUIRE(samples.size() == dataset.at("samples").get<std::size_t>());
    std::vector<json> docs;
    std::vector<std::string> golds;
    for (const auto& s : samples) {
      REQUIRE_FALSE(s.failed());
      for (const auto& px : s.pixels) CHECK((px.width == 112 && px.height == 112));
      docs.push_back(s.doc);
      golds.push_back(gold(task, s.doc));
    }
    CHECK(headline(task, docs, golds) == 1.0);
    const auto check = mlab::test::run_mla_bench("check-dataset --decode-images --json --task " +
                                                 task + " --dataset " + (dir / task).string());
    REQUIRE(check.code == 0);
    CHECK(json::parse(check.out).at("failed") == 0);
  }
  // SEED's video docs carry 4 frames; MMBench's copies share their question's image.
  const auto seed = mlab::datasets::read_dataset(dir / "seedbench", "seedbench");
  int videos = 0;
  for (const auto& s : seed) videos += s.category == "video" && s.images.size() == 4;
  CHECK(videos >= 2);
  const auto mmb = mlab::datasets::read_dataset(dir / "mmbench_en_dev", "mmbench_en_dev");
  REQUIRE(mmb.size() == 48);
  CHECK(mmb[1].circular_copy == 1);
  CHECK(mmb[1].images == mmb[0].images);
}

TEST_CASE("synth: a blind guesser scores chance (constant guess, majority per prompt)", "[synth]") {
  // 2000 per task, docs only (pictures described, not drawn).
  for (const auto& g : mlab::synth::task_generators()) {
    const std::string task(g.task);
    INFO(task);
    const auto config = mlab::datasets::TaskConfig::load(configs_dir(), task);
    const auto samples = mlab::synth::generate_eval_samples(g, 11, 2000, 112);
    std::vector<json> docs;
    std::vector<std::string> prompts, golds;
    std::map<std::string, std::map<std::string, int>> votes;  // prompt -> answer -> count
    for (const auto& s : samples) {
      docs.push_back(s.doc);
      golds.push_back(gold(task, s.doc));
      CHECK(golds.back() == s.answer);
      prompts.push_back(mlab::datasets::render_prompt(config, s.doc, "llava"));
      // Every family renders the same prompt (the train records use llava's).
      for (const char* f : {"llava_next", "qwen2_5_vl"}) {
        CHECK(mlab::datasets::render_prompt(config, s.doc, f) == prompts.back());
      }
      ++votes[prompts.back()][golds.back()];
    }
    std::vector<std::string> oracle;
    for (const auto& p : prompts) {
      const auto& v = votes.at(p);
      auto best = v.begin();
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it->second > best->second) best = it;
      }
      oracle.push_back(best->first);
    }
    const double blind = headline(task, docs, oracle);
    const std::map<std::string, std::string> constant = {
        {"ai2d", "A"},      {"gqa", "red"},       {"pope", "yes"},
        {"seedbench", "A"}, {"realworldqa", "A"}, {"mmbench_en_dev", "circle"},
        {"chartqa", "A"},   {"docvqa_val", "BOB"}};
    const double guess =
        headline(task, docs, std::vector<std::string>(docs.size(), constant.at(task)));
    std::printf(
        "synth blind bound %-15s chance %.4f  majority-per-prompt %.4f  constant '%s' %.4f"
        "  (%zu prompts)\n",
        task.c_str(), g.chance, blind, constant.at(task).c_str(), guess, votes.size());
    CHECK(headline(task, docs, golds) == 1.0);
    CHECK(blind <= g.chance + 0.02);
    CHECK(guess <= g.chance + 0.02);
    // Where one answer is the best blind policy, the constant guess reaches chance.
    if (task == "ai2d" || task == "pope" || task == "seedbench" || task == "realworldqa" ||
        task == "mmbench_en_dev") {
      CHECK(std::abs(guess - g.chance) <= 0.02);
    } else {
      CHECK(std::abs(blind - g.chance) <= 0.02);
    }
  }
}

TEST_CASE("synth: train.jsonl reads with read_train_data, prompts as eval, no eval image reused",
          "[synth]") {
  const fs::path dir = mlab::test::scratch_dir("synth_train");
  REQUIRE(synth("--out " + dir.string() + " --n 10 --train-n 12 --seed 5").code == 0);
  const auto data = mlab::training::read_train_data(dir / "train" / "train.jsonl", {});
  CHECK(data.skipped.empty());
  REQUIRE(data.records.size() == 8 * 12);
  std::set<std::int64_t> video_records;
  for (const auto& r : data.records) {
    REQUIRE(r.turns.size() == 2);
    CHECK(r.turns[1].role == "assistant");
    CHECK_FALSE(r.turns[1].text.empty());
    if (r.images.size() == 4) video_records.insert(1);
  }
  CHECK(!video_records.empty());  // SEED's 4-frame records
  // The human turn is "<image>\n" per image, then the prompt eval renders for that task.
  std::ifstream in(dir / "train" / "train.jsonl");
  std::string line;
  std::getline(in, line);
  const json first = json::parse(line);
  CHECK(first.at("id") == "ai2d-0");
  const std::string human = first.at("conversations").at(0).at("value");
  CHECK(human.rfind("<image>\n", 0) == 0);
  CHECK_THAT(human, Contains("Answer with the option's letter from the given choices directly."));

  // Small images and many simple gqa scenes make equal pictures likely: they are redrawn.
  const fs::path small = mlab::test::scratch_dir("synth_disjoint");
  const auto r = mlab::test::run_mla_bench("synth --quiet --out " + small.string() +
                                           " --tasks gqa --n 200 --train-n 3000 --image-size 56");
  REQUIRE(r.code == 0);
  std::unordered_set<std::uint64_t> eval;
  for (const auto& e : fs::directory_iterator(small / "gqa" / "images")) {
    eval.insert(mlab::synth::image_hash(mlab::datasets::decode_image(e.path())));
  }
  int shared = 0, train_images = 0;
  for (const auto& e : fs::directory_iterator(small / "train" / "images" / "gqa")) {
    ++train_images;
    shared += eval.count(mlab::synth::image_hash(mlab::datasets::decode_image(e.path())));
  }
  CHECK(train_images == 3000);
  CHECK(shared == 0);
  std::printf("synth disjoint: %s", r.out.substr(r.out.find("images:")).c_str());
}
