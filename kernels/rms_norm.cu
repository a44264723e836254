// RMSNorm CUDA kernel (see rms_norm.hpp for the numerics). One block per row; fp32 accumulation;
// the normalized value is rounded to the element type before the weight multiply, as HF does.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/rms_norm_cuda.h"

namespace mlab::kernels::cuda {
namespace {

template <class T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

constexpr int kThreads = 256;

template <class T>
__global__ void rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ weight,
                                T* __restrict__ out, int64_t dim, float eps) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * dim;
  T* outr = out + row * dim;
  float sum = 0.f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = to_float(xr[i]);
    sum += v * v;
  }
  for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  __shared__ float warp_sums[kThreads / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    sum = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) warp_sums[0] = sum;
  }
  __syncthreads();
  const float inv = rsqrtf(warp_sums[0] / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const T normalized = from_float<T>(to_float(xr[i]) * inv);
    outr[i] = from_float<T>(to_float(weight[i]) * to_float(normalized));
  }
}

template <class T>
int launch(const void* x, const void* weight, void* out, int64_t rows, int64_t dim, float eps,
           cudaStream_t stream) {
  if (rows == 0) return 0;
  rms_norm_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(weight), static_cast<T*>(out), dim, eps);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_rms_norm(const void* x, const void* weight, void* out, int64_t rows, int64_t dim,
                    float eps, ElementType type, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ElementType::kFloat32: return launch<float>(x, weight, out, rows, dim, eps, s);
    case ElementType::kBFloat16: return launch<__nv_bfloat16>(x, weight, out, rows, dim, eps, s);
    case ElementType::kFloat16: return launch<__half>(x, weight, out, rows, dim, eps, s);
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

const char* error_string(int code) { return cudaGetErrorString(static_cast<cudaError_t>(code)); }

}  // namespace mlab::kernels::cuda
