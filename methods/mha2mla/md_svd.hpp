#pragma once
// Low-rank initialisations of MHA2MLA-VLM's joint K/V latent (Fan et al. 2026, §2.2, Algorithm 1;
// specs/method.md §3.3, §3.5):
//   weight SVD   W ~ U_r S_r V_r^T: down = V_r^T, up = U_r S_r (MHA2MLA's "SVD_joint");
//   activation-aware SVD (SVD-LLM-V2) for a covariance S = X X^T: with S = U_s diag(s) U_s^T,
//   D = W U_s diag(s)^1/2 = U_d diag(d) V_d^T, up = U_d,r diag(d_r)^1/2,
//   down = diag(d_r)^1/2 V_d,r^T diag(s)^-1/2 U_s^T — the minimiser of ||(W - up down) X||_F.
// MD-SVD runs it once per modality (S_image, S_text); "joint" runs it on S_image + S_text.
// All in f64, computed as the top eigenvectors of W S W^T (md_svd.cpp shows the factors are
// Algorithm 1's): the authors use f32 SVDs of S and of D and explicit inverses with no clamp; the
// result is the same when S is well conditioned and stays finite when it is not (eigenvalues of
// W S W^T below eps * max are clamped).
#include <ATen/core/Tensor.h>

namespace mlab::methods {

struct LowRankFactors {
  at::Tensor up;    // f64 [rows, R]
  at::Tensor down;  // f64 [R, E]
};

// W: [rows, E] -> rank-R factors of the plain SVD.
LowRankFactors weight_svd(const at::Tensor& w, int64_t rank);

// W: [rows, E], S: [E, E] symmetric PSD (the activations' second moment) -> rank-R factors
// minimising ||(W - up down) X||_F with X X^T = S. Eigenvalues below eps * max are clamped.
LowRankFactors activation_svd(const at::Tensor& w, const at::Tensor& s, int64_t rank,
                              double eps = 1e-10);

// ||(W - up down) X||_F^2 = tr(dW S dW^T) (f64 scalar as double).
double activation_loss(const at::Tensor& w, const LowRankFactors& f, const at::Tensor& s);

}  // namespace mlab::methods
