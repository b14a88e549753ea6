// gemm.cc — blocked, multi-threaded SGEMM: C[M,N] = alpha · A[M,K] · op(B) + beta · C (see gemm.h).
//
// GotoBLAS / BLIS structure (Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication",
// ACM TOMS 2008, https://doi.org/10.1145/1356052.1356053):
//   for each KC-deep slice of K:
//     pack A[:, kc] into MR-tall row panels      Ap[panel][kk][MR]
//     pack op(B)[kc, :] into NR-wide col panels  Bp[panel][kk][NR]   (both in parallel, 8 panels a task)
//     for each MC×NC tile of C (parallel over tiles):
//       for each MR×NR block: C_block += alpha · Ap_panel · Bp_panel     (micro-kernel)
// The micro-kernel keeps a 6×16 block of C in 12 AVX2 registers and does 2 FMAs per broadcast A value
// (AVX2+FMA path), or plain C++ loops (baseline path). Edge blocks are computed in full on the
// zero-padded panels and only the valid part is added to C. beta is applied to a tile before its first
// slice, so every C element is owned by exactly one task at a time (no races, no atomics).
#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "aligned_buffer.h"
#include "cpu_features.h"
#include "microkernel.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/gemm_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace whittle {
namespace {

constexpr size_t MR = kTileRows;  // micro-kernel rows (microkernel.h)
constexpr size_t NR = kTileCols;  // micro-kernel columns (two 8-float AVX registers)
constexpr size_t KC = 256;  // depth of one packed slice: an Ap panel (6 KiB) + a Bp panel (16 KiB) fit in L1/L2
constexpr size_t MC = 96;   // largest tile of C: MC rows (a 96 KiB slice of Ap, L2) ...
constexpr size_t NC = 256;  // ... by NC columns

// Bp[panel][kk][NR] = op(B)[k0 + kk, panel*NR + j], zero beyond N.
void PackB(float* bp, const float* b, size_t n, size_t k, bool trans_b, size_t k0, size_t kc, size_t panel) {
  float* dst = bp + panel * kc * NR;
  const size_t j0 = panel * NR;
  const size_t cols = std::min(NR, n - j0);
  if (!trans_b) {
    for (size_t kk = 0; kk < kc; kk++) {
      const float* row = b + (k0 + kk) * n + j0;
      float* out = dst + kk * NR;
      std::memcpy(out, row, cols * sizeof(float));
      for (size_t j = cols; j < NR; j++) out[j] = 0.0f;
    }
  } else {
    for (size_t j = 0; j < NR; j++) {
      if (j < cols) {
        const float* col = b + (j0 + j) * k + k0;  // row j0+j of the stored [N,K] matrix
        for (size_t kk = 0; kk < kc; kk++) dst[kk * NR + j] = col[kk];
      } else {
        for (size_t kk = 0; kk < kc; kk++) dst[kk * NR + j] = 0.0f;
      }
    }
  }
}

// Ap[panel][kk][MR] = A[i0 + panel*MR + r, k0 + kk], zero beyond the tile's rows.
void PackA(float* ap, const float* a, size_t k, size_t i0, size_t rows, size_t k0, size_t kc) {
  for (size_t p = 0; p * MR < rows; p++) {
    float* dst = ap + p * kc * MR;
    const size_t r_count = std::min(MR, rows - p * MR);
    for (size_t r = 0; r < MR; r++) {
      if (r < r_count) {
        const float* src = a + (i0 + p * MR + r) * k + k0;
        for (size_t kk = 0; kk < kc; kk++) dst[kk * MR + r] = src[kk];
      } else {
        for (size_t kk = 0; kk < kc; kk++) dst[kk * MR + r] = 0.0f;
      }
    }
  }
}

// C[mr, nr] += alpha * Ap-panel[kc][MR] · Bp-panel[kc][NR], baseline ISA. On x86-64 (SSE2 is part of
// the baseline) the 16 columns are done as two halves of 8 so that the 6×8 accumulator fits in 12 XMM
// registers; elsewhere plain loops, left to the compiler.
void MicroKernelBaseline(size_t kc, const float* ap, const float* bp, float* c, size_t ldc, float alpha, size_t mr,
                         size_t nr) {
  float acc[MR][NR];
#if defined(__SSE2__)
  for (size_t h = 0; h < NR; h += 8) {
    __m128 a0l = _mm_setzero_ps(), a0h = _mm_setzero_ps(), a1l = _mm_setzero_ps(), a1h = _mm_setzero_ps();
    __m128 a2l = _mm_setzero_ps(), a2h = _mm_setzero_ps(), a3l = _mm_setzero_ps(), a3h = _mm_setzero_ps();
    __m128 a4l = _mm_setzero_ps(), a4h = _mm_setzero_ps(), a5l = _mm_setzero_ps(), a5h = _mm_setzero_ps();
    for (size_t kk = 0; kk < kc; kk++) {
      const __m128 bl = _mm_loadu_ps(bp + kk * NR + h);
      const __m128 bh = _mm_loadu_ps(bp + kk * NR + h + 4);
      const float* a = ap + kk * MR;
      __m128 av = _mm_set1_ps(a[0]);
      a0l = _mm_add_ps(a0l, _mm_mul_ps(av, bl)), a0h = _mm_add_ps(a0h, _mm_mul_ps(av, bh));
      av = _mm_set1_ps(a[1]);
      a1l = _mm_add_ps(a1l, _mm_mul_ps(av, bl)), a1h = _mm_add_ps(a1h, _mm_mul_ps(av, bh));
      av = _mm_set1_ps(a[2]);
      a2l = _mm_add_ps(a2l, _mm_mul_ps(av, bl)), a2h = _mm_add_ps(a2h, _mm_mul_ps(av, bh));
      av = _mm_set1_ps(a[3]);
      a3l = _mm_add_ps(a3l, _mm_mul_ps(av, bl)), a3h = _mm_add_ps(a3h, _mm_mul_ps(av, bh));
      av = _mm_set1_ps(a[4]);
      a4l = _mm_add_ps(a4l, _mm_mul_ps(av, bl)), a4h = _mm_add_ps(a4h, _mm_mul_ps(av, bh));
      av = _mm_set1_ps(a[5]);
      a5l = _mm_add_ps(a5l, _mm_mul_ps(av, bl)), a5h = _mm_add_ps(a5h, _mm_mul_ps(av, bh));
    }
    _mm_storeu_ps(acc[0] + h, a0l), _mm_storeu_ps(acc[0] + h + 4, a0h);
    _mm_storeu_ps(acc[1] + h, a1l), _mm_storeu_ps(acc[1] + h + 4, a1h);
    _mm_storeu_ps(acc[2] + h, a2l), _mm_storeu_ps(acc[2] + h + 4, a2h);
    _mm_storeu_ps(acc[3] + h, a3l), _mm_storeu_ps(acc[3] + h + 4, a3h);
    _mm_storeu_ps(acc[4] + h, a4l), _mm_storeu_ps(acc[4] + h + 4, a4h);
    _mm_storeu_ps(acc[5] + h, a5l), _mm_storeu_ps(acc[5] + h + 4, a5h);
  }
#else
  for (size_t r = 0; r < MR; r++) {
    for (size_t j = 0; j < NR; j++) acc[r][j] = 0.0f;
  }
  for (size_t kk = 0; kk < kc; kk++) {
    const float* a = ap + kk * MR;
    const float* b = bp + kk * NR;
    for (size_t r = 0; r < MR; r++) {
      for (size_t j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
    }
  }
#endif
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] += alpha * acc[r][j];
  }
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void MicroKernelAvx2(size_t kc, const float* ap, const float* bp, float* c, size_t ldc,
                                         float alpha, size_t mr, size_t nr) {
  __m256 acc[MR][2];
  FmaTile6x16(kc, ap, bp, acc);
  const __m256 valpha = _mm256_set1_ps(alpha);
  if (mr == MR && nr == NR) {
    for (size_t r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      _mm256_storeu_ps(row, _mm256_fmadd_ps(valpha, acc[r][0], _mm256_loadu_ps(row)));
      _mm256_storeu_ps(row + 8, _mm256_fmadd_ps(valpha, acc[r][1], _mm256_loadu_ps(row + 8)));
    }
    return;
  }
  alignas(32) float tmp[MR][NR];
  for (size_t r = 0; r < MR; r++) {
    _mm256_store_ps(tmp[r], _mm256_mul_ps(valpha, acc[r][0]));
    _mm256_store_ps(tmp[r] + 8, _mm256_mul_ps(valpha, acc[r][1]));
  }
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] += tmp[r][j];
  }
}

