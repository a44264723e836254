#pragma once
// Launcher of the RMSNorm CUDA kernel: raw pointers, no CUDA or Torch headers (STYLE.md rule 16).
#include <cstdint>

namespace mlab::kernels::cuda {

enum class ElementType : int { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

// x, weight, out: contiguous device buffers of `type`; x/out [rows, dim], weight [dim].
// Launches on `stream` (a cudaStream_t); returns 0 or a cudaError_t code.
int launch_rms_norm(const void* x, const void* weight, void* out, int64_t rows, int64_t dim,
                    float eps, ElementType type, void* stream);

// cudaGetErrorString for an error code returned above.
const char* error_string(int code);

}  // namespace mlab::kernels::cuda
