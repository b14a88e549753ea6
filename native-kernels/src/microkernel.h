// microkernel.h — the 6×16 AVX2 register tile (and its 6×32 AVX-512 twin) shared by the GEMM (gemm.cc) and the Hessian's symmetric rank-n
// update (hessian.cc), on packed panels:
//   acc[r][h] (8 floats) = Σ_kk Ap[kk][r] · Bp[kk][8h .. 8h+7]     r < 6, h < 2,  Ap[kc][6], Bp[kc][16]
// 12 accumulators stay in AVX2 registers, 2 FMAs per broadcast value of A. Callers decide how the tile
// meets its destination (scaled, added, clipped at the edges).
#pragma once

#include <cstddef>

#include "cpu_features.h"

namespace whittle {

constexpr size_t kTileRows = 6;   // rows of the register tile (MR)
constexpr size_t kTileCols = 16;  // columns: two 8-float AVX registers (NR)

}  // namespace whittle

#if WHITTLE_X86_SIMD
#include <immintrin.h>

namespace whittle {

WHITTLE_TARGET_AVX2 __attribute__((always_inline)) inline void FmaTile6x16(size_t kc, const float* ap, const float* bp,
                                                                          __m256 (&acc)[kTileRows][2]) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (size_t kk = 0; kk < kc; kk++) {
    const __m256 b0 = _mm256_loadu_ps(bp + kk * kTileCols);
    const __m256 b1 = _mm256_loadu_ps(bp + kk * kTileCols + 8);
    const float* a = ap + kk * kTileRows;
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00), c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10), c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20), c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30), c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40), c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50), c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11, acc[2][0] = c20, acc[2][1] = c21;
  acc[3][0] = c30, acc[3][1] = c31, acc[4][0] = c40, acc[4][1] = c41, acc[5][0] = c50, acc[5][1] = c51;
}

}  // namespace whittle
#endif

#if WHITTLE_X86_SIMD
namespace whittle {

// The AVX-512 tile: 6 rows × 32 columns, two adjacent 16-wide B panels (bp0, bp1: [kc][16] each), 12
// accumulators in ZMM registers, 2 FMAs per broadcast value of A:
//   acc[r][h] (16 floats) = Σ_kk Ap[kk][r] · Bp_h[kk][0 .. 15]
WHITTLE_TARGET_AVX512 __attribute__((always_inline)) inline void FmaTile6x32(size_t kc, const float* ap, const float* bp0,
                                                                            const float* bp1, __m512 (&acc)[kTileRows][2]) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  for (size_t kk = 0; kk < kc; kk++) {
    const __m512 b0 = _mm512_loadu_ps(bp0 + kk * kTileCols);
    const __m512 b1 = _mm512_loadu_ps(bp1 + kk * kTileCols);
    const float* a = ap + kk * kTileRows;
    __m512 av = _mm512_set1_ps(a[0]);
    c00 = _mm512_fmadd_ps(av, b0, c00), c01 = _mm512_fmadd_ps(av, b1, c01);
    av = _mm512_set1_ps(a[1]);
    c10 = _mm512_fmadd_ps(av, b0, c10), c11 = _mm512_fmadd_ps(av, b1, c11);
    av = _mm512_set1_ps(a[2]);
    c20 = _mm512_fmadd_ps(av, b0, c20), c21 = _mm512_fmadd_ps(av, b1, c21);
    av = _mm512_set1_ps(a[3]);
    c30 = _mm512_fmadd_ps(av, b0, c30), c31 = _mm512_fmadd_ps(av, b1, c31);
    av = _mm512_set1_ps(a[4]);
    c40 = _mm512_fmadd_ps(av, b0, c40), c41 = _mm512_fmadd_ps(av, b1, c41);
    av = _mm512_set1_ps(a[5]);
    c50 = _mm512_fmadd_ps(av, b0, c50), c51 = _mm512_fmadd_ps(av, b1, c51);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11, acc[2][0] = c20, acc[2][1] = c21;
  acc[3][0] = c30, acc[3][1] = c31, acc[4][0] = c40, acc[4][1] = c41, acc[5][0] = c50, acc[5][1] = c51;
}

// Lane masks for the first `cols` (0..32) of a 32-wide tile: the low 16 and the high 16 columns.
inline __mmask16 LowMask(size_t cols) { return cols >= 16 ? __mmask16(0xffff) : __mmask16((1u << cols) - 1); }
inline __mmask16 HighMask(size_t cols) { return cols <= 16 ? __mmask16(0) : LowMask(cols - 16); }

}  // namespace whittle
#endif
