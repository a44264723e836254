// Kernel speed beside its peers in the same run: mlab's RMSNorm kernel vs the ATen reference
// (HF's formula as eager ops) vs ATen's fused at::rms_norm. On CUDA, timed with CUDA events.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#if MLAB_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "kernels/rms_norm.hpp"

namespace {

enum class Impl { kMlab, kReference, kAtenFused };

at::Tensor run(Impl impl, const at::Tensor& x, const at::Tensor& w) {
  switch (impl) {
    case Impl::kMlab: return mlab::kernels::rms_norm(x, w, 1e-6);
    case Impl::kReference: return mlab::kernels::rms_norm_reference(x, w, 1e-6);
    case Impl::kAtenFused: return at::rms_norm(x, {x.size(-1)}, w, 1e-6);
  }
  return {};
}

void bench_rms_norm(benchmark::State& state, Impl impl, at::Device device, at::ScalarType dtype) {
  const int64_t rows = state.range(0), dim = state.range(1);
  const auto x = at::randn({rows, dim}, at::device(device)).to(dtype);
  const auto w = at::randn({dim}, at::device(device)).to(dtype);
  for (auto _ : state) {
#if MLAB_WITH_CUDA
    if (device.is_cuda()) {
      at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
      start.record();
      benchmark::DoNotOptimize(run(impl, x, w));
      stop.record();
      stop.synchronize();
      state.SetIterationTime(start.elapsed_time(stop) / 1e3);
      continue;
    }
#endif
    benchmark::DoNotOptimize(run(impl, x, w));
  }
  const double bytes = 2.0 * static_cast<double>(x.nbytes());  // read x, write y
  state.SetBytesProcessed(static_cast<int64_t>(bytes) * state.iterations());
}

void register_all() {
  std::vector<std::pair<std::string, at::Device>> devices = {{"cpu", at::kCPU}};
#if MLAB_WITH_CUDA
  if (at::hasCUDA()) devices.emplace_back("cuda", at::Device(at::kCUDA));
#endif
  const std::vector<std::pair<std::string, Impl>> impls = {
      {"mlab", Impl::kMlab}, {"reference", Impl::kReference}, {"aten_fused", Impl::kAtenFused}};
  for (const auto& [device_name, device] : devices) {
    for (const auto& [dtype_name, dtype] :
         std::vector<std::pair<std::string, at::ScalarType>>{{"f32", at::kFloat},
                                                             {"bf16", at::kBFloat16}}) {
      for (const auto& [impl_name, impl] : impls) {
        const std::string name = "rms_norm/" + device_name + "/" + dtype_name + "/" + impl_name;
        auto* b = benchmark::RegisterBenchmark(
            name.c_str(), [impl = impl, device = device, dtype = dtype](benchmark::State& s) {
              bench_rms_norm(s, impl, device, dtype);
            });
        b->Args({1, 4096})->Args({512, 4096})->Args({4096, 3584});
        if (device.is_cuda()) b->UseManualTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
