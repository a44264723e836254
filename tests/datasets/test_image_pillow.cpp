// datasets/image against Pillow: every file of tests/data/images/decode
// (tools/fixtures/make_decode_fixtures.py) decodes to exactly the pixels of Pillow's
// Image.open(path).convert("RGB") and .convert("RGBA") (SHA-256 of the bytes in the manifest), and
// the bad files fail with mlab::Error naming the path. MLAB_TEST_REPORT=1 prints the counts.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/sha256.hpp"
#include "datasets/image.hpp"
#include "tests/support/catch_torch.hpp"

using Catch::Matchers::Contains;
namespace ds = mlab::datasets;

namespace {

std::filesystem::path decode_dir() { return mlab::test::data_dir() / "images" / "decode"; }

const nlohmann::json& manifest() {
  static const nlohmann::json m = [] {
    std::ifstream in(decode_dir() / "manifest.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return m;
}

std::string sha256_of(const std::vector<std::uint8_t>& bytes) {
  return mlab::sha256_hex(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// The manifest entry whose file name starts with `prefix` (names carry random sizes).
const nlohmann::json& entry(const std::string& prefix) {
  for (const auto& f : manifest()["files"]) {
    if (f["file"].get<std::string>().starts_with(prefix)) return f;
  }
  FAIL("no fixture " << prefix);
  static const nlohmann::json none;
  return none;
}

bool rgb_matches(const nlohmann::json& f) {
  const ds::Image image = ds::decode_image(decode_dir() / f["file"].get<std::string>());
  return image.width == f["width"].get<int>() && image.height == f["height"].get<int>() &&
         sha256_of(image.rgb) == f["rgb_sha256"].get<std::string>();
}

}  // namespace

TEST_CASE("decode: every fixture equals Pillow's convert(RGB) and convert(RGBA)", "[datasets]") {
  const auto& files = manifest()["files"];
  REQUIRE(files.size() >= 300);
  std::map<std::string, std::pair<int, int>> per_group;  // group -> (files, mismatching files)
  for (const auto& f : files) {
    const std::string file = f["file"];
    INFO(file << " (Pillow mode " << f["mode"].get<std::string>() << ")");
    const auto path = decode_dir() / file;
    auto& [count, bad] = per_group[file.substr(0, file.find('/'))];
    ++count;
    ds::Image rgb;
    ds::RgbaImage rgba;
    ds::ImageInfo info;
    try {
      rgb = ds::decode_image(path);
      rgba = ds::decode_image_rgba(path);
      info = ds::read_image_info(path);
    } catch (const mlab::Error& e) {
      FAIL_CHECK(e.what());  // go on with the other files
      ++bad;
      continue;
    }
    const bool rgb_ok = sha256_of(rgb.rgb) == f["rgb_sha256"].get<std::string>();
    const bool rgba_ok = sha256_of(rgba.rgba) == f["rgba_sha256"].get<std::string>();
    bad += !(rgb_ok && rgba_ok);
    CHECK(rgb.width == f["width"].get<int>());
    CHECK(rgb.height == f["height"].get<int>());
    CHECK(rgba.width == f["width"].get<int>());
    CHECK(rgba.height == f["height"].get<int>());
    CHECK(info.width == f["width"].get<int>());
    CHECK(info.height == f["height"].get<int>());
    // stb_image decodes the other formats (other/). Its known difference from Pillow: the RGB of
    // a GIF's transparent pixels (stb: black; Pillow: the palette colour; both are white once
    // composited on white, as transformers does). There channels and has_alpha are stb's (a GIF
    // is RGBA), which composites the same.
    if (file.starts_with("other/p_trns_")) continue;
    CHECK(rgb_ok);
    CHECK(rgba_ok);
    if (file.starts_with("other/")) continue;
    CHECK(rgba.has_alpha == f["has_alpha"].get<bool>());
    CHECK(info.channels == f["channels"].get<int>());
  }
  if (std::getenv("MLAB_TEST_REPORT") != nullptr) {
    std::printf("Pillow %s, libjpeg-turbo %s\n", manifest()["pillow"].get<std::string>().c_str(),
                manifest()["libjpeg_turbo"].get<std::string>().c_str());
    for (const auto& [group, counts] : per_group) {
      std::printf("%-6s %3d files, %3d differ from Pillow\n", group.c_str(), counts.first,
                  counts.second);
    }
  }
}

TEST_CASE("decode: the gaps of the stb_image decoder are closed", "[datasets]") {
  // stb_image's JPEG IDCT and chroma upsampling differ from libjpeg-turbo's (up to 3 levels on
  // ~20% of the values of this 4:2:0 quality-75 file); stb scaled 16-bit grey PNGs (>> 8) where
  // Pillow's "I;16" -> "RGB" clips at 255; stb expanded 2/4-bit grey with tRNS and 16-bit tRNS
  // against the full 16-bit value, Pillow against its 8-bit pixels.
  for (const char* prefix : {"jpeg/gap_q75_ss2_96x64", "jpeg/cmyk0_", "jpeg/cjpeg_1x2_",
                             "png/i16_pil_", "png/raw_ct0_d16_plain_",
                             "png/raw_ct2_d16_trns_lowbyte_", "png/raw_ct3_d8_short_palette_"}) {
    INFO(prefix);
    CHECK(rgb_matches(entry(prefix)));
  }
  const auto& lowbyte = entry("png/raw_ct2_d16_trns_lowbyte_");
  const ds::RgbaImage rgba =
      ds::decode_image_rgba(decode_dir() / lowbyte["file"].get<std::string>());
  CHECK(sha256_of(rgba.rgba) == lowbyte["rgba_sha256"].get<std::string>());
  CHECK(rgba.rgba[3] == 0);  // MSBs equal to the tRNS low bytes: transparent for Pillow
}

TEST_CASE("decode: empty, truncated and corrupt files fail naming the path", "[datasets]") {
  const auto& bad = manifest()["bad"];
  REQUIRE(bad.size() >= 10);
  for (const auto& b : bad) {
    const std::string file = b["file"];
    INFO(file << " (Pillow: " << b["pillow_error"].get<std::string>() << ")");
    const auto path = decode_dir() / file;
    CHECK_THROWS_AS(ds::decode_image(path), mlab::Error);
    CHECK_THROWS_WITH(ds::decode_image(path),
                      Contains(path.string()) &&
                          (Contains("corrupt or unsupported image") || Contains("empty file")));
    CHECK_THROWS_WITH(ds::decode_image_rgba(path), Contains(path.string()));
    // A file cut after its header still has a readable header (the dataset reader's cheap check).
    const bool header_ok = file.find("truncated_scan") != std::string::npos ||
                           file.find("truncated_idat") != std::string::npos ||
                           file.find("corrupt_idat") != std::string::npos;
    if (header_ok) {
      CHECK_NOTHROW(ds::read_image_info(path));
    } else {
      CHECK_THROWS_WITH(ds::read_image_info(path), Contains(path.string()));
    }
  }
  CHECK_THROWS_WITH(ds::decode_image(decode_dir() / "bad" / "truncated_scan.jpg"),
                    Contains("truncated JPEG"));
  CHECK_THROWS_WITH(ds::decode_image(decode_dir() / "bad" / "truncated_idat.png"),
                    Contains("truncated PNG"));
  CHECK_THROWS_WITH(ds::decode_image(decode_dir() / "bad" / "empty.png"), Contains("empty"));
  CHECK_THROWS_WITH(ds::decode_image(decode_dir() / "no_such.jpg"),
                    Contains("no_such.jpg") && Contains("missing"));
}
