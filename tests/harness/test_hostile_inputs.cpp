// Hostile inputs through the binary (issue F11): D1, JSON nested ~60k deep used to overflow the
// stack (SIGSEGV, rc 139) in inspect/memory/check-dataset; D10, `memory --tokens INT64_MAX` used to
// print negative bytes with exit 0.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/catch_torch.hpp"
#include "tests/support/run_binary.hpp"

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// The reproduction: {"model_type":"llava","x":[[[...60000...]]]}, 120 KB.
std::string deep_json(const std::string& head, int depth) {
  return "{" + head + "\"x\":" + std::string(depth, '[') + std::string(depth, ']') + "}\n";
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

fs::path llava_config() {
  return mlab::test::data_dir().parent_path().parent_path() / "configs" / "models" /
         "llava-1.5-7b-hf.json";
}

}  // namespace

TEST_CASE("F11 D1: a config.json nested 60000 deep is refused, not a stack overflow",
          "[harness][hostile]") {
  const fs::path dir = mlab::test::scratch_dir("hostile_deep_config");
  const fs::path config = dir / "c.json";
  write(config, deep_json("\"model_type\":\"llava\",", 60000));
  for (const std::string command : {"inspect " + config.string(),
                                    "memory --method mha2mla:d_kv=128 --tokens 10 --config " +
                                        config.string()}) {
    INFO(command);
    const auto r = mlab::test::run_mla_bench(command);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(config.string() + ": JSON nested deeper than 512 levels"));
  }
  // 512 levels are still read (the cap is inclusive), brackets inside strings do not count.
  const fs::path ok = dir / "ok.json";
  write(ok, deep_json("\"model_type\":\"llava\",\"s\":\"" + std::string(1000, '[') + "\\\"\",", 511));
  const auto r = mlab::test::run_mla_bench("inspect " + ok.string());
  CHECK_THAT(r.err, !Contains("nested deeper"));
}

TEST_CASE("F11 D1: a dataset.json or samples.jsonl line nested 60000 deep is refused",
          "[harness][hostile]") {
  const fs::path dir = mlab::test::scratch_dir("hostile_deep_dataset");
  write(dir / "dataset.json",
        deep_json("\"format\":\"mla-bench-dataset\",\"version\":1,\"task\":\"pope\",", 60000));
  write(dir / "samples.jsonl", "{}\n");
  const auto r = mlab::test::run_mla_bench("check-dataset --task pope --dataset " + dir.string());
  CHECK(r.code == 1);
  CHECK_THAT(r.err,
             Contains((dir / "dataset.json").string() + ": JSON nested deeper than 512 levels"));

  // A good dataset.json, then a deep samples.jsonl line 2: the error names file:line.
  const fs::path good = mlab::test::data_dir() / "datasets" / "pope";
  fs::copy(good, dir, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ifstream in(good / "samples.jsonl");
  std::string first;
  std::getline(in, first);
  write(dir / "samples.jsonl", first + "\n" + deep_json("", 60000));
  const auto line = mlab::test::run_mla_bench("check-dataset --task pope --dataset " + dir.string());
  CHECK(line.code == 1);
  CHECK_THAT(line.err, Contains((dir / "samples.jsonl").string() +
                                ":2: JSON nested deeper than 512 levels"));
}

TEST_CASE("F11 D10: memory --tokens beyond 2^53 is refused, never negative bytes",
          "[harness][hostile]") {
  const std::string config = llava_config().string();
  for (const char* tokens : {"9223372036854775807", "9007199254740993"}) {
    INFO(tokens);
    const auto r = mlab::test::run_mla_bench(std::string("memory --method 'mha2mla:d_kv=128+quanto:bits=4' --tokens ") + tokens +
                                             " --config " + config);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("--tokens") && Contains("limit 2^53 = 9007199254740992"));
    CHECK_THAT(r.out, !Contains("-"));
  }
  // At the limit the figures are positive (and a pruned stack's kept count fits).
  const auto at = mlab::test::run_mla_bench("memory --json --method 'mha2mla:d_kv=128+quanto:bits=4' --tokens 9007199254740992 --config " +
                                            config);
  REQUIRE(at.code == 0);
  const auto report = nlohmann::json::parse(at.out);
  CHECK(report.at("kept_tokens").get<int64_t>() == (int64_t{1} << 53));
  for (const auto& [name, bytes] : report.at("total").items()) {
    INFO(name);
    CHECK(bytes.get<double>() > 0);
  }
  CHECK(report.at("change").at("nominal_vs_original").get<double>() == -0.84375);
}

