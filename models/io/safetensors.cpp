// safetensors reader and writer (format and validation rules of huggingface/safetensors,
// safetensors/src/tensor.rs; specs/anchors.md §4.3). Each check names the Rust error variant it
// mirrors so that the two stay comparable.
#include "models/io/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

#include "core/error.hpp"
#include "core/strings.hpp"

namespace mlab::models {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; big-endian hosts would need byte swapping");

using json = nlohmann::json;

namespace {

struct DtypeEntry {
  Dtype dtype;
  std::string_view name;
  std::size_t bits;
};

constexpr std::array<DtypeEntry, 20> kDtypes = {{
    {Dtype::BOOL, "BOOL", 8},       {Dtype::F4, "F4", 4},           {Dtype::F6_E2M3, "F6_E2M3", 6},
    {Dtype::F6_E3M2, "F6_E3M2", 6}, {Dtype::U8, "U8", 8},           {Dtype::I8, "I8", 8},
    {Dtype::F8_E5M2, "F8_E5M2", 8}, {Dtype::F8_E4M3, "F8_E4M3", 8}, {Dtype::F8_E8M0, "F8_E8M0", 8},
    {Dtype::I16, "I16", 16},        {Dtype::U16, "U16", 16},        {Dtype::F16, "F16", 16},
    {Dtype::BF16, "BF16", 16},      {Dtype::I32, "I32", 32},        {Dtype::U32, "U32", 32},
    {Dtype::F32, "F32", 32},        {Dtype::C64, "C64", 64},        {Dtype::F64, "F64", 64},
    {Dtype::I64, "I64", 64},        {Dtype::U64, "U64", 64},
}};

const DtypeEntry& entry_of(Dtype dtype) {
  const auto index = static_cast<std::size_t>(dtype);
  if (index >= kDtypes.size() || kDtypes[index].dtype != dtype) {
    MLAB_FAIL("invalid mlab::models::Dtype value ", index);
  }
  return kDtypes[index];
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// A JSON value for an error message, cut to a readable length.
std::string brief(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

std::optional<uint64_t> as_u64(const json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

// numel * bits of a validated shape, or nullopt on 64-bit overflow (ValidationOverflow).
std::optional<uint64_t> total_bits(const std::vector<int64_t>& shape, std::size_t bits) {
  uint64_t product = bits;
  for (const int64_t dim : shape) {
    if (__builtin_mul_overflow(product, static_cast<uint64_t>(dim), &product)) return std::nullopt;
  }
  return product;
}

uint64_t read_le64(const std::byte* p) {
  uint64_t value = 0;
  std::memcpy(&value, p, sizeof(value));
  return value;  // little-endian host (static_assert above)
}

// Parses one header entry other than __metadata__ (TensorInfo in tensor.rs, plus the stricter
// rules: every key known, every field of the right type).
TensorInfo parse_entry(const std::string& file, const std::string& name, const json& value) {
  const std::string where = file + ": tensor '" + name + "'";
  MLAB_CHECK(value.is_object(), where, ": entry must be a JSON object with dtype, shape and ",
             "data_offsets, got ", brief(value));
  for (const auto& item : value.items()) {
    const auto& key = item.key();
    MLAB_CHECK(key == "dtype" || key == "shape" || key == "data_offsets", where, ": unknown key '",
               key, "' in tensor entry (expected dtype, shape, data_offsets)");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    MLAB_CHECK(value.contains(key), where, ": missing key '", key, "'");
  }
  TensorInfo info;
  info.name = name;

  const json& dtype = value.at("dtype");
  MLAB_CHECK(dtype.is_string(), where, ": 'dtype' must be a string, got ", brief(dtype));
  try {
    info.dtype = parse_dtype(dtype.get_ref<const std::string&>());
  } catch (const Error& e) {
    MLAB_FAIL(where, ": ", e.what());
  }

  const json& shape = value.at("shape");
  MLAB_CHECK(shape.is_array(), where, ": 'shape' must be an array of non-negative integers, got ",
             brief(shape));
  for (const json& dim : shape) {
    MLAB_CHECK(dim.is_number(), where, ": shape ", brief(shape), " has a non-integer dimension ",
               brief(dim));
    MLAB_CHECK(!dim.is_number_float(), where, ": shape ", brief(shape),
               " has a non-integer dimension ", brief(dim));
    MLAB_CHECK(dim.is_number_unsigned() || dim.get<int64_t>() >= 0, where, ": shape ", brief(shape),
               " has a negative dimension ", brief(dim));
    const auto size = as_u64(dim);
    MLAB_CHECK(size && *size <= static_cast<uint64_t>(INT64_MAX), where, ": shape ", brief(shape),
               " has a dimension too large for int64: ", brief(dim));
    info.shape.push_back(static_cast<int64_t>(*size));
  }

  const json& offsets = value.at("data_offsets");
  const bool offsets_ok =
      offsets.is_array() && offsets.size() == 2 && as_u64(offsets[0]) && as_u64(offsets[1]);
  MLAB_CHECK(offsets_ok, where, ": 'data_offsets' must be two non-negative integers [begin, end], ",
             "got ", brief(offsets));
  info.begin = *as_u64(offsets[0]);
  info.end = *as_u64(offsets[1]);
  MLAB_CHECK(info.begin <= info.end, where, ": data_offsets [", info.begin, ", ", info.end,
             "] have begin > end (invalid offset)");

  const std::string_view dtype_text = dtype_name(info.dtype);
  const auto bits = total_bits(info.shape, dtype_bits(info.dtype));
  MLAB_CHECK(bits.has_value(), where, ": ", dtype_text, " ", shape_string(info.shape),
             " overflows 64 bits of size (validation overflow)");
  MLAB_CHECK(*bits % 8 == 0, where, ": ", dtype_text, " ", shape_string(info.shape), " is ", *bits,
             " bits, not a whole number of bytes (misaligned slice)");
  MLAB_CHECK(info.nbytes() == *bits / 8, where, ": data_offsets [", info.begin, ", ", info.end,
             "] hold ", info.nbytes(), " bytes but ", dtype_text, " ", shape_string(info.shape),
             " needs ", *bits / 8);
  return info;
}

// Sorts tensors by offset and checks that they tile [0, data_size) exactly (InvalidOffset,
// MetadataIncompleteBuffer).
void check_layout(const std::string& file, std::vector<TensorInfo>& tensors, uint64_t data_size) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin
           : a.end != b.end   ? a.end < b.end
                              : a.name < b.name;
  });
  uint64_t expected = 0;
  const TensorInfo* previous = nullptr;
  for (const auto& info : tensors) {
    if (info.begin != expected) {
      if (!previous) {
        MLAB_FAIL(file, ": tensor '", info.name, "' starts at data offset ", info.begin,
                  " but the first tensor must start at 0 (invalid offset)");
      }
      if (info.begin > expected) {
        MLAB_FAIL(file, ": tensor '", info.name, "' starts at data offset ", info.begin,
                  " but the previous tensor '", previous->name, "' ends at ", expected,
                  ": a gap of ", info.begin - expected, " bytes (invalid offset)");
      }
      MLAB_FAIL(file, ": tensor '", info.name, "' starts at data offset ", info.begin,
                " but the previous tensor '", previous->name, "' ends at ", expected,
                ": they overlap (invalid offset)");
    }
    expected = info.end;
    previous = &info;
  }
  MLAB_CHECK(expected <= data_size, file, ": the tensors need ", expected,
             " bytes of data but the file holds only ", data_size,
             " after the header: truncated file (incomplete buffer)");
  MLAB_CHECK(expected == data_size, file, ": the data section is ", data_size,
             " bytes but the tensors cover only ", expected, ": ", data_size - expected,
             " trailing bytes (incomplete buffer)");
}

// Closes a file descriptor and optionally removes a temporary file on scope exit.
struct FileGuard {
  int fd = -1;
  std::string remove_path;
  ~FileGuard() {
    if (fd >= 0) ::close(fd);
    if (!remove_path.empty()) ::unlink(remove_path.c_str());
  }
};

void write_all(int fd, const void* data, std::size_t size, const std::string& file) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, p, size);
    if (written < 0 && errno == EINTR) continue;
    MLAB_CHECK(written > 0, file, ": write failed: ", std::strerror(errno));
    p += written;
    size -= static_cast<std::size_t>(written);
  }
}

}  // namespace

