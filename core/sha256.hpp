#pragma once
// SHA-256 (FIPS 180-4, §6.2), for the content hashes lmms-eval writes into its output files
// (utils.hash_string: hashlib.sha256(text.encode("utf-8")).hexdigest()).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mlab {

// Incremental SHA-256 over bytes.
class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // The 32-byte digest; the object must not be updated afterwards.
  std::array<std::uint8_t, 32> digest();
  // The digest as 64 lower-case hex digits (hashlib's hexdigest()).
  std::string hexdigest();

 private:
  void block(const std::uint8_t* p);

  std::array<std::uint32_t, 8> h_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // bytes hashed so far
};

// hashlib.sha256(bytes).hexdigest() of a byte string (UTF-8 text is hashed as its bytes).
std::string sha256_hex(std::string_view bytes);

}  // namespace mlab
