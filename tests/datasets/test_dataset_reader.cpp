// The interchange format readers (datasets/dataset_reader, sample_loaders, image) on the tiny
// committed dataset dirs of tests/data/datasets (tools/fixtures/make_dataset_fixtures.py),
// including the malformed ones of issue F4's acceptance 4.
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "datasets/dataset_reader.hpp"
#include "datasets/image.hpp"
#include "datasets/jsonl_reader.hpp"
#include "datasets/registry.hpp"
#include "tests/support/catch_torch.hpp"

using Catch::Matchers::Contains;
namespace ds = mlab::datasets;

namespace {
std::filesystem::path dataset(const std::string& name) {
  return mlab::test::data_dir() / "datasets" / name;
}
std::string bad(const std::string& name) { return (dataset("bad") / name).string(); }
}  // namespace

TEST_CASE("every benchmark's tiny dataset dir loads with its typed fields", "[datasets]") {
  for (const auto& entry : ds::task_entries()) {
    INFO(entry.name);
    CHECK(entry.implemented());
    const auto samples = ds::read_dataset(dataset(entry.name), entry.name, {.decode_images = true});
    REQUIRE(!samples.empty());
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const ds::Sample& s = samples[i];
      CHECK(s.row == static_cast<std::int64_t>(i));
      CHECK(!s.failed());
      CHECK(!s.question.empty());
      CHECK(!s.answers.empty());
      REQUIRE(!s.images.empty());
      CHECK(s.pixels.size() == s.images.size());
      CHECK(s.pixels[0].width == 3);
      CHECK(s.pixels[0].height == 2);
      CHECK(s.pixels[0].rgb.size() == 3 * 2 * 3);
    }
  }
}

TEST_CASE("loaders expose options, answer lists, categories and circular groups", "[datasets]") {
  const auto ai2d = ds::read_dataset(dataset("ai2d"), "ai2d");
  CHECK(ai2d[0].options.size() == 4);
  CHECK(ai2d[0].answers == std::vector<std::string>{"B"});
  const auto pope = ds::read_dataset(dataset("pope"), "pope");
  CHECK(pope[1].category == "random");
  const auto mmb = ds::read_dataset(dataset("mmbench_en_dev"), "mmbench");
  CHECK(mmb[0].circular_group == 241);
  CHECK(mmb[1].circular_group == 241);
  CHECK(mmb[1].circular_copy == 1);
  CHECK(mmb[2].options == std::vector<std::string>{"tree", "house"});  // "nan" is no option
  const auto chart = ds::read_dataset(dataset("chartqa"), "chartqa");
  CHECK(chart[0].category == "human_test");
  CHECK(chart[1].category == "augmented_test");
  const auto doc = ds::read_dataset(dataset("docvqa_val"), "docvqa_val");
  CHECK(doc[0].answers == std::vector<std::string>{"1/8/93", "January 8, 1993"});
  const auto seed = ds::read_dataset(dataset("seedbench"), "seedbench");
  CHECK(seed[1].category == "video");
  CHECK(seed[1].images.size() == 3);
  CHECK(seed[0].options.size() == 4);
}

TEST_CASE("decoded pixels are the PNG's RGB values", "[datasets]") {
  const ds::Image image = ds::decode_image(dataset("gqa") / "images" / "0.png");
  // make_dataset_fixtures.png(3, 2, seed=11): pixel (x, y) = (x*50+11, y*80, 11)
  REQUIRE(image.rgb.size() == 18);
  CHECK(image.rgb[0] == 11);
  CHECK(image.rgb[3] == 61);
  CHECK(image.rgb[3 * 3 + 1] == 80);
  CHECK(image.rgb[3 * 3 + 2] == 11);
}

TEST_CASE("malformed samples fail with file:line and the reason", "[datasets]") {
  CHECK_THROWS_WITH(ds::read_dataset(bad("malformed_json"), "pope"),
                    Contains("malformed_json/samples.jsonl:2:") && Contains("malformed JSON"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("not_an_object"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("expected a JSON object"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("missing_field"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("no field 'answer'"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("bad_category"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("'sideways'"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("duplicate_id"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("duplicate id '1'"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("escaping_path"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("leaves the dataset dir"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("count_mismatch"), "pope"),
                    Contains("holds 3 samples, dataset.json says 5"));
}

TEST_CASE("dataset dirs are checked before any sample is read", "[datasets]") {
  CHECK_THROWS_WITH(ds::read_dataset(bad("wrong_task"), "pope"),
                    Contains("holds task 'gqa', expected 'pope'"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("bad_version"), "pope"), Contains("'version' must be 1"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("no_such_dir"), "pope"),
                    Contains("no_such_dir") && Contains("not a dataset dir"));
  CHECK_THROWS_WITH(ds::read_dataset(dataset("pope"), "popee"), Contains("did you mean 'pope'"));
}

TEST_CASE("missing and corrupt images fail naming the file", "[datasets]") {
  CHECK_THROWS_WITH(ds::read_dataset(bad("missing_image"), "pope"),
                    Contains("samples.jsonl:2:") && Contains("missing_image/images/1.png") &&
                        Contains("missing"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("corrupt_image"), "pope"),
                    Contains("corrupt_image/images/1.png") && Contains("corrupt"));
  // A truncated PNG has a valid header: only decoding finds it.
  CHECK_NOTHROW(ds::read_dataset(bad("truncated_image"), "pope"));
  CHECK_THROWS_WITH(ds::read_dataset(bad("truncated_image"), "pope", {.decode_images = true}),
                    Contains("truncated_image/images/1.png") && Contains("corrupt"));
}

TEST_CASE("skip_bad records failed samples in place, never drops them", "[datasets]") {
  for (const char* name : {"malformed_json", "missing_field", "missing_image", "corrupt_image"}) {
    INFO(name);
    ds::DatasetReader reader(bad(name), "pope", {.skip_bad = true});
    std::vector<ds::Sample> samples;
    ds::Sample s;
    while (reader.next(s)) samples.push_back(s);
    REQUIRE(samples.size() == 3);
    CHECK(!samples[0].failed());
    CHECK(samples[1].failed());
    CHECK(samples[1].row == 1);
    CHECK_THAT(samples[1].error, Contains("samples.jsonl:2:"));
    CHECK(!samples[1].id.empty());
    CHECK(!samples[2].failed());
    CHECK(reader.failed() == 1);
  }
  ds::DatasetReader reader(bad("malformed_json"), "pope", {.skip_bad = true});
  ds::Sample s;
  reader.next(s);
  reader.next(s);
  CHECK(s.id == "line 2");
}

TEST_CASE("JsonlReader streams lines and skips blank ones", "[datasets]") {
  const auto dir = mlab::test::scratch_dir("jsonl");
  const auto path = dir / "x.jsonl";
  {
    std::ofstream out(path);
    out << "{\"a\": 1}\n\n   \n{\"a\": 2}\r\n{\"a\": \"\xff\"}";
  }
  ds::JsonlReader reader(path);
  nlohmann::json v;
  REQUIRE(reader.next(v));
  CHECK(v["a"] == 1);
  REQUIRE(reader.next(v));
  CHECK(v["a"] == 2);
  CHECK(reader.line() == 4);
  CHECK_THROWS_WITH(reader.next(v), Contains("x.jsonl:5:") && Contains("malformed JSON"));
  CHECK_THROWS_WITH(ds::JsonlReader(dir / "nope.jsonl"),
                    Contains("nope.jsonl") && Contains("cannot open"));
}
