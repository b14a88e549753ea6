// linalg_ref.h — plain, unblocked, single-threaded float64 Cholesky and lower-triangular inverse: the
// references for linalg.h (same contracts). Row-major [d×d].
//   CholeskyLowerRef: A = L·Lᵀ (lower triangle read), L[i,j] = (A[i,j] − Σ_{p<j} L[i,p]·L[j,p]) / L[j,j],
//     L[j,j] = sqrt(A[j,j] − Σ_{p<j} L[j,p]²); the strict upper triangle is set to 0. Returns d, or the
//     index of the first pivot that is not positive (its value in *pivot).
//   InvertLowerRef: L → L⁻¹ by forward substitution, one column of the identity at a time:
//     M[i,j] = (δ_ij − Σ_{j<=p<i} L[i,p]·M[p,j]) / L[i,i].
#pragma once

#include <cstddef>

namespace whittle {

size_t CholeskyLowerRef(double* a, size_t d, double* pivot);

void InvertLowerRef(double* a, size_t d);

}  // namespace whittle
