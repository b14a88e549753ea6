// linalg.cc — float64 GEMM tile, blocked Cholesky and blocked lower-triangular inverse (see linalg.h).
//
// GemmTileF64 follows gemm.cc (GotoBLAS / BLIS: Goto & van de Geijn, ACM TOMS 2008): slices of KC along
// k; op(B) packed into NR-wide column panels Bp[panel][kk][NR]; A packed one MR-tall panel at a time
// Ap[kk][MR]; a 6×8 micro-kernel keeps C's block in 12 AVX2 registers (4 doubles each, FMA), or plain
// loops on the baseline path. Packing buffers are per thread.
//
// CholeskyLower, right-looking with blocks of NB columns (dpotrf):
//   for each block column k0..k1:
//     L11 = chol(A11)                               unblocked, NB×NB
//     L21 = A21 · L11⁻ᵀ                             rows below, in parallel (forward substitution per row)
//     A22 -= L21 · L21ᵀ                             lower TILE×TILE tiles of the trailing matrix, in parallel
// InvertLower, backward over block columns (dtrtri, lower): with M = L⁻¹ already formed below and right
// of block j (M22 = L22⁻¹),
//     M11 = L11⁻¹                                   unblocked
//     M21 = −M22 · L21 · M11                        row tiles in parallel; M22 is lower triangular (zero
//                                                   above its diagonal), so row tile r0..r1 only needs
//                                                   M22[r0:r1, j1:r1].
// Cost: d³/3 multiply-adds each (Cholesky d³/6 + its panel; inverse d³/6 + d²·NB/2).
#include "linalg.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/linalg_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {
namespace {

constexpr size_t MR = 6;      // micro-kernel rows
constexpr size_t NR = 8;      // micro-kernel columns (two 4-double AVX registers)
constexpr size_t KC = 256;    // depth of one packed slice
constexpr size_t NB = 128;    // block columns of the factorizations
constexpr size_t TILE = 192;  // square tiles of the trailing update / row tiles of the inverse (32·MR, 24·NR)

// Bp[panel][kk][NR] = op(B)[k0 + kk, panel·NR + j], zero beyond n.
void PackB(double* bp, const double* b, size_t ldb, bool trans_b, size_t n, size_t k0, size_t kc) {
  for (size_t p = 0; p * NR < n; p++) {
    double* dst = bp + p * kc * NR;
    const size_t j0 = p * NR;
    const size_t cols = std::min(NR, n - j0);
    if (!trans_b) {
      for (size_t kk = 0; kk < kc; kk++) {
        const double* row = b + (k0 + kk) * ldb + j0;
        double* out = dst + kk * NR;
        for (size_t j = 0; j < cols; j++) out[j] = row[j];
        for (size_t j = cols; j < NR; j++) out[j] = 0.0;
      }
    } else {
      for (size_t j = 0; j < NR; j++) {
        if (j < cols) {
          const double* col = b + (j0 + j) * ldb + k0;
          for (size_t kk = 0; kk < kc; kk++) dst[kk * NR + j] = col[kk];
        } else {
          for (size_t kk = 0; kk < kc; kk++) dst[kk * NR + j] = 0.0;
        }
      }
    }
  }
}

// Ap[kk][MR] = A[i0 + r, k0 + kk], zero beyond `rows`.
void PackAPanel(double* ap, const double* a, size_t lda, size_t i0, size_t rows, size_t k0, size_t kc) {
  for (size_t r = 0; r < MR; r++) {
    if (r < rows) {
      const double* src = a + (i0 + r) * lda + k0;
      for (size_t kk = 0; kk < kc; kk++) ap[kk * MR + r] = src[kk];
    } else {
      for (size_t kk = 0; kk < kc; kk++) ap[kk * MR + r] = 0.0;
    }
  }
}

// C[mr, nr] += alpha · Ap[kc][MR] · Bp[kc][NR], portable loops.
void MicroF64Baseline(size_t kc, const double* ap, const double* bp, double* c, size_t ldc, double alpha, size_t mr,
                      size_t nr) {
  double acc[MR][NR] = {};
  for (size_t kk = 0; kk < kc; kk++) {
    const double* a = ap + kk * MR;
    const double* b = bp + kk * NR;
    for (size_t r = 0; r < MR; r++) {
      for (size_t j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
    }
  }
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] += alpha * acc[r][j];
  }
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void MicroF64Avx2(size_t kc, const double* ap, const double* bp, double* c, size_t ldc,
                                      double alpha, size_t mr, size_t nr) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
  __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
  for (size_t kk = 0; kk < kc; kk++) {
    const __m256d b0 = _mm256_loadu_pd(bp + kk * NR);
    const __m256d b1 = _mm256_loadu_pd(bp + kk * NR + 4);
    const double* a = ap + kk * MR;
    __m256d av = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(av, b0, c00), c01 = _mm256_fmadd_pd(av, b1, c01);
    av = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(av, b0, c10), c11 = _mm256_fmadd_pd(av, b1, c11);
    av = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(av, b0, c20), c21 = _mm256_fmadd_pd(av, b1, c21);
    av = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(av, b0, c30), c31 = _mm256_fmadd_pd(av, b1, c31);
    av = _mm256_broadcast_sd(a + 4);
    c40 = _mm256_fmadd_pd(av, b0, c40), c41 = _mm256_fmadd_pd(av, b1, c41);
    av = _mm256_broadcast_sd(a + 5);
    c50 = _mm256_fmadd_pd(av, b0, c50), c51 = _mm256_fmadd_pd(av, b1, c51);
  }
  const __m256d valpha = _mm256_set1_pd(alpha);
  const __m256d acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (size_t r = 0; r < MR; r++) {
      double* row = c + r * ldc;
      _mm256_storeu_pd(row, _mm256_fmadd_pd(valpha, acc[r][0], _mm256_loadu_pd(row)));
      _mm256_storeu_pd(row + 4, _mm256_fmadd_pd(valpha, acc[r][1], _mm256_loadu_pd(row + 4)));
    }
    return;
  }
  alignas(32) double tmp[MR][NR];
  for (size_t r = 0; r < MR; r++) {
    _mm256_store_pd(tmp[r], _mm256_mul_pd(valpha, acc[r][0]));
    _mm256_store_pd(tmp[r] + 4, _mm256_mul_pd(valpha, acc[r][1]));
  }
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] += tmp[r][j];
  }
}
#endif

