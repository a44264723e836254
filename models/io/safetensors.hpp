#pragma once
// safetensors reader and writer, without Torch (the format of huggingface/safetensors):
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
// The header maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the data section) plus an optional "__metadata__" str->str map. The reader enforces
// every validation rule of huggingface/safetensors (specs/anchors.md §4.3) and a few stricter ones
// (duplicate names, unknown keys); every failure is an mlab::Error starting with the file name.
// Torch-facing conversion lives in models/io/tensor_io.hpp.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mlab::models {

// safetensors element types, in the order of the safetensors Rust enum (the writer sorts tensors
// by descending enum value, which is descending alignment). F4 and F6_* are sub-byte types;
// tensors of them are valid only when their total bit count is a multiple of 8.
enum class Dtype {
  BOOL,
  F4,
  F6_E2M3,
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,
  F64,
  I64,
  U64,
};

// The dtype named `name` exactly as in a header ("F32", "BF16", ...); throws mlab::Error naming
// the closest known dtype when unknown.
Dtype parse_dtype(std::string_view name);

// The header spelling of `dtype` ("F32").
std::string_view dtype_name(Dtype dtype);

// Bits per element (4 for F4, 6 for F6_*, 8 for U8, 64 for C64).
std::size_t dtype_bits(Dtype dtype);

// Bytes per element; throws mlab::Error for the sub-byte dtypes F4, F6_E2M3, F6_E3M2.
std::size_t dtype_size(Dtype dtype);

// One tensor entry of a validated header.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::U8;
  std::vector<int64_t> shape;  // each >= 0; empty for a 0-d tensor
  uint64_t begin = 0;          // byte offsets into the data section, [begin, end)
  uint64_t end = 0;

  uint64_t nbytes() const { return end - begin; }
  // Product of shape (1 for a 0-d tensor); validated not to overflow.
  uint64_t numel() const;
};

// A validated safetensors file held in memory: an mmap of the file or an owned buffer. Copies
// share the bytes; cheap to keep open (the OS pages data in on demand). Tensors created by
// load_tensor() may alias its bytes and keep them alive through mapping().
class SafetensorsFile {
 public:
  // Maps `path` (MAP_PRIVATE, PROT_READ|PROT_WRITE: writes through aliasing tensors are
  // copy-on-write and never reach the file) and validates it. Throws mlab::Error starting with
  // the path when the file cannot be read or breaks any rule of the format.
  static SafetensorsFile open(const std::filesystem::path& path);

  // Validates `bytes` (a whole file) held in memory; errors start with `display_name`.
  static SafetensorsFile from_bytes(std::string bytes, std::string display_name);

  // All tensors, ordered by data offset (then end offset).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // The tensor named `name`, or nullptr.
  const TensorInfo* find(std::string_view name) const;

  // The tensor named `name`; throws mlab::Error naming the file, the tensor and the closest name.
  const TensorInfo& at(std::string_view name) const;

  // Sorted tensor names.
  std::vector<std::string> names() const;

  // The raw little-endian bytes of `info` (which must come from this file).
  std::span<const std::byte> bytes(const TensorInfo& info) const;

  // The "__metadata__" map (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The path given to open(), or the display name given to from_bytes().
  const std::filesystem::path& path() const { return path_; }

  // Owner of the whole file's bytes (file_size() of them, starting with the 8-byte length).
  // The memory is writable (private mapping or owned buffer) but shared by every tensor that
  // aliases it; holding a copy keeps it alive after this object is gone.
  const std::shared_ptr<std::byte>& mapping() const { return mapping_; }
  std::size_t file_size() const { return file_size_; }

  // Byte offset of the data section from the start of the file (8 + header length).
  std::size_t data_start() const { return data_start_; }

 private:
  SafetensorsFile() = default;
  void parse();

  std::filesystem::path path_;
  std::shared_ptr<std::byte> mapping_;
  std::size_t file_size_ = 0;
  std::size_t data_start_ = 0;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Input of write_safetensors: one tensor's header entry and its little-endian bytes.
struct TensorBytes {
  std::string name;
  Dtype dtype = Dtype::U8;
  std::vector<int64_t> shape;
  std::span<const std::byte> bytes;  // exactly numel * dtype_bits / 8 bytes
};

// Writes `tensors` and `metadata` to `path` as safetensors, laid out as huggingface/safetensors
// does (tensors by descending dtype then name, header padded with spaces to a multiple of 8, so
// every tensor is aligned to its element size). Atomic: writes a temporary file in the same
// directory, fsyncs and renames it, so `path` is either the old file or the complete new one.
// Throws mlab::Error naming the path for duplicate or reserved names, negative dimensions, byte
// counts that do not match dtype and shape, and I/O failures.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The safetensors header limit (huggingface/safetensors MAX_HEADER_SIZE).
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

namespace detail {

// Throws mlab::Error("<display_name>: <what> is not valid UTF-8 ...") unless `text` is strict
// UTF-8 (no overlong forms, surrogates, or code points above U+10FFFF).
void check_utf8(std::string_view text, const std::string& display_name, std::string_view what);

// Parses `text` as JSON, rejecting duplicate keys in any object (nlohmann would silently keep the
// last) and nesting deeper than 64. Throws mlab::Error starting with `display_name` and naming
// `what` ("header", "index") when `text` is not valid JSON or repeats a key.
nlohmann::json parse_json_strict(std::string_view text, const std::string& display_name,
                                 std::string_view what);

// Writes the concatenation of `chunks` to `path` atomically: a temporary file in the same
// directory, fsync, rename over `path`, fsync of the directory. On failure the temporary file is
// removed and `path` is untouched. Throws mlab::Error naming `path`.
void write_file_atomic(const std::filesystem::path& path,
                       const std::vector<std::span<const std::byte>>& chunks);

}  // namespace detail

}  // namespace mlab::models