// 6 × 32 on the AVX-512 path: two adjacent B panels (bp1 = bp0 + kc·NR), 12 ZMM accumulators, masked
// loads and stores at the edges (nr ≤ 32; bp1 is not read when nr ≤ 16).
WHITTLE_TARGET_AVX512 void MicroKernelAvx512(size_t kc, const float* ap, const float* bp0, float* c, size_t ldc, float alpha,
                                             size_t mr, size_t nr) {
  __m512 acc[MR][2];
  FmaTile6x32(kc, ap, bp0, nr > NR ? bp0 + kc * NR : bp0, acc);
  const __m512 valpha = _mm512_set1_ps(alpha);
  if (mr == MR && nr == 2 * NR) {  // unmasked in the interior (masked stores are slow on some CPUs)
    for (size_t r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(valpha, acc[r][0], _mm512_loadu_ps(row)));
      _mm512_storeu_ps(row + NR, _mm512_fmadd_ps(valpha, acc[r][1], _mm512_loadu_ps(row + NR)));
    }
    return;
  }
  const __mmask16 lo = LowMask(nr), hi = HighMask(nr);
  for (size_t r = 0; r < mr; r++) {
    float* row = c + r * ldc;
    _mm512_mask_storeu_ps(row, lo, _mm512_fmadd_ps(valpha, acc[r][0], _mm512_maskz_loadu_ps(lo, row)));
    _mm512_mask_storeu_ps(row + NR, hi, _mm512_fmadd_ps(valpha, acc[r][1], _mm512_maskz_loadu_ps(hi, row + NR)));
  }
}
#endif