// The unblocked Cholesky of the diagonal block A[k0:k1, k0:k1] after all earlier updates. Returns k1 or
// the failing pivot's index.
size_t CholeskyDiagonalBlock(double* a, size_t d, size_t k0, size_t k1, double* pivot) {
  for (size_t j = k0; j < k1; j++) {
    double* rj = a + j * d;
    double s = rj[j];
    for (size_t p = k0; p < j; p++) s -= rj[p] * rj[p];
    if (!(s > 0.0) || !std::isfinite(s)) {
      *pivot = s;
      return j;
    }
    const double l = std::sqrt(s);
    rj[j] = l;
    for (size_t i = j + 1; i < k1; i++) {
      double* ri = a + i * d;
      double t = ri[j];
      for (size_t p = k0; p < j; p++) t -= ri[p] * rj[p];
      ri[j] = t / l;
    }
  }
  return k1;
}

// (I, J) with J <= I for the t-th tile of a lower triangle of tiles, row by row: t = I(I+1)/2 + J.
void LowerTile(size_t t, size_t* i, size_t* j) {
  size_t r = static_cast<size_t>((std::sqrt(8.0 * static_cast<double>(t) + 1.0) - 1.0) / 2.0);
  while (r * (r + 1) / 2 > t) r--;
  while ((r + 1) * (r + 2) / 2 <= t) r++;
  *i = r;
  *j = t - r * (r + 1) / 2;
}

// The diagonal block B[nb×nb] (row stride d) of a lower-triangular matrix → its inverse, in place:
// row i of L⁻¹ is −(Σ_{p<i} L[i,p]·M[p,:]) / L[i,i] with rows p < i of M already formed.
void InvertDiagonalBlock(double* blk, size_t d, size_t nb) {
  std::vector<double> row(nb);
  for (size_t i = 0; i < nb; i++) {
    double* li = blk + i * d;
    const double inv = 1.0 / li[i];
    for (size_t j = 0; j < i; j++) {
      double s = 0.0;
      for (size_t p = j; p < i; p++) s += li[p] * blk[p * d + j];
      row[j] = -s * inv;
    }
    for (size_t j = 0; j < i; j++) li[j] = row[j];
    li[i] = inv;
  }
}

}  // namespace

