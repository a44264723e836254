// Torch side of the safetensors reader/writer: dtype mapping, zero-copy views of mapped files,
// saving ATen tensors through write_safetensors.
#include "models/io/tensor_io.hpp"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "compat/torch_compat.hpp"
#include "core/error.hpp"

namespace mlab::models {

at::ScalarType to_scalar_type(Dtype dtype) {
  switch (dtype) {
    case Dtype::BOOL:
      return at::kBool;
    case Dtype::U8:
      return at::kByte;
    case Dtype::I8:
      return at::kChar;
    case Dtype::I16:
      return at::kShort;
    case Dtype::I32:
      return at::kInt;
    case Dtype::I64:
      return at::kLong;
    case Dtype::F16:
      return at::kHalf;
    case Dtype::BF16:
      return at::kBFloat16;
    case Dtype::F32:
      return at::kFloat;
    case Dtype::F64:
      return at::kDouble;
    case Dtype::C64:
      return at::kComplexFloat;
#if MLAB_HAS_UNSIGNED
    case Dtype::U16:
      return at::kUInt16;
    case Dtype::U32:
      return at::kUInt32;
    case Dtype::U64:
      return at::kUInt64;
#endif
#if MLAB_HAS_FLOAT8
    case Dtype::F8_E4M3:
      return at::kFloat8_e4m3fn;
    case Dtype::F8_E5M2:
      return at::kFloat8_e5m2;
#endif
    default:
      break;
  }
  MLAB_FAIL("safetensors dtype ", dtype_name(dtype),
            " has no ATen dtype in mlab (supported: BOOL, ",
            "U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2, C64)");
}

Dtype from_scalar_type(at::ScalarType type) {
  switch (type) {
    case at::kBool:
      return Dtype::BOOL;
    case at::kByte:
      return Dtype::U8;
    case at::kChar:
      return Dtype::I8;
    case at::kShort:
      return Dtype::I16;
    case at::kInt:
      return Dtype::I32;
    case at::kLong:
      return Dtype::I64;
    case at::kHalf:
      return Dtype::F16;
    case at::kBFloat16:
      return Dtype::BF16;
    case at::kFloat:
      return Dtype::F32;
    case at::kDouble:
      return Dtype::F64;
    case at::kComplexFloat:
      return Dtype::C64;
#if MLAB_HAS_UNSIGNED
    case at::kUInt16:
      return Dtype::U16;
    case at::kUInt32:
      return Dtype::U32;
    case at::kUInt64:
      return Dtype::U64;
#endif
#if MLAB_HAS_FLOAT8
    case at::kFloat8_e4m3fn:
      return Dtype::F8_E4M3;
    case at::kFloat8_e5m2:
      return Dtype::F8_E5M2;
#endif
    default:
      break;
  }
  MLAB_FAIL("ATen dtype ", c10::toString(type), " cannot be stored in safetensors");
}

at::Tensor load_tensor(const SafetensorsFile& file, const TensorInfo& info) {
  at::ScalarType type{};
  try {
    type = to_scalar_type(info.dtype);
  } catch (const Error& e) {
    MLAB_FAIL(file.path().string(), ": tensor '", info.name, "': ", e.what());
  }
  const auto bytes = file.bytes(info);
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  if (info.numel() == 0) return at::empty(info.shape, options);
  // The mapping is private and writable (MAP_PRIVATE or an owned buffer), so handing ATen a
  // mutable pointer is sound.
  auto* data = const_cast<std::byte*>(bytes.data());
  if (reinterpret_cast<std::uintptr_t>(data) % dtype_size(info.dtype) == 0) {
    std::shared_ptr<std::byte> owner = file.mapping();
    return at::from_blob(
        data, info.shape, [owner](void*) mutable { owner.reset(); }, options);
  }
  at::Tensor copy = at::empty(info.shape, options);
  std::memcpy(copy.data_ptr(), data, bytes.size());
  return copy;
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> cpu_tensors;  // keep the CPU copies alive while writing
  std::vector<TensorBytes> entries;
  cpu_tensors.reserve(tensors.size());
  entries.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const std::string where = path.string() + ": tensor '" + name + "'";
    MLAB_CHECK(tensor.defined(), where, ": undefined tensor");
    MLAB_CHECK(tensor.layout() == at::kStrided && !tensor.is_quantized(), where,
               ": only dense (strided, non-quantized) tensors can be saved, got layout ",
               tensor.layout(), " dtype ", tensor.scalar_type());
    Dtype dtype{};
    try {
      dtype = from_scalar_type(tensor.scalar_type());
    } catch (const Error& e) {
      MLAB_FAIL(where, ": ", e.what());
    }
    at::Tensor cpu;
    try {
      cpu = tensor.to(at::kCPU).resolve_conj().resolve_neg().contiguous();
    } catch (const c10::Error& e) {
      MLAB_FAIL(where, ": cannot copy to CPU: ", e.what_without_backtrace());
    }
    cpu_tensors.push_back(cpu);
    const auto* data = static_cast<const std::byte*>(cpu.const_data_ptr());
    entries.push_back(TensorBytes{
        .name = name, .dtype = dtype, .shape = cpu.sizes().vec(), .bytes = {data, cpu.nbytes()}});
  }
  write_safetensors(path, entries, metadata);
}

}  // namespace mlab::models