// C[mr, nr] += alpha · Ap · (Bp0 | Bp1) for nr ≤ 32 with a 16-wide kernel: two calls.
template <void (*kKernel)(size_t, const float*, const float*, float*, size_t, float, size_t, size_t)>
void TwoPanels(size_t kc, const float* ap, const float* bp0, float* c, size_t ldc, float alpha, size_t mr, size_t nr) {
  kKernel(kc, ap, bp0, c, ldc, alpha, mr, std::min(nr, NR));
  if (nr > NR) kKernel(kc, ap, bp0 + kc * NR, c + NR, ldc, alpha, mr, nr - NR);
}

// A micro-kernel over up to two adjacent B panels (nr ≤ 32).
using MicroKernel = void (*)(size_t, const float*, const float*, float*, size_t, float, size_t, size_t);

void ScaleTile(float* c, size_t ldc, size_t rows, size_t cols, float beta) {
  for (size_t r = 0; r < rows; r++) {
    float* row = c + r * ldc;
    if (beta == 0.0f) {
      std::fill(row, row + cols, 0.0f);
    } else if (beta != 1.0f) {
      for (size_t j = 0; j < cols; j++) row[j] *= beta;
    }
  }
}

}  // namespace

void Gemm(float* c, const float* a, const float* b, size_t m, size_t n, size_t k, bool trans_b, float alpha,
          float beta) {
  if (m == 0 || n == 0) return;
  MicroKernel kernel = TwoPanels<MicroKernelBaseline>;
#if WHITTLE_X86_SIMD
  if (UseAvx512()) {
    kernel = MicroKernelAvx512;
  } else if (UseAvx2()) {
    kernel = TwoPanels<MicroKernelAvx2>;
  }
#endif

  const size_t threads = static_cast<size_t>(Threads());
  const size_t m_panels = CeilDiv(m, MR);
  const size_t n_panels = CeilDiv(n, NR);

  // Tiles of C: start at MC×NC = 96×256 and halve NC (down to 64 columns), then MC (down to 24 rows),
  // until there are a few tiles per thread to balance the load.
  size_t mc = MC;
  size_t nc_panels = NC / NR;
  auto tiles = [&] { return CeilDiv(m, mc) * CeilDiv(n_panels, nc_panels); };
  while (tiles() < 3 * threads) {
    if (nc_panels > 4 && (nc_panels * NR >= mc * 2 || mc <= 4 * MR)) {
      nc_panels /= 2;
    } else if (mc > 4 * MR) {
      mc /= 2;
    } else {
      break;
    }
  }
  const size_t m_tiles = CeilDiv(m, mc);
  const size_t n_tiles = CeilDiv(n_panels, nc_panels);

  if (alpha == 0.0f || k == 0) {
    ParallelFor(m_tiles, [&](size_t t) {
      const size_t i0 = t * mc;
      ScaleTile(c + i0 * n, n, std::min(mc, m - i0), n, beta);
    });
    return;
  }

  const size_t kc_max = std::min(KC, k);
  AlignedVector<float> ap(m_panels * MR * kc_max);
  AlignedVector<float> bp(n_panels * NR * kc_max);
  for (size_t k0 = 0; k0 < k; k0 += KC) {
    const size_t kc = std::min(KC, k - k0);
    // Pack this slice of A and of op(B), 8 panels per task.
    const size_t a_tasks = CeilDiv(m_panels, 8);
    const size_t b_tasks = CeilDiv(n_panels, 8);
    ParallelFor(a_tasks + b_tasks, [&](size_t t) {
      if (t < a_tasks) {
        const size_t i0 = t * 8 * MR;
        PackA(ap.data() + t * 8 * kc * MR, a, k, i0, std::min(8 * MR, m - i0), k0, kc);
      } else {
        const size_t p0 = (t - a_tasks) * 8;
        for (size_t p = p0; p < std::min(n_panels, p0 + 8); p++) PackB(bp.data(), b, n, k, trans_b, k0, kc, p);
      }
    });
    ParallelFor(m_tiles * n_tiles, [&](size_t t) {
      const size_t i0 = (t / n_tiles) * mc;
      const size_t rows = std::min(mc, m - i0);
      const size_t p_begin = (t % n_tiles) * nc_panels;
      const size_t p_end = std::min(n_panels, p_begin + nc_panels);
      const size_t j_begin = p_begin * NR;
      const size_t j_end = std::min(n, p_end * NR);
      if (k0 == 0) ScaleTile(c + i0 * n + j_begin, n, rows, j_end - j_begin, beta);
      for (size_t p = p_begin; p < p_end; p += 2) {  // two B panels at a time (nc_panels is even)
        const size_t j0 = p * NR;
        const size_t nr = std::min(p + 1 < p_end ? 2 * NR : NR, n - j0);
        for (size_t r0 = 0; r0 < rows; r0 += MR) {
          kernel(kc, ap.data() + ((i0 + r0) / MR) * kc * MR, bp.data() + p * kc * NR, c + (i0 + r0) * n + j0, n, alpha,
                 std::min(MR, rows - r0), nr);
        }
      }
    });
  }
}