void GemmTileF64(double* c, size_t ldc, const double* a, size_t lda, const double* b, size_t ldb, bool trans_b,
                 size_t m, size_t n, size_t k, double alpha) {
  if (m == 0 || n == 0 || k == 0) return;
  auto kernel = MicroF64Baseline;
#if WHITTLE_X86_SIMD
  if (UseAvx2()) kernel = MicroF64Avx2;
#endif
  thread_local std::vector<double> bp_buffer, ap_buffer;
  const size_t n_panels = CeilDiv(n, NR);
  const size_t kc_max = std::min(KC, k);
  if (bp_buffer.size() < n_panels * NR * kc_max) bp_buffer.resize(n_panels * NR * kc_max);
  if (ap_buffer.size() < MR * kc_max) ap_buffer.resize(MR * kc_max);
  double* bp = bp_buffer.data();
  double* ap = ap_buffer.data();
  for (size_t k0 = 0; k0 < k; k0 += KC) {
    const size_t kc = std::min(KC, k - k0);
    PackB(bp, b, ldb, trans_b, n, k0, kc);
    for (size_t i0 = 0; i0 < m; i0 += MR) {
      const size_t mr = std::min(MR, m - i0);
      PackAPanel(ap, a, lda, i0, mr, k0, kc);
      for (size_t p = 0; p < n_panels; p++) {
        const size_t j0 = p * NR;
        kernel(kc, ap, bp + p * kc * NR, c + i0 * ldc + j0, ldc, alpha, mr, std::min(NR, n - j0));
      }
    }
  }
}

size_t CholeskyLower(double* a, size_t d, double* pivot) {
  for (size_t k0 = 0; k0 < d; k0 += NB) {
    const size_t k1 = std::min(k0 + NB, d);
    const size_t failed = CholeskyDiagonalBlock(a, d, k0, k1, pivot);
    if (failed != k1) return failed;
    if (k1 == d) break;
    const size_t rows = d - k1;

    // L21 = A21 · L11⁻ᵀ: each row x of A21 solves x · L11ᵀ = a by forward substitution, column-oriented
    // (x_j /= L[j,j], then x_p −= x_j · L[p,j] for p > j) so the inner loop is a vectorizable axpy over
    // a row of L11ᵀ rather than a latency-bound dot product.
    const size_t nb = k1 - k0;
    std::vector<double> l11t(nb * nb);  // L11ᵀ
    for (size_t j = 0; j < nb; j++) {
      for (size_t p = j; p < nb; p++) l11t[j * nb + p] = a[(k0 + p) * d + k0 + j];
    }
    constexpr size_t kRowsPerTask = 32;
    ParallelFor(CeilDiv(rows, kRowsPerTask), [&](size_t t) {
      const size_t r_end = std::min(d, k1 + (t + 1) * kRowsPerTask);
      for (size_t i = k1 + t * kRowsPerTask; i < r_end; i++) {
        double* __restrict x = a + i * d + k0;
        for (size_t j = 0; j < nb; j++) {
          const double* __restrict lt = l11t.data() + j * nb;
          const double xj = x[j] / lt[j];
          x[j] = xj;
          for (size_t p = j + 1; p < nb; p++) x[p] -= xj * lt[p];
        }
      }
    });

    // A22 -= L21 · L21ᵀ on the tiles of A22's lower triangle (diagonal tiles in full).
    const size_t tiles = CeilDiv(rows, TILE);
    ParallelFor(tiles * (tiles + 1) / 2, [&](size_t t) {
      size_t ti, tj;
      LowerTile(t, &ti, &tj);
      const size_t i0 = k1 + ti * TILE, j0 = k1 + tj * TILE;
      GemmTileF64(a + i0 * d + j0, d, a + i0 * d + k0, d, a + j0 * d + k0, d, true, std::min(TILE, d - i0),
                  std::min(TILE, d - j0), k1 - k0, -1.0);
    });
  }
  ParallelFor(CeilDiv(d, TILE), [&](size_t t) {
    const size_t r_end = std::min(d, (t + 1) * TILE);
    for (size_t i = t * TILE; i < r_end; i++) std::fill(a + i * d + i + 1, a + (i + 1) * d, 0.0);
  });
  return d;
}