TEST_CASE("F11 D2: an image symlink (a file, or images/ itself) resolving outside the dataset dir is refused",
          "[harness][hostile][f11]") {
  const fs::path good = mlab::test::data_dir() / "datasets" / "pope";
  const fs::path base = mlab::test::scratch_dir("hostile_symlink");
  const fs::path outside = base / "outside";
  fs::create_directories(outside);
  fs::copy_file(good / "images" / "0.png", outside / "0.png", fs::copy_options::overwrite_existing);
  const auto fresh = [&](const std::string& name) {
    const fs::path dir = base / name;
    fs::remove_all(dir);
    fs::copy(good, dir, fs::copy_options::recursive);
    return dir;
  };
  const auto check = [](const fs::path& dir) {
    return mlab::test::run_mla_bench("check-dataset --task pope --dataset " + dir.string());
  };

  // One image file is a symlink to a file outside the root.
  const fs::path file_link = fresh("file_link");
  fs::remove(file_link / "images" / "0.png");
  fs::create_symlink(outside / "0.png", file_link / "images" / "0.png");
  const auto r1 = check(file_link);
  CHECK(r1.code == 1);
  CHECK_THAT(r1.err, Contains((file_link / "samples.jsonl").string() + ":1") &&
                         Contains("images/0.png") &&
                         Contains("resolves outside the dataset dir"));

  // images/ itself is a symlink to an outside dir.
  const fs::path dir_link = fresh("dir_link");
  fs::copy(good / "images", outside, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove_all(dir_link / "images");
  fs::create_directory_symlink(outside, dir_link / "images");
  const auto r2 = check(dir_link);
  CHECK(r2.code == 1);
  CHECK_THAT(r2.err, Contains((dir_link / "samples.jsonl").string() + ":1") &&
                         Contains("resolves outside the dataset dir"));

  // A symlink that stays inside the root (relative, to another file in the dir) is still read.
  const fs::path inside = fresh("inside_link");
  fs::copy_file(inside / "images" / "0.png", inside / "real0.png");
  fs::remove(inside / "images" / "0.png");
  fs::create_symlink(fs::path("..") / "real0.png", inside / "images" / "0.png");
  const auto r3 = check(inside);
  CHECK(r3.code == 0);
  CHECK_THAT(r3.err, !Contains("resolves outside"));
}

TEST_CASE("F11 D4: a prompt past max_position_embeddings is refused by generate", "[harness][hostile][f11]") {
  // tests/data/tiny_vlms/llava: text.max_position_embeddings 512. ~1500 words tokenize to far more.
  const auto model = (mlab::test::data_dir() / "tiny_vlms" / "llava").string();
  std::string words;
  for (int i = 0; i < 1500; ++i) words += "word ";
  const auto r = mlab::test::run_mla_bench("generate --model " + model + " --prompt '" + words + "'");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("prompt of ") && Contains(" tokens exceeds max_position_embeddings 512"));
  // Within the limit nothing changes.
  const auto ok = mlab::test::run_mla_bench("generate --model " + model + " --prompt 'hello there' --max-new-tokens 4");
  CHECK(ok.code == 0);
  CHECK_THAT(ok.err, !Contains("max_position_embeddings"));
}

namespace {

// CRC-32 of PNG chunks (ISO 3309, the polynomial 0xEDB88320 bit-reversed), for hand-made files.
uint32_t png_crc(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(png_crc(type + data));
}

}  // namespace

