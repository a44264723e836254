// core/sha256 against FIPS 180-4 example vectors and hashlib values written by
// tools/fixtures/lmms_output_oracle.py (tests/data/lmms_output/sha256.jsonl).
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/sha256.hpp"
#include "tests/support/catch_torch.hpp"

namespace {
std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}
}  // namespace

TEST_CASE("sha256 matches the FIPS 180-4 example vectors", "[core][sha256]") {
  CHECK(mlab::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(mlab::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(mlab::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  mlab::Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  CHECK(million.hexdigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 equals Python hashlib on UTF-8 texts of many lengths", "[core][sha256]") {
  std::ifstream in(mlab::test::data_dir() / "lmms_output" / "sha256.jsonl");
  REQUIRE(in.good());
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json v = nlohmann::json::parse(line);
    const std::string bytes = from_hex(v.at("hex").get<std::string>());
    INFO(v.at("hex").get<std::string>());
    CHECK(mlab::sha256_hex(bytes) == v.at("sha256").get<std::string>());
    // Split updates give the same digest.
    mlab::Sha256 split;
    split.update(bytes.substr(0, bytes.size() / 3));
    split.update(bytes.substr(bytes.size() / 3));
    CHECK(split.hexdigest() == v.at("sha256").get<std::string>());
    ++n;
  }
  CHECK(n > 40);
}