void InvertLower(double* a, size_t d) {
  std::vector<double> panel, product;
  for (size_t block = CeilDiv(d, NB); block-- > 0;) {
    const size_t j0 = block * NB;
    const size_t j1 = std::min(j0 + NB, d);
    const size_t nb = j1 - j0;
    InvertDiagonalBlock(a + j0 * d + j0, d, nb);
    if (j1 == d) continue;
    const size_t rows = d - j1;
    panel.resize(rows * nb);    // L21 [rows × nb], copied: the tiles overwrite it with M21
    product.resize(rows * nb);  // M22 · L21
    ParallelFor(CeilDiv(rows, TILE), [&](size_t t) {
      const size_t r_end = std::min(d, j1 + (t + 1) * TILE);
      for (size_t i = j1 + t * TILE; i < r_end; i++) std::copy_n(a + i * d + j0, nb, panel.data() + (i - j1) * nb);
    });
    const size_t tiles = CeilDiv(rows, TILE);
    ParallelFor(tiles, [&](size_t t) {
      const size_t tile = tiles - 1 - t;  // the longest rows first
      const size_t r0 = j1 + tile * TILE;
      const size_t r1 = std::min(d, r0 + TILE);
      double* prod = product.data() + (r0 - j1) * nb;
      std::fill(prod, prod + (r1 - r0) * nb, 0.0);
      // prod = M22[r0:r1, j1:r1] · L21[0:r1-j1, :]   (M22 is zero above its diagonal)
      GemmTileF64(prod, nb, a + r0 * d + j1, d, panel.data(), nb, false, r1 - r0, nb, r1 - j1, 1.0);
      // M21[r0:r1, :] = −prod · M11
      for (size_t i = r0; i < r1; i++) std::fill(a + i * d + j0, a + i * d + j1, 0.0);
      GemmTileF64(a + r0 * d + j0, d, prod, nb, a + j0 * d + j0, d, false, r1 - r0, nb, nb, -1.0);
    });
  }
}

// ---- bindings ---------------------------------------------------------------------------------------
// choleskyLower(a: Float64Array [d×d], d): Promise<number>  — in place; resolves with -1 when A was
//   positive definite, otherwise with the index of the first pivot that was not positive.
// invertLower(a: Float64Array [d×d], d): Promise<Float64Array>  — L → L⁻¹ in place, resolves with a.
// choleskyLowerRef / invertLowerRef: same arguments, synchronous (the unblocked references).

namespace {

struct SquareArgs {
  ArrayArg<double> a;
  size_t d = 0;
};

SquareArgs ParseSquare(const Napi::CallbackInfo& info, const char* fn) {
  SquareArgs s;
  s.a = ArgArray<double>(info, 0, "a (a Float64Array)", napi_float64_array);
  s.d = ArgSize(info, 1, "d");
  if (s.a.length != s.d * s.d) {
    ThrowInvalid(info.Env(), std::string(fn) + ": a must hold d·d = " + std::to_string(s.d * s.d) +
                                 " elements, but it has " + std::to_string(s.a.length) + ".");
  }
  return s;
}

Napi::Value CholeskyLowerJs(const Napi::CallbackInfo& info) {
  SquareArgs s = ParseSquare(info, "choleskyLower");
  auto failed = std::make_shared<size_t>(0);
  auto* worker = new KernelWorker(
      info.Env(), "choleskyLower",
      [a = s.a.data, d = s.d, failed] {
        double pivot = 0.0;
        *failed = CholeskyLower(a, d, &pivot);
      },
      [failed, d = s.d](Napi::Env env, const KernelWorker&) -> Napi::Value {
        return Napi::Number::New(env, *failed == d ? -1.0 : static_cast<double>(*failed));
      });
  worker->Keep(s.a.object);
  return KernelWorker::Start(worker);
}

Napi::Value CholeskyLowerRefJs(const Napi::CallbackInfo& info) {
  SquareArgs s = ParseSquare(info, "choleskyLowerRef");
  size_t failed = 0;
  RunSync(info.Env(), [&] {
    double pivot = 0.0;
    failed = CholeskyLowerRef(s.a.data, s.d, &pivot);
  });
  return Napi::Number::New(info.Env(), failed == s.d ? -1.0 : static_cast<double>(failed));
}

Napi::Value InvertLowerJs(const Napi::CallbackInfo& info) {
  SquareArgs s = ParseSquare(info, "invertLower");
  auto* worker = new KernelWorker(
      info.Env(), "invertLower", [a = s.a.data, d = s.d] { InvertLower(a, d); },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(s.a.object);
  return KernelWorker::Start(worker);
}

void InvertLowerRefJs(const Napi::CallbackInfo& info) {
  SquareArgs s = ParseSquare(info, "invertLowerRef");
  RunSync(info.Env(), [&] { InvertLowerRef(s.a.data, s.d); });
}

}  // namespace

void RegisterLinalg(Napi::Env env, Napi::Object exports) {
  exports.Set("choleskyLower", Napi::Function::New(env, CholeskyLowerJs, "choleskyLower"));
  exports.Set("choleskyLowerRef", Napi::Function::New(env, CholeskyLowerRefJs, "choleskyLowerRef"));
  exports.Set("invertLower", Napi::Function::New(env, InvertLowerJs, "invertLower"));
  exports.Set("invertLowerRef", Napi::Function::New(env, InvertLowerRefJs, "invertLowerRef"));
}

}  // namespace whittle