Dtype parse_dtype(std::string_view name) {
  for (const auto& entry : kDtypes) {
    if (entry.name == name) return entry.dtype;
  }
  std::vector<std::string> known;
  for (const auto& entry : kDtypes) known.emplace_back(entry.name);
  MLAB_FAIL(unknown_name_message("dtype", name, known));
}

std::string_view dtype_name(Dtype dtype) { return entry_of(dtype).name; }

std::size_t dtype_bits(Dtype dtype) { return entry_of(dtype).bits; }

std::size_t dtype_size(Dtype dtype) {
  const auto& entry = entry_of(dtype);
  MLAB_CHECK(entry.bits % 8 == 0, "dtype ", entry.name, " is ", entry.bits,
             " bits per element, not a whole number of bytes");
  return entry.bits / 8;
}

uint64_t TensorInfo::numel() const {
  uint64_t product = 1;
  for (const int64_t dim : shape) product *= static_cast<uint64_t>(dim);
  return product;
}

namespace detail {

void check_utf8(std::string_view text, const std::string& display_name, std::string_view what) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    std::size_t length = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    }
    bool ok = length != 0 && i + length <= n;
    for (std::size_t k = 1; ok && k < length; ++k) {
      ok = (s[i + k] & 0xC0) == 0x80;
      code = (code << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      constexpr uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = code >= kMinimum[length] && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF);
    }
    MLAB_CHECK(ok, display_name, ": ", what, " is not valid UTF-8 (bad byte 0x", std::hex,
               static_cast<int>(c), std::dec, " at offset ", i, ")");
    i += length;
  }
}

