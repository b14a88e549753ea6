// hessian_ref.cc — plain Hessian accumulation and preparation (see hessian_ref.h).
#include "reference/hessian_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "reference/linalg_ref.h"

namespace whittle {

using namespace hessian_detail;

void HessianAccumulateRef(float* h, const float* x, size_t n, size_t d) {
  for (size_t i = 0; i < d; i++) {
    for (size_t j = 0; j < d; j++) {
      double s = 0.0;
      for (size_t t = 0; t < n; t++) s += static_cast<double>(x[t * d + i]) * static_cast<double>(x[t * d + j]);
      h[i * d + j] = static_cast<float>(static_cast<double>(h[i * d + j]) + s);
    }
  }
}

size_t PrepareHessianRef(float* hinv_upper, uint8_t* dead, const float* sum, size_t d, const HessianPrepOptions& o) {
  const double scale = 2.0 / o.count;
  auto input = [&](size_t a) { return o.order ? static_cast<size_t>(o.order[a]) : a; };

  // H in sweep order (a, b), dead inputs' diagonal 1, then damped.
  std::vector<double> h(d * d);
  size_t dead_count = 0;
  double diag_sum = 0.0;
  for (size_t a = 0; a < d; a++) {
    const size_t i = input(a);
    for (size_t b = 0; b < d; b++) {
      const size_t j = input(b);
      if (!std::isfinite(sum[i * d + j])) ThrowNotFinite(o.label, i, j);
      h[a * d + b] = scale * static_cast<double>(sum[i * d + j]);
    }
    dead[i] = sum[i * d + i] == 0.0f ? 1 : 0;
    dead_count += dead[i];
    h[a * d + a] = DiagonalOf(sum, d, i, scale);
    diag_sum += h[a * d + a];
  }
  const double damp = o.percdamp * (diag_sum / static_cast<double>(d));
  for (size_t a = 0; a < d; a++) h[a * d + a] += damp;

  // L = chol(H)
  double pivot = 0.0;
  size_t failed = CholeskyLowerRef(h.data(), d, &pivot);
  if (failed != d) ThrowNotPositiveDefinite(o.label, input(failed), pivot, o.percdamp);
  // H⁻¹ = L⁻ᵀ·L⁻¹
  InvertLowerRef(h.data(), d);
  std::vector<double> hinv(d * d);
  for (size_t a = 0; a < d; a++) {
    for (size_t b = 0; b < d; b++) {
      double s = 0.0;
      for (size_t p = std::max(a, b); p < d; p++) s += h[p * d + a] * h[p * d + b];
      hinv[a * d + b] = s;
    }
  }
  // U = chol(H⁻¹, upper) = L2ᵀ
  failed = CholeskyLowerRef(hinv.data(), d, &pivot);
  if (failed != d) ThrowIllConditioned(o.label, o.percdamp);
  for (size_t a = 0; a < d; a++) {
    for (size_t b = 0; b < d; b++) {
      const float u = b >= a ? static_cast<float>(hinv[b * d + a]) : 0.0f;
      if (!std::isfinite(u)) ThrowIllConditioned(o.label, o.percdamp);
      hinv_upper[a * d + b] = u;
    }
  }
  return dead_count;
}

}  // namespace whittle