// ---- bindings ---------------------------------------------------------------------------------------
// gemm(c: Float32Array, a: Float32Array, b: Float32Array, m, n, k, transB: boolean, alpha, beta)
//   : Promise<Float32Array>  — updates c in place and resolves with it.
// gemmRef(...same...): void  — the naive reference, synchronous.

namespace {

struct GemmArgs {
  ArrayArg<float> c, a, b;
  size_t m, n, k;
  bool trans_b;
  float alpha, beta;
};

GemmArgs ParseGemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GemmArgs g;
  g.c = ArgF32(info, 0, "c");
  g.a = ArgF32(info, 1, "a");
  g.b = ArgF32(info, 2, "b");
  g.m = ArgSize(info, 3, "m");
  g.n = ArgSize(info, 4, "n");
  g.k = ArgSize(info, 5, "k");
  g.trans_b = ArgBool(info, 6, "transB");
  g.alpha = static_cast<float>(ArgNumber(info, 7, "alpha"));
  g.beta = static_cast<float>(ArgNumber(info, 8, "beta"));
  auto expect = [&](const ArrayArg<float>& arr, size_t rows, size_t cols, const char* name, const char* shape) {
    if (arr.length != rows * cols) {
      ThrowInvalid(env, std::string("gemm: ") + name + " must hold " + shape + " = " + std::to_string(rows * cols) +
                            " floats, but it has " + std::to_string(arr.length) + ".");
    }
  };
  expect(g.a, g.m, g.k, "a", "m·k");
  expect(g.b, g.k, g.n, "b", "k·n");
  expect(g.c, g.m, g.n, "c", "m·n");
  const size_t cb = g.c.length * sizeof(float);
  if (Overlaps(g.c.data, cb, g.a.data, g.a.length * sizeof(float)) ||
      Overlaps(g.c.data, cb, g.b.data, g.b.length * sizeof(float))) {
    ThrowInvalid(env, "gemm: c must not share memory with a or b.");
  }
  return g;
}

Napi::Value GemmJs(const Napi::CallbackInfo& info) {
  GemmArgs g = ParseGemm(info);
  auto* worker = new KernelWorker(
      info.Env(), "gemm",
      [c = g.c.data, a = g.a.data, b = g.b.data, m = g.m, n = g.n, k = g.k, t = g.trans_b, al = g.alpha, be = g.beta] {
        Gemm(c, a, b, m, n, k, t, al, be);
      },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(g.c.object);
  worker->Keep(g.a.object);
  worker->Keep(g.b.object);
  return KernelWorker::Start(worker);
}

void GemmRefJs(const Napi::CallbackInfo& info) {
  GemmArgs g = ParseGemm(info);
  RunSync(info.Env(), [&] { GemmRef(g.c.data, g.a.data, g.b.data, g.m, g.n, g.k, g.trans_b, g.alpha, g.beta); });
}

}  // namespace

void RegisterGemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, GemmJs, "gemm"));
  exports.Set("gemmRef", Napi::Function::New(env, GemmRefJs, "gemmRef"));
}

}  // namespace whittle
