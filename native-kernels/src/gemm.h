// gemm.h — single-precision matrix multiply, blocked and multi-threaded.
//
//   C[M,N] = alpha * A[M,K] · op(B) + beta * C[M,N]      (all row-major)
//   op(B) = B[K,N], or with transB: B is stored [N,K] and op(B) = Bᵀ.
// beta == 0 means C is only written (whatever it held, NaN included, is ignored); alpha == 0 skips
// the product (BLAS conventions). Reference: reference/gemm_ref.h.
#pragma once

#include <cstddef>

namespace whittle {

void Gemm(float* c, const float* a, const float* b, size_t m, size_t n, size_t k, bool trans_b, float alpha,
          float beta);

}  // namespace whittle
