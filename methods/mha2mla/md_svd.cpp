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

namespace {

// The rank-R factors of W' = U_R U_R^T W, U_R the top-R eigenvectors of M = W S W^T (eigenvalues
// lambda): up = U_R diag(lambda_R)^1/4, down = diag(lambda_R)^-1/4 U_R^T W. W' X is the best rank-R
// approximation of W X (Eckart-Young on W X, whose left singular vectors are M's eigenvectors),
// and the factors are exactly Algorithm 1's: with S = U_s diag(s) U_s^T and D = W U_s diag(s)^1/2
// = U_d diag(d) V_d^T, D D^T = M gives U_d = U_R, d^2 = lambda, so
// up = U_d diag(d)^1/2 and diag(d)^1/2 V_d^T diag(s)^-1/2 U_s^T = diag(d)^-1/2 U_d^T W. This route
// needs one symmetric eigendecomposition of a rows x rows matrix (rows = n_kv (2D - r) < E) and no
// inverse square root of S's eigenvalues, so a singular S (few tokens of a modality) stays finite.
LowRankFactors top_eigen_factors(const at::Tensor& w64, const at::Tensor& m, int64_t rank,
                                 double eps, bool orthonormal_down) {
  auto [lambda, u] = at::linalg_eigh((m + m.transpose(0, 1)) * 0.5, "L");  // ascending
  const int64_t n = lambda.size(0);
  const double top = lambda[n - 1].item<double>();
  MLAB_CHECK(top > 0, "low-rank init: W S W^T is zero (no calibration tokens?)");
  const at::Tensor lr = lambda.narrow(0, n - rank, rank).flip(0).clamp_min(eps * top);
  const at::Tensor ur = u.narrow(1, n - rank, rank).flip(1);
  // Algorithm 1 balances the factors (d^1/2 = lambda^1/4 each side); the plain weight SVD keeps
  // MHA2MLA's convention down = V_R^T (orthonormal rows), up = U_R S_R (lambda^1/2).
  const at::Tensor root = orthonormal_down ? lr.sqrt() : lr.sqrt().sqrt();
  return {ur * root, at::matmul(ur.transpose(0, 1), w64) / root.unsqueeze(1)};
}

}  // namespace

LowRankFactors weight_svd(const at::Tensor& w, int64_t rank) {
  check_rank(w, rank);
  const at::Tensor w64 = w.to(at::kDouble);
  return top_eigen_factors(w64, at::matmul(w64, w64.transpose(0, 1)), rank, 1e-14, true);
}

LowRankFactors activation_svd(const at::Tensor& w, const at::Tensor& s, int64_t rank, double eps) {
  check_rank(w, rank);
  MLAB_CHECK(s.dim() == 2 && s.size(0) == w.size(1) && s.size(1) == w.size(1),
             "activation SVD: covariance ", s.sizes(), " must be [E, E] with E = ", w.size(1));
  const at::Tensor w64 = w.to(at::kDouble);
  const at::Tensor ws = at::matmul(w64, s.to(at::kDouble));
  return top_eigen_factors(w64, at::matmul(ws, w64.transpose(0, 1)), rank, eps, false);
}

double activation_loss(const at::Tensor& w, const LowRankFactors& f, const at::Tensor& s) {
  const at::Tensor dw = w.to(at::kDouble) - at::matmul(f.up, f.down);
  return at::matmul(at::matmul(dw, s.to(at::kDouble)), dw.transpose(0, 1)).trace().item<double>();
}

}  // namespace mlab::methods