json parse_json_strict(std::string_view text, const std::string& display_name,
                       std::string_view what) {
  struct DuplicateKey {
    std::string key;
  };
  struct TooDeep {};
  constexpr int kMaxDepth = 64;
  std::vector<std::set<std::string>> open_objects;  // keys seen, one set per open object
  const json::parser_callback_t callback = [&](int depth, json::parse_event_t event,
                                               json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
        if (depth > kMaxDepth) throw TooDeep{};
        open_objects.emplace_back();
        break;
      case json::parse_event_t::array_start:
        if (depth > kMaxDepth) throw TooDeep{};
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second) {
          throw DuplicateKey{parsed.get<std::string>()};
        }
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const DuplicateKey& duplicate) {
    MLAB_FAIL(display_name, ": ", what, " has a duplicate key '", duplicate.key,
              "' (duplicate names are ambiguous)");
  } catch (const TooDeep&) {
    MLAB_FAIL(display_name, ": ", what, " is not a valid header: JSON nesting deeper than ",
              kMaxDepth, " levels");
  } catch (const json::exception& e) {
    MLAB_FAIL(display_name, ": ", what, " is not valid JSON: ", e.what());
  }
}

void write_file_atomic(const std::filesystem::path& path,
                       const std::vector<std::span<const std::byte>>& chunks) {
  static std::atomic<uint64_t> counter{0};
  const std::string file = path.string();
  MLAB_CHECK(!path.filename().empty(), file, ": not a file path");
  const std::filesystem::path directory =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const std::filesystem::path temp =
      directory / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                   std::to_string(counter++));
  FileGuard guard;
  guard.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  MLAB_CHECK(guard.fd >= 0, file, ": cannot create temporary file ", temp.string(), ": ",
             std::strerror(errno));
  guard.remove_path = temp.string();
  for (const auto& chunk : chunks) write_all(guard.fd, chunk.data(), chunk.size(), file);
  MLAB_CHECK(::fsync(guard.fd) == 0, file, ": fsync failed: ", std::strerror(errno));
  const int fd = guard.fd;
  guard.fd = -1;
  MLAB_CHECK(::close(fd) == 0, file, ": close failed: ", std::strerror(errno));
  MLAB_CHECK(::rename(temp.c_str(), path.c_str()) == 0, file, ": cannot rename ", temp.string(),
             " into place: ", std::strerror(errno));
  guard.remove_path.clear();
  // Persist the rename itself; a directory that cannot be opened or synced is not an error.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

}  // namespace detail

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  FileGuard guard;
  guard.fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  MLAB_CHECK(guard.fd >= 0, name, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  MLAB_CHECK(::fstat(guard.fd, &st) == 0, name, ": cannot stat: ", std::strerror(errno));
  MLAB_CHECK(S_ISREG(st.st_mode), name, ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);

  SafetensorsFile file;
  file.path_ = path;
  file.file_size_ = size;
  if (size == 0) {
    file.mapping_ =
        std::shared_ptr<std::byte>(new std::byte[1], std::default_delete<std::byte[]>());
  } else {
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, guard.fd, 0);
    MLAB_CHECK(base != MAP_FAILED, name, ": cannot mmap ", size, " bytes: ", std::strerror(errno));
    file.mapping_ = std::shared_ptr<std::byte>(static_cast<std::byte*>(base),
                                               [size](std::byte* p) { ::munmap(p, size); });
  }
  file.parse();
  return file;
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, std::string display_name) {
  auto owner = std::make_shared<std::string>(std::move(bytes));
  SafetensorsFile file;
  file.path_ = std::move(display_name);
  file.file_size_ = owner->size();
  // Aliasing constructor: the pointer is the string's buffer, the owner the string.
  file.mapping_ = std::shared_ptr<std::byte>(owner, reinterpret_cast<std::byte*>(owner->data()));
  file.parse();
  return file;
}

