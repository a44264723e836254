#include "tests/support/catch_torch.hpp"

#include "kernels/rms_norm.hpp"

namespace {
// The formula written out element by element in double precision (independent of ATen's
// reductions): y_i = w_i * x_i / sqrt(mean(x^2) + eps).
at::Tensor rms_norm_loops(const at::Tensor& x, const at::Tensor& w, double eps) {
  auto xd = x.to(at::kDouble).contiguous();
  auto wd = w.to(at::kDouble).contiguous();
  auto out = at::empty_like(xd);
  const int64_t d = x.size(-1), rows = x.numel() / d;
  const double* px = xd.data_ptr<double>();
  const double* pw = wd.data_ptr<double>();
  double* po = out.data_ptr<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += px[r * d + i] * px[r * d + i];
    const double inv = 1.0 / std::sqrt(sum / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i) po[r * d + i] = pw[i] * px[r * d + i] * inv;
  }
  return out;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}
}  // namespace

TEST_CASE("rms_norm reference matches the formula in fp32", "[kernels][rms_norm]") {
  at::manual_seed(0);
  const auto x = at::randn({3, 5, 64});
  const auto w = at::randn({64});
  const auto y = mlab::kernels::rms_norm(x, w, 1e-6);
  CHECK(y.scalar_type() == at::kFloat);
  CHECK(y.sizes() == x.sizes());
  CHECK(max_abs_diff(y, rms_norm_loops(x, w, 1e-6)) < 1e-5);
}

TEST_CASE("rms_norm rounds to the input dtype before the weight multiply, as HF does",
          "[kernels][rms_norm]") {
  at::manual_seed(1);
  const auto x = at::randn({4, 32}).to(at::kBFloat16);
  const auto w = at::randn({32}).to(at::kBFloat16);
  const auto y = mlab::kernels::rms_norm(x, w, 1e-5);
  const auto normalized = rms_norm_loops(x, at::ones({32}), 1e-5).to(at::kFloat).to(at::kBFloat16);
  CHECK(at::equal(y, (w * normalized)));
}

TEST_CASE("rms_norm rejects mismatched weights with the shapes in the message",
          "[kernels][rms_norm]") {
  REQUIRE_THROWS_WITH(mlab::kernels::rms_norm(at::zeros({2, 8}), at::zeros({7}), 1e-6),
                      Catch::Matchers::Contains("[7]") && Catch::Matchers::Contains("[2, 8]"));
}

TEST_CASE("rms_norm CUDA kernel matches its ATen reference", "[gpu][kernels][rms_norm]") {
  MLAB_REQUIRE_CUDA();
  at::manual_seed(2);
  for (const auto dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
    for (const int64_t dim : {1, 64, 3584, 5000}) {
      const auto x = at::randn({7, dim}, at::device(at::kCUDA)).to(dtype);
      const auto w = at::randn({dim}, at::device(at::kCUDA)).to(dtype);
      const auto kernel = mlab::kernels::rms_norm(x, w, 1e-6);
      const auto reference = mlab::kernels::rms_norm_reference(x, w, 1e-6);
      // fp32: reduction order differs; 16-bit: at most one rounding step of the output.
      const double tol = dtype == at::kFloat ? 1e-5 : (dtype == at::kBFloat16 ? 3e-2 : 4e-3);
      const auto diff = (kernel.to(at::kFloat) - reference.to(at::kFloat)).abs();
      const auto bound = tol * (1 + reference.to(at::kFloat).abs());
      INFO("dtype " << dtype << " dim " << dim << " max |diff| " << diff.max().item<float>());
      CHECK((diff <= bound).all().item<bool>());
      CHECK(max_abs_diff(kernel, rms_norm_loops(x.cpu(), w.cpu(), 1e-6)) <
            (dtype == at::kFloat ? 1e-4 : 0.1) * (1 + reference.abs().max().item<double>()));
    }
  }
}
