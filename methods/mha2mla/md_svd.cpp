#include "methods/mha2mla/md_svd.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace mlab::methods {

namespace {

void check_rank(const at::Tensor& w, int64_t rank) {
  MLAB_CHECK(w.dim() == 2, "low-rank init: W must be 2-D, got ", w.dim(), "-D");
  MLAB_CHECK(rank > 0 && rank <= std::min(w.size(0), w.size(1)), "low-rank init: rank ", rank,
             " must be in [1, min(rows ", w.size(0), ", cols ", w.size(1), ")]");
}

}  // namespace

LowRankFactors weight_svd(const at::Tensor& w, int64_t rank) {
  check_rank(w, rank);
  const at::Tensor w64 = w.to(at::kDouble);
  auto [u, s, vh] = at::linalg_svd(w64, /*full_matrices=*/false);
  return {u.narrow(1, 0, rank) * s.narrow(0, 0, rank), vh.narrow(0, 0, rank)};
}

LowRankFactors activation_svd(const at::Tensor& w, const at::Tensor& s, int64_t rank, double eps) {
  check_rank(w, rank);
  MLAB_CHECK(s.dim() == 2 && s.size(0) == w.size(1) && s.size(1) == w.size(1),
             "activation SVD: covariance ", s.sizes(), " must be [E, E] with E = ", w.size(1));
  const at::Tensor w64 = w.to(at::kDouble);
  const at::Tensor s64 = s.to(at::kDouble);
  auto [sigma, us] = at::linalg_eigh((s64 + s64.transpose(0, 1)) * 0.5, "L");  // ascending
  const double top = sigma.max().item<double>();
  MLAB_CHECK(top > 0, "activation SVD: the covariance is zero (no calibration tokens?)");
  sigma = sigma.clamp_min(eps * top);
  const at::Tensor root = sigma.sqrt();
  auto [ud, d, vdh] = at::linalg_svd(at::matmul(w64, us * root), /*full_matrices=*/false);
  const at::Tensor dr = d.narrow(0, 0, rank).sqrt();
  LowRankFactors f;
  f.up = ud.narrow(1, 0, rank) * dr;
  f.down = at::matmul(dr.unsqueeze(1) * vdh.narrow(0, 0, rank) / root, us.transpose(0, 1));
  return f;
}

double activation_loss(const at::Tensor& w, const LowRankFactors& f, const at::Tensor& s) {
  const at::Tensor dw = w.to(at::kDouble) - at::matmul(f.up, f.down);
  return at::matmul(at::matmul(dw, s.to(at::kDouble)), dw.transpose(0, 1)).trace().item<double>();
}

}  // namespace mlab::methods