void SafetensorsFile::parse() {
  const std::string name = path_.string();
  const std::byte* base = mapping_.get();
  MLAB_CHECK(file_size_ >= 8, name, ": file is ", file_size_,
             " bytes, too small for the 8-byte header length (header too small)");
  const uint64_t header_size = read_le64(base);
  MLAB_CHECK(header_size <= kMaxHeaderBytes, name, ": header length ", header_size,
             " exceeds the limit of ", kMaxHeaderBytes, " bytes (header too large)");
  MLAB_CHECK(header_size <= file_size_ - 8, name, ": header length ", header_size,
             " runs past the end of the ", file_size_, "-byte file (invalid header length)");
  const std::string_view header(reinterpret_cast<const char*>(base + 8), header_size);
  detail::check_utf8(header, name, "header");
  const json root = detail::parse_json_strict(header, name, "header");
  MLAB_CHECK(root.is_object(), name, ": header must be a JSON object, got ", root.type_name(), " ",
             brief(root));

  data_start_ = 8 + header_size;
  for (const auto& item : root.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    if (key == "__metadata__") {
      MLAB_CHECK(value.is_object(), name, ": __metadata__ must be a JSON object of strings, got ",
                 brief(value));
      for (const auto& field : value.items()) {
        MLAB_CHECK(field.value().is_string(), name, ": __metadata__ must map strings to strings, ",
                   "but key '", field.key(), "' holds ", brief(field.value()));
        metadata_.emplace(field.key(), field.value().get<std::string>());
      }
      continue;
    }
    tensors_.push_back(parse_entry(name, key, value));
  }
  check_layout(name, tensors_, file_size_ - data_start_);
  index_.reserve(tensors_.size());
  for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(std::string_view name) const {
  if (const TensorInfo* info = find(name)) return *info;
  std::string message = path_.string() + ": no tensor '" + std::string(name) + "'";
  if (auto match = closest_match(name, names())) message += "; did you mean '" + *match + "'?";
  message += " (the file holds " + std::to_string(tensors_.size()) + " tensors)";
  throw Error(message);
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& info : tensors_) out.push_back(info.name);
  std::sort(out.begin(), out.end());
  return out;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& info) const {
  MLAB_CHECK(info.begin <= info.end && info.end <= file_size_ - data_start_, path_.string(),
             ": tensor '", info.name, "' [", info.begin, ", ", info.end,
             ") lies outside this file's data section (an info from another file?)");
  return {mapping_.get() + data_start_ + info.begin, info.nbytes()};
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  std::unordered_set<std::string_view> seen;
  for (const auto& t : tensors) {
    const std::string where = file + ": tensor '" + t.name + "'";
    MLAB_CHECK(t.name != "__metadata__", where, ": the name is reserved for the metadata map");
    MLAB_CHECK(seen.insert(t.name).second, file, ": duplicate tensor name '", t.name, "'");
    detail::check_utf8(t.name, file, "tensor name '" + t.name + "'");
    for (const int64_t dim : t.shape) {
      MLAB_CHECK(dim >= 0, where, ": shape ", shape_string(t.shape), " has a negative dimension");
    }
    const std::string_view dtype_text = dtype_name(t.dtype);
    const auto bits = total_bits(t.shape, dtype_bits(t.dtype));
    MLAB_CHECK(bits.has_value(), where, ": ", dtype_text, " ", shape_string(t.shape),
               " overflows 64 bits of size");
    MLAB_CHECK(*bits % 8 == 0, where, ": ", dtype_text, " ", shape_string(t.shape), " is ", *bits,
               " bits, not a whole number of bytes");
    MLAB_CHECK(t.bytes.size() == *bits / 8, where, ": ", dtype_text, " ", shape_string(t.shape),
               " needs ", *bits / 8, " bytes but ", t.bytes.size(), " were given");
  }
  for (const auto& [key, value] : metadata) {
    detail::check_utf8(key, file, "metadata key");
    detail::check_utf8(value, file, "metadata value of '" + key + "'");
  }

  // huggingface/safetensors order: descending dtype (= descending alignment), then name.
  std::vector<const TensorBytes*> order;
  order.reserve(tensors.size());
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const TensorBytes* a, const TensorBytes* b) {
    return a->dtype != b->dtype ? a->dtype > b->dtype : a->name < b->name;
  });

  std::string header = "{";
  if (!metadata.empty()) header += "\"__metadata__\":" + json(metadata).dump();
  uint64_t offset = 0;
  for (const TensorBytes* t : order) {
    if (header.size() > 1) header += ',';
    header += json(t->name).dump();
    header += ":{\"dtype\":\"";
    header += dtype_name(t->dtype);
    header += "\",\"shape\":";
    header += json(t->shape).dump();
    header += ",\"data_offsets\":[" + std::to_string(offset) + ",";
    offset += t->bytes.size();
    header += std::to_string(offset) + "]}";
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  MLAB_CHECK(header.size() <= kMaxHeaderBytes, file, ": header of ", header.size(),
             " bytes exceeds the safetensors limit of ", kMaxHeaderBytes);

  const uint64_t header_size = header.size();
  std::vector<std::span<const std::byte>> chunks;
  chunks.reserve(order.size() + 2);
  chunks.emplace_back(reinterpret_cast<const std::byte*>(&header_size), sizeof(header_size));
  chunks.emplace_back(reinterpret_cast<const std::byte*>(header.data()), header.size());
  for (const TensorBytes* t : order) chunks.push_back(t->bytes);
  detail::write_file_atomic(path, chunks);
}

}  // namespace mlab::models