TEST_CASE("F11 D3: an image of more pixels than --max-image-pixels is refused before decoding",
          "[harness][hostile][f11]") {
  // A 20000 x 20000 grey PNG header (400 M pixels, more than Pillow's 178,956,970) over a few
  // bytes of image data: the header alone must stop it, naming the file, the size and the limit.
  const fs::path dir = mlab::test::scratch_dir("hostile_pixels");
  fs::copy(mlab::test::data_dir() / "datasets" / "pope", dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const std::string ihdr = be32(20000) + be32(20000) + std::string("\x08\x00\x00\x00\x00", 5);
  write(dir / "images" / "0.png", std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                                      png_chunk("IDAT", std::string("\x78\x9c\x03\x00", 4)) +
                                      png_chunk("IEND", ""));
  const std::string base = "check-dataset --task pope --decode-images --dataset " + dir.string();
  const auto r = mlab::test::run_mla_bench(base);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains((dir / "images" / "0.png").string() +
                             ": 20000 x 20000 = 400000000 pixels exceeds the limit of 178956970"));
  // --skip-bad: the sample is listed as failed, the others are read.
  const auto skip = mlab::test::run_mla_bench(base + " --skip-bad");
  CHECK(skip.code == 0);
  CHECK_THAT(skip.out, Contains("exceeds the limit of 178956970"));
  // A lower cap refuses the fixture's ordinary images too; 0 lifts the cap (the truncated data
  // then fails in the decoder instead); a negative cap is bad usage.
  const auto low = mlab::test::run_mla_bench(base + " --max-image-pixels 100");
  CHECK(low.code == 1);
  CHECK_THAT(low.err, Contains("exceeds the limit of 100"));
  const auto none = mlab::test::run_mla_bench(base + " --max-image-pixels 0");
  CHECK(none.code == 1);
  CHECK_THAT(none.err, !Contains("exceeds the limit"));
  CHECK(mlab::test::run_mla_bench(base + " --max-image-pixels -1").code == 2);
}

TEST_CASE("F11 D7: an image the processor refuses names its sample, and --skip-bad runs the rest",
          "[harness][hostile][f11]") {
  // Qwen2.5-VL's smart_resize refuses an aspect ratio over 200 (a 20000 x 20 image,
  // tests/data/images/hostile, tools/fixtures/make_hostile_images.py). In a batch of 2 it took
  // the whole run down, unnamed, even with --skip-bad, and every rerun died at the same place.
  const fs::path root = mlab::test::scratch_dir("hostile_aspect");
  const fs::path dir = root / "pope";
  fs::copy(mlab::test::data_dir() / "datasets" / "pope", dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::copy_file(mlab::test::data_dir() / "images" / "hostile" / "wide_20000x20.png",
                dir / "images" / "1.png", fs::copy_options::overwrite_existing);  // sample "2"
  const std::string base = "eval --model " +
                           (mlab::test::data_dir() / "tiny_vlms" / "qwen2_5_vl").string() +
                           " --tasks pope --datasets " + root.string() + " --db " +
                           (root / "r.sqlite").string() + " --batch-size 2 --limit 4";
  const auto r = mlab::test::run_mla_bench(base + " --run-name strict");
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("eval: pope: sample 2: image 0: smart_resize: absolute aspect ratio "
                             "must be smaller than 200"));
  const auto skip = mlab::test::run_mla_bench(base + " --run-name skip --skip-bad");
  INFO(skip.out << skip.err);
  CHECK(skip.code == 0);
  CHECK_THAT(skip.out, Contains("pope: 3 new, 0 already stored, 1 failed"));
  // The rerun resumes: nothing new, the failed sample stays stored as failed.
  const auto again = mlab::test::run_mla_bench(base + " --run-name skip --skip-bad");
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Contains("pope: 0 new, 3 already stored, 1 failed"));
}
