#pragma once
// Torch side of the safetensors reader/writer: dtype mapping, zero-copy tensor views of a mapped
// file, and saving ATen tensors (models/io/safetensors.hpp holds the Torch-free format code).
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/io/safetensors.hpp"

namespace mlab::models {

// The ATen dtype of a safetensors dtype (BOOL->kBool, U8->kByte, ..., C64->kComplexFloat).
// Throws mlab::Error for dtypes without an ATen equivalent in this build (F4, F6_*, F8_E8M0).
at::ScalarType to_scalar_type(Dtype dtype);

// The safetensors dtype of an ATen dtype; throws mlab::Error for dtypes safetensors cannot hold
// (e.g. kComplexDouble, kQInt8, the fnuz float8 variants).
Dtype from_scalar_type(at::ScalarType type);

// `info` (from `file`) as a CPU tensor of to_scalar_type(info.dtype) and info.shape (0-d and
// empty shapes included). Zero-copy when the data is aligned to the element size: the tensor
// aliases file.mapping() and keeps it alive; writes to it are private to this process but shared
// with every other tensor aliasing the same bytes. Otherwise (misaligned data) a fresh copy.
at::Tensor load_tensor(const SafetensorsFile& file, const TensorInfo& info);

// Writes `tensors` (any device, layout or strides; copied to CPU-contiguous as needed) to `path`
// with write_safetensors (atomic; layout as huggingface/safetensors). Throws mlab::Error naming
// the path for duplicate names, sparse/quantized tensors and dtypes safetensors cannot hold.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace mlab::models
