// gemm_ref.h — naive triple-loop GEMM, the reference for gemm.cc.
//
//   C[M,N] = alpha * A[M,K] · op(B) + beta * C   (row-major; op(B) = B[K,N] or, with transB, B[N,K]ᵀ)
// Each dot product is summed in double and rounded to float once, so it is (nearly) exact: tests
// bound |fast - ref| by (K + 4) · 2^-23 · (|alpha| Σ_k |a_ik||b_kj| + |beta||c_ij|).
// Same beta == 0 / alpha == 0 conventions as gemm.h.
#pragma once

#include <cstddef>

namespace whittle {

void GemmRef(float* c, const float* a, const float* b, size_t m, size_t n, size_t k, bool trans_b, float alpha,
             float beta);

}  // namespace whittle
