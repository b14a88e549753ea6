// linalg.h — dense float64 linear algebra for the Hessian core (GPTQ, SparseGPT): a packed GEMM tile,
// a blocked right-looking Cholesky factorization and a blocked lower-triangular inverse, multi-threaded
// over tiles with ParallelFor. Matrices are row-major with a leading dimension; d up to ~16k.
// References (plain, unblocked, single-threaded): reference/linalg_ref.h.
// Algorithms: Golub & Van Loan, "Matrix Computations" (4th ed.), §4.2.9 (block Cholesky) and LAPACK
// dpotrf / dtrtri (lower, right-looking / backward blocked variants).
#pragma once

#include <cstddef>

namespace whittle {

// C[m×n] += alpha · A[m×k] · op(B); op(B) = B[k×n] (row stride ldb), or with trans_b B is stored [n×k]
// and op(B) = Bᵀ. Row strides ldc, lda. Serial: callers run many tiles in parallel. AVX2+FMA micro-kernel
// where available (UseAvx2()), portable loops otherwise.
void GemmTileF64(double* c, size_t ldc, const double* a, size_t lda, const double* b, size_t ldb, bool trans_b,
                 size_t m, size_t n, size_t k, double alpha);

// A[d×d] = L·Lᵀ for a symmetric positive definite A (only the lower triangle is read). L overwrites the
// lower triangle and the strict upper triangle is set to 0. Returns d on success; otherwise the index j
// of the first pivot A[j,j] − Σ L[j,p]² that is not positive (or not finite), with that value in
// *pivot, and A is left partly factored.
size_t CholeskyLower(double* a, size_t d, double* pivot);

// L[d×d] lower triangular with a non-zero diagonal and a zero strict upper triangle → L⁻¹ in place
// (also lower triangular, strict upper triangle stays 0).
void InvertLower(double* a, size_t d);

}  // namespace whittle
