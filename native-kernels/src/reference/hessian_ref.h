// hessian_ref.h — plain references for hessian.h (same contracts and errors).
//   HessianAccumulateRef: H[i,j] = float(H[i,j] + Σ_t x[t,i]·x[t,j]), the sum taken in double.
//   PrepareHessianRef: literally GPTQ's sequence (arXiv 2210.17323; IST-DASLab/gptq, fasterquant) in
//     double: H = 2/count·S permuted, dead diag → 1, damped; L = chol(H); H⁻¹ = L⁻ᵀ·L⁻¹
//     (cholesky_inverse); U = chol(H⁻¹)ᵀ, the upper factor — all unblocked and single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>

#include "hessian.h"

namespace whittle {

void HessianAccumulateRef(float* h, const float* x, size_t n, size_t d);

size_t PrepareHessianRef(float* hinv_upper, uint8_t* dead, const float* sum, size_t d, const HessianPrepOptions& opts);

}  // namespace whittle
