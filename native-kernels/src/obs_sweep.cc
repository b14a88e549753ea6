// obs_sweep.cc — the optimal-brain-surgeon column sweep (see obs_sweep.h), multi-threaded and vectorized
// across output channels, and its packers.
//
// Working copy Wp [K, N] float32 in sweep order (row i = input order[i]). Per column block [i1, i2):
//   1. rows i1..i2, in parallel over tiles of output channels (a multiple of NR wide): at a mask span's
//      first row choose the tile's masks, at a group's first row fit its grid; then for row i apply the
//      policy to the tile's channels, write codes / swept values / errors err_i (also into the packed
//      panels E below) and the loss, and update rows i+1..i2 of the tile. Loops run over the tile's
//      channels innermost.
//   2. the lazy update Wp[i2:K, :] −= Hinv[i1:i2, i2:K]ᵀ · E, a GEMM-shaped product in parallel over
//      tiles of Wp. Packed like gemm.cc (Goto & van de Geijn, ACM TOMS 2008):
//        A[p][kk][MR] = Hinv[i1 + kk, i2 + p·MR + r]     E[q][kk][NR] = err_{i1+kk}[q·NR + j]
//      but the micro-kernels (6×16 AVX2, 6×32 AVX-512, scalar) multiply and add separately (no FMA) and
//      sum kk = 0..nb−1 in order from 0 before subtracting once — the reference's scalar arithmetic,
//      per element, whatever the vector width.
#include "obs_sweep.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "blockwise_checks.h"
#include "cpu_features.h"
#include "hessian.h"
#include "microkernel.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/hessian_ref.h"
#include "reference/obs_sweep_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {

namespace obs_detail {

void CheckHinv(const float* hinv_upper, size_t k) {
  for (size_t i = 0; i < k; i++) {
    const float d = hinv_upper[i * k + i];
    if (!(d > 0.0f) || !std::isfinite(d)) {
      throw KernelError("INVALID_INPUT", "hinvUpper[" + std::to_string(i) + ", " + std::to_string(i) +
                                             "] is not a positive finite number; pass the factor prepareHessian returns.");
    }
    for (size_t j = i + 1; j < k; j++) {
      if (!std::isfinite(hinv_upper[i * k + j])) {
        throw KernelError("INVALID_INPUT", "hinvUpper holds a NaN or infinite value at [" + std::to_string(i) + ", " +
                                               std::to_string(j) + "].");
      }
    }
  }
}

void ThrowDiverged() {
  throw KernelError("INVALID_INPUT",
                    "The sweep's error feedback overflowed float32 (the inverse Hessian is too ill-conditioned); "
                    "increase percdamp.");
}

std::string ValidatePolicy(const ObsShape& s, bool act_order) {
  if (s.k == 0 || s.n == 0) return "k and n must be at least 1.";
  if (s.column_block == 0) return "columnBlock must be at least 1.";
  if (!s.quantize && !s.prune) return "Choose a column policy: quantize, prune, or both.";
  if (s.quantize) {
    if (s.q.bits < 2 || s.q.bits > 8) return "bits must be an integer from 2 to 8.";
    if (s.q.block < 16 || s.q.block > 256 || (s.q.block & (s.q.block - 1)) != 0) {
      return "blockSize must be a power of two from 16 to 256.";
    }
  }
  if (s.prune) {
    if (s.nm_m > 0) {
      if (s.nm_n == 0 || s.nm_n >= s.nm_m) return "N:M pruning needs 1 ≤ n < m.";
      if (act_order) return "N:M pruning needs the natural input order: turn actOrder off.";
      if (s.column_block % s.nm_m != 0) return "N:M pruning needs columnBlock to be a multiple of m.";
    } else {
      if (!(s.sparsity >= 0.0 && s.sparsity <= 1.0)) return "sparsity must be a number from 0 to 1.";
      if (s.mask_block == 0) return "maskBlock must be at least 1.";
    }
  }
  return "";
}

}  // namespace obs_detail

namespace {

using namespace obs_detail;

constexpr size_t MR = 6;
constexpr size_t NR = 16;
constexpr size_t kMaxTile = 256;  // most channels per phase-1 task
constexpr size_t kRankSpan = 32;  // mask spans up to this long are chosen by counting ranks

// Grid of group g for channels n0..n0+cols from rows [r0, r1) of a [*, N] matrix.
void FitGroup(ObsGrid& grid, size_t g, const float* rows, size_t r0, size_t r1, size_t n0, size_t cols,
              const BlockwiseShape& s) {
  float min[kMaxTile], max[kMaxTile];
  std::fill(min, min + cols, FLT_MAX);
  std::fill(max, max + cols, -FLT_MAX);
  for (size_t r = r0; r < r1; r++) {
    const float* row = rows + r * s.n + n0;
    for (size_t j = 0; j < cols; j++) {
      min[j] = row[j] < min[j] ? row[j] : min[j];
      max[j] = row[j] > max[j] ? row[j] : max[j];
    }
  }
  for (size_t j = 0; j < cols; j++) {
    if (!std::isfinite(min[j]) || !std::isfinite(max[j])) ThrowDiverged();
    const BlockParams p = ComputeBlockParams(min[j], max[j], s);
    CheckScale(p.scale, s, g, n0 + j);
    grid.Set(g, s.n, n0 + j, p);
  }
}

// w_r −= err · h for one row of a channel tile (a multiply, then a subtract).
void UpdateRowBaseline(float* __restrict w, const float* __restrict err, float h, size_t cols) {
  for (size_t j = 0; j < cols; j++) w[j] -= err[j] * h;
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void UpdateRowAvx2(float* __restrict w, const float* __restrict err, float h, size_t cols) {
  const __m256 hv = _mm256_set1_ps(h);
  size_t j = 0;
  for (; j + 8 <= cols; j += 8) {
    _mm256_storeu_ps(w + j, _mm256_sub_ps(_mm256_loadu_ps(w + j), _mm256_mul_ps(_mm256_loadu_ps(err + j), hv)));
  }
  for (; j < cols; j++) w[j] -= err[j] * h;
}

WHITTLE_TARGET_AVX512 void UpdateRowAvx512(float* __restrict w, const float* __restrict err, float h, size_t cols) {
  const __m512 hv = _mm512_set1_ps(h);
  size_t j = 0;
  for (; j + 16 <= cols; j += 16) {
    _mm512_storeu_ps(w + j, _mm512_sub_ps(_mm512_loadu_ps(w + j), _mm512_mul_ps(_mm512_loadu_ps(err + j), hv)));
  }
  if (j < cols) {  // masked only at the tail (masked stores are slow on some CPUs)
    const __mmask16 m = LowMask(cols - j);
    const __m512 wv = _mm512_maskz_loadu_ps(m, w + j);
    _mm512_mask_storeu_ps(w + j, m, _mm512_sub_ps(wv, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, err + j), hv)));
  }
}
#endif

using UpdateRow = void (*)(float*, const float*, float, size_t);

UpdateRow ChooseUpdateRow() {
#if WHITTLE_X86_SIMD
  if (UseAvx512Wide()) return UpdateRowAvx512;
  if (UseAvx2()) return UpdateRowAvx2;
#endif
  return UpdateRowBaseline;
}

struct Sweep {
  const ObsShape& shape;
  const float* hinv;     // [K×K] upper, sweep order
  const int32_t* order;  // nullptr: natural order, dynamic groups
  float* w;              // [K, N] sweep order, updated
  const ObsOutputs& out;
  uint8_t* mask;         // [K, N] by original input (prune)
  double* loss;          // [N]
  float* err_panels;     // [ceil(N/NR)][column_block][NR]
  UpdateRow update_row;
  size_t Input(size_t i) const { return order ? static_cast<size_t>(order[i]) : i; }
};

// Masks of channels n0..n0+cols for the sweep rows [r0, r1): per channel the PrunedCount lowest scores
// (ties: the earlier row) are pruned.
void ChooseMasks(const Sweep& sw, size_t r0, size_t r1, size_t n0, size_t cols) {
  const size_t K = sw.shape.k, N = sw.shape.n, len = r1 - r0;
  const size_t pruned = PrunedCount(sw.shape, len);
  thread_local std::vector<float> scores;  // [len][cols]
  thread_local std::vector<uint32_t> index;
  scores.resize(len * cols);
  index.resize(len);
  for (size_t r = 0; r < len; r++) {
    const float d = sw.hinv[(r0 + r) * K + r0 + r];
    const float* row = sw.w + (r0 + r) * N + n0;
    float* s = scores.data() + r * cols;
    for (size_t j = 0; j < cols; j++) s[j] = PruneScore(row[j], d);
  }
  if (len <= kRankSpan) {
    // Short spans (N:M groups): the rank of each row among the span's in the order (score, row), counted
    // with the channels innermost; rank < pruned ⇔ pruned.
    uint8_t rank[kMaxTile];
    for (size_t r = 0; r < len; r++) {
      const float* sr = scores.data() + r * cols;
      std::fill_n(rank, cols, uint8_t{0});
      for (size_t t = 0; t < len; t++) {
        if (t == r) continue;
        const float* st = scores.data() + t * cols;
        if (t < r) {
          for (size_t j = 0; j < cols; j++) rank[j] += st[j] <= sr[j] ? 1 : 0;
        } else {
          for (size_t j = 0; j < cols; j++) rank[j] += st[j] < sr[j] ? 1 : 0;
        }
      }
      uint8_t* keep = sw.mask + sw.Input(r0 + r) * N + n0;
      for (size_t j = 0; j < cols; j++) keep[j] = rank[j] >= pruned ? 1 : 0;
    }
    return;
  }
  for (size_t j = 0; j < cols; j++) {
    for (size_t r = 0; r < len; r++) {
      index[r] = static_cast<uint32_t>(r);
      sw.mask[sw.Input(r0 + r) * N + n0 + j] = 1;
    }
    if (pruned == 0) continue;
    const float* s = scores.data() + j;
    auto lower = [&](uint32_t a, uint32_t b) {
      const float sa = s[a * cols], sb = s[b * cols];
      return sa < sb || (sa == sb && a < b);
    };
    if (pruned < len) std::nth_element(index.begin(), index.begin() + static_cast<long>(pruned), index.begin() + static_cast<long>(len), lower);
    for (size_t t = 0; t < pruned; t++) sw.mask[sw.Input(r0 + index[t]) * N + n0 + j] = 0;
  }
}

// Phase 1 for channels n0..n0+cols (n0 a multiple of NR): rows i1..i2 of the block.
template <bool kHalfEven, bool kQuantize, bool kPrune>
void SweepBlockRows(const Sweep& sw, size_t i1, size_t i2, size_t n0, size_t cols) {
  const ObsShape& sh = sw.shape;
  const BlockwiseShape& s = sh.q;
  const size_t K = sh.k, N = sh.n, nb_stride = sh.column_block;
  const float qmax = static_cast<float>(s.QMax());
  ObsGrid* grid = sw.out.grid;
  float err[kMaxTile], value[kMaxTile];
  for (size_t i = i1; i < i2; i++) {
    const size_t o = sw.Input(i);
    if (kPrune) {
      if (sh.nm_m > 0) {
        if (i % sh.nm_m == 0) ChooseMasks(sw, i, std::min(K, i + sh.nm_m), n0, cols);
      } else if ((i - i1) % sh.mask_block == 0) {
        ChooseMasks(sw, i, std::min(i2, i + sh.mask_block), n0, cols);
      }
    }
    const size_t g = kQuantize ? o / s.block : 0;
    if (kQuantize && !sw.order && i % s.block == 0) FitGroup(*grid, g, sw.w, i, std::min(K, i + s.block), n0, cols, s);
    const float* __restrict scale = kQuantize ? grid->scale.data() + g * N + n0 : nullptr;
    const float* __restrict reciprocal = kQuantize ? grid->reciprocal.data() + g * N + n0 : nullptr;
    const float* __restrict zp = kQuantize ? grid->zero_point.data() + g * N + n0 : nullptr;
    const uint8_t* __restrict keep = kPrune ? sw.mask + o * N + n0 : nullptr;
    uint8_t* __restrict code = kQuantize ? sw.out.codes + o * N + n0 : nullptr;
    const float d = sw.hinv[i * K + i];
    float* __restrict wi = sw.w + i * N + n0;
    double* __restrict loss = sw.loss + n0;
    for (size_t j = 0; j < cols; j++) {
      const float wv = wi[j];
      float v = wv, q = 0.0f;
      if (kQuantize) {
        q = RoundClamped<kHalfEven>(wv * reciprocal[j] + zp[j], qmax);
        v = (q - zp[j]) * scale[j];
      }
      if (kPrune) {
        v = keep[j] ? v : 0.0f;
        if (kQuantize) q = keep[j] ? q : zp[j];
      }
      const float e = (wv - v) / d;
      if (kQuantize) code[j] = static_cast<uint8_t>(static_cast<int>(q));
      value[j] = v;
      err[j] = e;
      loss[j] += static_cast<double>(e) * static_cast<double>(e);
    }
    if (sw.out.swept) std::copy_n(value, cols, sw.out.swept + o * N + n0);
    for (size_t j = 0; j < cols; j += NR) {
      float* panel = sw.err_panels + ((n0 + j) / NR) * nb_stride * NR + (i - i1) * NR;
      std::copy_n(err + j, std::min(NR, cols - j), panel);
    }
    const float* hrow = sw.hinv + i * K;
    for (size_t r = i + 1; r < i2; r++) sw.update_row(sw.w + r * N + n0, err, hrow[r], cols);
  }
}

// C[mr, nr] −= Σ_kk Ap[kk][r] · Ep[kk][j], the sum formed in order from 0 (mul, then add); nr ≤ 32 over
// the two adjacent panels ep0, ep1 (ep1 unused when nr ≤ 16).
void LazyMicroBaseline(size_t nb, const float* ap, const float* ep0, const float* ep1, float* c, size_t ldc, size_t mr,
                       size_t nr) {
  for (size_t h = 0; h * NR < nr; h++) {
    const float* ep = h == 0 ? ep0 : ep1;
    float acc[MR][NR] = {};
    for (size_t kk = 0; kk < nb; kk++) {
      const float* a = ap + kk * MR;
      const float* e = ep + kk * NR;
      for (size_t r = 0; r < MR; r++) {
        for (size_t j = 0; j < NR; j++) acc[r][j] += a[r] * e[j];
      }
    }
    const size_t width = std::min(NR, nr - h * NR);
    for (size_t r = 0; r < mr; r++) {
      for (size_t j = 0; j < width; j++) c[r * ldc + h * NR + j] -= acc[r][j];
    }
  }
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void LazyMicro16Avx2(size_t nb, const float* ap, const float* ep, float* c, size_t ldc, size_t mr,
                                         size_t nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (size_t kk = 0; kk < nb; kk++) {
    const __m256 e0 = _mm256_loadu_ps(ep + kk * NR);
    const __m256 e1 = _mm256_loadu_ps(ep + kk * NR + 8);
    const float* a = ap + kk * MR;
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_add_ps(c00, _mm256_mul_ps(av, e0)), c01 = _mm256_add_ps(c01, _mm256_mul_ps(av, e1));
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_add_ps(c10, _mm256_mul_ps(av, e0)), c11 = _mm256_add_ps(c11, _mm256_mul_ps(av, e1));
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_add_ps(c20, _mm256_mul_ps(av, e0)), c21 = _mm256_add_ps(c21, _mm256_mul_ps(av, e1));
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_add_ps(c30, _mm256_mul_ps(av, e0)), c31 = _mm256_add_ps(c31, _mm256_mul_ps(av, e1));
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_add_ps(c40, _mm256_mul_ps(av, e0)), c41 = _mm256_add_ps(c41, _mm256_mul_ps(av, e1));
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_add_ps(c50, _mm256_mul_ps(av, e0)), c51 = _mm256_add_ps(c51, _mm256_mul_ps(av, e1));
  }
  const __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (size_t r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      _mm256_storeu_ps(row, _mm256_sub_ps(_mm256_loadu_ps(row), acc[r][0]));
      _mm256_storeu_ps(row + 8, _mm256_sub_ps(_mm256_loadu_ps(row + 8), acc[r][1]));
    }
    return;
  }
  alignas(32) float tmp[MR][NR];
  for (size_t r = 0; r < MR; r++) {
    _mm256_store_ps(tmp[r], acc[r][0]);
    _mm256_store_ps(tmp[r] + 8, acc[r][1]);
  }
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] -= tmp[r][j];
  }
}

WHITTLE_TARGET_AVX2 void LazyMicroAvx2(size_t nb, const float* ap, const float* ep0, const float* ep1, float* c, size_t ldc,
                                       size_t mr, size_t nr) {
  LazyMicro16Avx2(nb, ap, ep0, c, ldc, mr, std::min(nr, NR));
  if (nr > NR) LazyMicro16Avx2(nb, ap, ep1, c + NR, ldc, mr, nr - NR);
}

// 6 rows × 32 channels, 12 ZMM accumulators; masked loads and stores at the edges.
WHITTLE_TARGET_AVX512 void LazyMicroAvx512(size_t nb, const float* ap, const float* ep0, const float* ep1, float* c,
                                           size_t ldc, size_t mr, size_t nr) {
  if (nr <= NR) ep1 = ep0;  // the second half is masked off
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  for (size_t kk = 0; kk < nb; kk++) {
    const __m512 e0 = _mm512_loadu_ps(ep0 + kk * NR);
    const __m512 e1 = _mm512_loadu_ps(ep1 + kk * NR);
    const float* a = ap + kk * MR;
    __m512 av = _mm512_set1_ps(a[0]);
    c00 = _mm512_add_ps(c00, _mm512_mul_ps(av, e0)), c01 = _mm512_add_ps(c01, _mm512_mul_ps(av, e1));
    av = _mm512_set1_ps(a[1]);
    c10 = _mm512_add_ps(c10, _mm512_mul_ps(av, e0)), c11 = _mm512_add_ps(c11, _mm512_mul_ps(av, e1));
    av = _mm512_set1_ps(a[2]);
    c20 = _mm512_add_ps(c20, _mm512_mul_ps(av, e0)), c21 = _mm512_add_ps(c21, _mm512_mul_ps(av, e1));
    av = _mm512_set1_ps(a[3]);
    c30 = _mm512_add_ps(c30, _mm512_mul_ps(av, e0)), c31 = _mm512_add_ps(c31, _mm512_mul_ps(av, e1));
    av = _mm512_set1_ps(a[4]);
    c40 = _mm512_add_ps(c40, _mm512_mul_ps(av, e0)), c41 = _mm512_add_ps(c41, _mm512_mul_ps(av, e1));
    av = _mm512_set1_ps(a[5]);
    c50 = _mm512_add_ps(c50, _mm512_mul_ps(av, e0)), c51 = _mm512_add_ps(c51, _mm512_mul_ps(av, e1));
  }
  const __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == 2 * NR) {
    for (size_t r = 0; r < MR; r++) {
      float* row = c + r * ldc;
      _mm512_storeu_ps(row, _mm512_sub_ps(_mm512_loadu_ps(row), acc[r][0]));
      _mm512_storeu_ps(row + NR, _mm512_sub_ps(_mm512_loadu_ps(row + NR), acc[r][1]));
    }
    return;
  }
  const __mmask16 lo = LowMask(nr), hi = HighMask(nr);
  for (size_t r = 0; r < mr; r++) {
    float* row = c + r * ldc;
    _mm512_mask_storeu_ps(row, lo, _mm512_sub_ps(_mm512_maskz_loadu_ps(lo, row), acc[r][0]));
    _mm512_mask_storeu_ps(row + NR, hi, _mm512_sub_ps(_mm512_maskz_loadu_ps(hi, row + NR), acc[r][1]));
  }
}
#endif

// Phase 2: Wp[i2:K, :] −= Hinv[i1:i2, i2:K]ᵀ · E, in 6 × 32 blocks (two error panels at a time).
void LazyUpdate(const Sweep& sw, size_t i1, size_t i2, AlignedVector<float>& a_panels) {
  auto kernel = LazyMicroBaseline;
#if WHITTLE_X86_SIMD
  if (UseAvx512Wide()) {
    kernel = LazyMicroAvx512;
  } else if (UseAvx2()) {
    kernel = LazyMicroAvx2;
  }
#endif
  const size_t K = sw.shape.k, N = sw.shape.n, nb = i2 - i1, stride = sw.shape.column_block;
  const size_t rows = K - i2;
  const size_t r_panels = CeilDiv(rows, MR), c_panels = CeilDiv(N, NR);
  float* ap = a_panels.data();
  constexpr size_t kPanelsPerTask = 16;
  ParallelFor(CeilDiv(r_panels, kPanelsPerTask), [&](size_t t) {
    const size_t p_end = std::min(r_panels, (t + 1) * kPanelsPerTask);
    for (size_t p = t * kPanelsPerTask; p < p_end; p++) {
      float* dst = ap + p * nb * MR;
      const size_t k0 = i2 + p * MR;
      const size_t valid = std::min(MR, K - k0);
      for (size_t kk = 0; kk < nb; kk++) {
        const float* src = sw.hinv + (i1 + kk) * K + k0;
        for (size_t r = 0; r < MR; r++) dst[kk * MR + r] = r < valid ? src[r] : 0.0f;
      }
    }
  });

  // Tiles of row panels × column panels: 16 × 16 panels (96 × 256), halved until there are a few per
  // thread (column tiles stay an even number of panels, so the 32-wide blocks never straddle two tiles).
  const size_t threads = static_cast<size_t>(Threads());
  size_t tile_r = 16, tile_c = 16;
  auto tiles = [&] { return CeilDiv(r_panels, tile_r) * CeilDiv(c_panels, tile_c); };
  while (tiles() < 3 * threads && (tile_r > 2 || tile_c > 2)) {
    if (tile_c >= tile_r && tile_c > 2) {
      tile_c /= 2;
    } else {
      tile_r /= 2;
    }
  }
  const size_t c_tiles = CeilDiv(c_panels, tile_c);
  ParallelFor(CeilDiv(r_panels, tile_r) * c_tiles, [&](size_t t) {
    const size_t p_begin = (t / c_tiles) * tile_r, p_end = std::min(r_panels, p_begin + tile_r);
    const size_t q_begin = (t % c_tiles) * tile_c, q_end = std::min(c_panels, q_begin + tile_c);
    for (size_t q = q_begin; q < q_end; q += 2) {
      const size_t n0 = q * NR;
      const float* ep0 = sw.err_panels + q * stride * NR;
      const float* ep1 = q + 1 < q_end ? ep0 + stride * NR : ep0;
      const size_t width = std::min(q + 1 < q_end ? 2 * NR : NR, N - n0);
      for (size_t p = p_begin; p < p_end; p++) {
        const size_t k0 = i2 + p * MR;
        kernel(nb, ap + p * nb * MR, ep0, ep1, sw.w + k0 * N + n0, N, std::min(MR, K - k0), width);
      }
    }
  });
}

// Channels per phase-1 task: a multiple of NR, a few tasks per thread.
size_t ChannelTile(size_t n) {
  const size_t wanted_tasks = 4 * static_cast<size_t>(Threads());
  const size_t width = CeilDiv(CeilDiv(n, wanted_tasks), NR) * NR;
  return std::clamp<size_t>(width, NR, kMaxTile);
}

template <bool kHalfEven>
void SweepBlockRowsFor(const Sweep& sw, size_t i1, size_t i2, size_t n0, size_t cols) {
  const ObsShape& s = sw.shape;
  if (s.quantize && s.prune) {
    SweepBlockRows<kHalfEven, true, true>(sw, i1, i2, n0, cols);
  } else if (s.quantize) {
    SweepBlockRows<kHalfEven, true, false>(sw, i1, i2, n0, cols);
  } else {
    SweepBlockRows<kHalfEven, false, true>(sw, i1, i2, n0, cols);
  }
}

}  // namespace

double ObsSweep(const ObsOutputs& out, const float* weight, const float* hinv_upper, const int32_t* order,
                const uint8_t* dead, const ObsShape& shape) {
  const size_t K = shape.k, N = shape.n, column_block = std::min(shape.column_block, K);
  ObsShape sh = shape;
  sh.column_block = column_block;
  sh.q.k = K;
  sh.q.n = N;
  CheckHinv(hinv_upper, K);

  // Wp in sweep order, dead inputs zeroed; every weight checked.
  AlignedVector<float> w(K * N);
  constexpr size_t kRows = 16;
  ParallelFor(CeilDiv(K, kRows), [&](size_t t) {
    for (size_t i = t * kRows; i < std::min(K, (t + 1) * kRows); i++) {
      const size_t o = order ? static_cast<size_t>(order[i]) : i;
      const float* src = weight + o * N;
      for (size_t n = 0; n < N; n++) CheckFiniteWeight(src[n], o, n);
      if (dead[o]) {
        std::fill_n(w.data() + i * N, N, 0.0f);
      } else {
        std::copy_n(src, N, w.data() + i * N);
      }
    }
  });

  const size_t width = ChannelTile(N);
  if (sh.quantize) {
    out.grid->Resize(sh.q.KBlocks(), N);
    if (order) {
      // Static groups from the original, dead-zeroed weights (input order).
      std::vector<float> original(K * N);
      ParallelFor(CeilDiv(K, kRows), [&](size_t t) {
        for (size_t k = t * kRows; k < std::min(K, (t + 1) * kRows); k++) {
          if (dead[k]) {
            std::fill_n(original.data() + k * N, N, 0.0f);
          } else {
            std::copy_n(weight + k * N, N, original.data() + k * N);
          }
        }
      });
      ParallelFor(CeilDiv(N, width), [&](size_t t) {
        const size_t n0 = t * width, cols = std::min(width, N - n0);
        for (size_t g = 0; g < sh.q.KBlocks(); g++) {
          FitGroup(*out.grid, g, original.data(), g * sh.q.block, std::min(K, (g + 1) * sh.q.block), n0, cols, sh.q);
        }
      });
    }
  }

  std::vector<uint8_t> own_mask;
  uint8_t* mask = out.mask;
  if (sh.prune && !mask) {
    own_mask.resize(K * N);
    mask = own_mask.data();
  }
  std::vector<double> loss(N, 0.0);
  AlignedVector<float> err_panels(CeilDiv(N, NR) * column_block * NR, 0.0f);
  AlignedVector<float> a_panels(CeilDiv(K, MR) * MR * column_block);
  const Sweep sw{sh, hinv_upper, order, w.data(), out, mask, loss.data(), err_panels.data(), ChooseUpdateRow()};
  for (size_t i1 = 0; i1 < K; i1 += column_block) {
    const size_t i2 = std::min(K, i1 + column_block);
    ParallelFor(CeilDiv(N, width), [&](size_t t) {
      const size_t n0 = t * width, cols = std::min(width, N - n0);
      if (!sh.quantize || sh.q.rounding == Rounding::kHalfEven) {
        SweepBlockRowsFor<true>(sw, i1, i2, n0, cols);
      } else {
        SweepBlockRowsFor<false>(sw, i1, i2, n0, cols);
      }
    });
    if (i2 < K) LazyUpdate(sw, i1, i2, a_panels);
  }
  if (out.mask && !sh.prune) std::fill_n(out.mask, K * N, uint8_t{1});

  double total = 0.0;
  for (double l : loss) total += l;
  total *= 0.5;
  if (!std::isfinite(total)) ThrowDiverged();
  return total;
}

double PackMatMulNBits(uint8_t* packed, float* scales, uint8_t* zero_points, const uint8_t* codes, const ObsGrid& grid,
                       const float* weight, const BlockwiseShape& s) {
  const size_t K = s.k, N = s.n, k_blocks = s.KBlocks(), blob = s.BlobBytes(), zp_bytes = s.ZeroPointBytesPerColumn();
  const int per_byte = s.ValuesPerByte();
  std::vector<double> column_error(N, 0.0);
  constexpr size_t kWidth = 64;
  ParallelFor(CeilDiv(N, kWidth), [&](size_t t) {
    const size_t n0 = t * kWidth, cols = std::min(kWidth, N - n0);
    double* err = column_error.data() + n0;
    if (zero_points) {
      for (size_t j = 0; j < cols; j++) std::fill_n(zero_points + (n0 + j) * zp_bytes, zp_bytes, uint8_t{0});
    }
    for (size_t b = 0; b < k_blocks; b++) {
      const float* scale = grid.scale.data() + b * N + n0;
      const float* zp = grid.zero_point.data() + b * N + n0;
      for (size_t j = 0; j < cols; j++) {
        scales[(n0 + j) * k_blocks + b] = scale[j];
        if (zero_points) {
          zero_points[(n0 + j) * zp_bytes + b / per_byte] |=
              static_cast<uint8_t>(static_cast<int>(zp[j]) << ((b % per_byte) * s.bits));
        }
      }
      for (size_t i = 0; i < blob; i++) {
        unsigned bytes[kWidth] = {};
        for (int v = 0; v < per_byte; v++) {
          const size_t k = b * s.block + i * per_byte + v;
          for (size_t j = 0; j < cols; j++) {
            const unsigned q = k < K ? codes[k * N + n0 + j] : static_cast<unsigned>(zp[j]);
            bytes[j] |= q << (v * s.bits);
            if (k < K) {
              const float dequantized = DequantizeValue(static_cast<int>(q), static_cast<int>(zp[j]), scale[j]);
              const double diff = static_cast<double>(weight[k * N + n0 + j]) - static_cast<double>(dequantized);
              err[j] += diff * diff;
            }
          }
        }
        for (size_t j = 0; j < cols; j++) packed[((n0 + j) * k_blocks + b) * blob + i] = static_cast<uint8_t>(bytes[j]);
      }
    }
  });
  double total = 0.0;
  for (double e : column_error) total += e;
  return total;
}

double SweptSquaredError(const float* weight, const float* swept, size_t k, size_t n) {
  std::vector<double> column_error(n, 0.0);
  constexpr size_t kWidth = 64;
  ParallelFor(CeilDiv(n, kWidth), [&](size_t t) {
    const size_t n0 = t * kWidth, cols = std::min(kWidth, n - n0);
    double* err = column_error.data() + n0;
    for (size_t r = 0; r < k; r++) {
      for (size_t j = 0; j < cols; j++) {
        const double diff = static_cast<double>(weight[r * n + n0 + j]) - static_cast<double>(swept[r * n + n0 + j]);
        err[j] += diff * diff;
      }
    }
  });
  double total = 0.0;
  for (double e : column_error) total += e;
  return total;
}

// ---- bindings ---------------------------------------------------------------------------------------
// obsSweep(swept: Float32Array [K×N], mask: Uint8Array [K×N] | null, packed | null, scales | null,
//          zeroPoints | null, weight: Float32Array [K×N], hessianSum: Float32Array [K×K],
//          params: { k, n, columnBlock, count, percdamp, actOrder, label?,
//                    quantize, bits?, blockSize?, symmetric?, fp16Scales?, rounding?,
//                    prune, sparsity?, nmN?, nmM?, maskBlock? })
//   : Promise<{ loss, sqError, dead }>  — prepareHessian (act-order: by decreasing diag) + the sweep;
//   fills swept and mask, and the MatMulNBits arrays when packed is given (quantize with 2, 4 or 8 bits).
//   sqError = Σ (w − swept)².
// obsSweepPrepared(swept, mask | null, packed | null, scales | null, zeroPoints | null, weight,
//                  hinvUpper: Float32Array [K×K], order: Int32Array | null, dead: Uint8Array [K],
//                  params: as obsSweep without count / percdamp / actOrder / label)
//   : Promise<{ loss, sqError, dead }>  — the sweep alone on a Hessian prepared by prepareHessian.
// obsSweepRef / obsSweepPreparedRef: same arguments, synchronous, the references.

namespace {

struct ObsArgs {
  ArrayArg<float> swept, scales, weight, sum;  // sum: hessianSum, or hinvUpper when prepared
  ArrayArg<uint8_t> mask, packed, zero_points, dead;
  ArrayArg<int32_t> order;
  bool prepared = false;
  ObsShape shape;
  HessianPrepOptions prep;
  bool act_order = false;
};

bool Present(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && !info[i].IsNull() && !info[i].IsUndefined();
}

ObsArgs ParseObs(const Napi::CallbackInfo& info, bool prepared) {
  Napi::Env env = info.Env();
  ObsArgs a;
  a.prepared = prepared;
  a.swept = ArgF32(info, 0, "swept");
  if (Present(info, 1)) a.mask = ArgU8(info, 1, "mask");
  if (Present(info, 2)) a.packed = ArgU8(info, 2, "packed");
  if (Present(info, 3)) a.scales = ArgF32(info, 3, "scales");
  if (Present(info, 4)) a.zero_points = ArgU8(info, 4, "zeroPoints");
  a.weight = ArgF32(info, 5, "weight");
  a.sum = ArgF32(info, 6, prepared ? "hinvUpper" : "hessianSum");
  size_t params_index = 7;
  if (prepared) {
    if (Present(info, 7)) a.order = ArgArray<int32_t>(info, 7, "order (an Int32Array)", napi_int32_array);
    a.dead = ArgU8(info, 8, "dead");
    params_index = 9;
  }
  if (info.Length() <= params_index || !info[params_index].IsObject()) ThrowInvalid(env, "params must be an object.");
  Napi::Object o = info[params_index].As<Napi::Object>();
  ObsShape& s = a.shape;
  s.k = FieldSize(env, o, "k");
  s.n = FieldSize(env, o, "n");
  s.column_block = FieldSize(env, o, "columnBlock");
  if (prepared) {
    a.act_order = a.order.data != nullptr;
  } else {
    a.prep.count = FieldNumber(env, o, "count");
    if (!(a.prep.count > 0) || !std::isfinite(a.prep.count)) ThrowInvalid(env, "count must be a positive number.");
    a.prep.percdamp = FieldNumber(env, o, "percdamp");
    if (!(a.prep.percdamp >= 0) || !std::isfinite(a.prep.percdamp)) ThrowInvalid(env, "percdamp must be a finite number ≥ 0.");
    a.act_order = FieldBool(env, o, "actOrder", false);
  }
  Napi::Value label = o.Get("label");
  if (label.IsString()) a.prep.label = label.As<Napi::String>().Utf8Value();
  s.quantize = FieldBool(env, o, "quantize", false);
  if (s.quantize) {
    s.q.k = s.k;
    s.q.n = s.n;
    s.q.bits = static_cast<int>(FieldSize(env, o, "bits"));
    s.q.block = FieldSize(env, o, "blockSize");
    s.q.symmetric = FieldBool(env, o, "symmetric", true);
    s.q.fp16_scales = FieldBool(env, o, "fp16Scales", false);
    s.q.rounding = ParseRounding(env, o);
  }
  s.prune = FieldBool(env, o, "prune", false);
  if (s.prune) {
    if (!o.Get("nmM").IsUndefined()) {
      s.nm_n = FieldSize(env, o, "nmN");
      s.nm_m = FieldSize(env, o, "nmM");
    } else {
      s.sparsity = FieldNumber(env, o, "sparsity");
      s.mask_block = FieldSize(env, o, "maskBlock");
    }
  }
  const std::string problem = ValidatePolicy(s, a.act_order);
  if (!problem.empty()) ThrowInvalid(env, problem);

  ExpectLength(env, a.weight.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, a.swept.length, s.k * s.n, "swept", "k·n");
  if (a.mask.data) ExpectLength(env, a.mask.length, s.k * s.n, "mask", "k·n");
  ExpectLength(env, a.sum.length, s.k * s.k, prepared ? "hinvUpper" : "hessianSum", "k·k");
  if (prepared) {
    ExpectLength(env, a.dead.length, s.k, "dead", "k");
    if (a.order.data) {
      ExpectLength(env, a.order.length, s.k, "order", "k");
      RunSync(env, [&] { hessian_detail::CheckOrder(a.order.data, s.k); });
    }
  }
  if (a.packed.data) {
    if (!s.quantize) ThrowInvalid(env, "packed needs the quantize policy.");
    const std::string shape_problem = ValidateShape(s.q);
    if (!shape_problem.empty()) ThrowInvalid(env, "The MatMulNBits packer: " + shape_problem);
    ExpectLength(env, a.packed.length, s.q.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
    if (!a.scales.data) ThrowInvalid(env, "scales is required with packed.");
    ExpectLength(env, a.scales.length, s.q.ScaleCount(), "scales", "n·kBlocks");
    if (s.q.symmetric && a.zero_points.data) ThrowInvalid(env, "zeroPoints must be null for symmetric quantization.");
    if (!s.q.symmetric && !a.zero_points.data) ThrowInvalid(env, "zeroPoints is required for asymmetric quantization.");
    if (a.zero_points.data) ExpectLength(env, a.zero_points.length, s.q.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  } else if (a.scales.data || a.zero_points.data) {
    ThrowInvalid(env, "scales and zeroPoints come with packed.");
  }
  ExpectNoOverlap(env, {{a.swept.data, a.swept.length * 4}, {a.mask.data, a.mask.length}, {a.packed.data, a.packed.length},
                        {a.scales.data, a.scales.length * 4}, {a.zero_points.data, a.zero_points.length}},
                  {{a.weight.data, a.weight.length * 4}, {a.sum.data, a.sum.length * 4}, {a.order.data, a.order.length * 4},
                   {a.dead.data, a.dead.length}});
  return a;
}

struct ObsJob {
  float* swept;
  uint8_t* mask;
  uint8_t* packed;
  float* scales;
  uint8_t* zero_points;
  const float* weight;
  const float* sum;
  const int32_t* order;
  const uint8_t* dead;
  bool prepared;
  ObsShape shape;
  HessianPrepOptions prep;
  bool act_order;
};

ObsJob JobOf(const ObsArgs& a) {
  return {a.swept.data, a.mask.data, a.packed.data, a.scales.data, a.zero_points.data, a.weight.data, a.sum.data,
          a.order.data, a.dead.data, a.prepared, a.shape, a.prep, a.act_order};
}

struct ObsOutcome {
  double loss = 0.0, sq_error = 0.0;
  size_t dead = 0;
};

// Dead inputs and act-order from diag(S), the prepared Hessian (unless given), the sweep, the packers.
template <bool kReference>
ObsOutcome RunObs(const ObsJob& a) {
  const size_t K = a.shape.k;
  std::vector<int32_t> order;
  HessianPrepOptions prep = a.prep;
  if (a.prepared) {
    prep.order = a.order;
  } else if (a.act_order) {
    order.resize(K);
    HessianActOrder(order.data(), a.sum, K, prep.count);
    prep.order = order.data();
  }
  std::vector<float> hinv(a.prepared ? 0 : K * K);
  std::vector<uint8_t> dead(a.prepared ? 0 : K), codes(a.shape.quantize ? K * a.shape.n : 0);
  const float* hinv_upper = a.prepared ? a.sum : hinv.data();
  const uint8_t* dead_mask = a.prepared ? a.dead : dead.data();
  ObsGrid grid;
  ObsOutputs out;
  out.swept = a.swept;
  out.mask = a.mask;
  out.codes = a.shape.quantize ? codes.data() : nullptr;
  out.grid = &grid;
  ObsOutcome r;
  if (a.prepared) {
    for (size_t i = 0; i < K; i++) r.dead += a.dead[i] ? 1 : 0;
  } else if (kReference) {
    r.dead = PrepareHessianRef(hinv.data(), dead.data(), a.sum, K, prep);
  } else {
    r.dead = PrepareHessian(hinv.data(), dead.data(), a.sum, K, prep);
  }
  if (kReference) {
    r.loss = ObsSweepRef(out, a.weight, hinv_upper, prep.order, dead_mask, a.shape);
    if (a.packed) PackMatMulNBitsRef(a.packed, a.scales, a.zero_points, codes.data(), grid, a.weight, a.shape.q);
  } else {
    r.loss = ObsSweep(out, a.weight, hinv_upper, prep.order, dead_mask, a.shape);
    if (a.packed) PackMatMulNBits(a.packed, a.scales, a.zero_points, codes.data(), grid, a.weight, a.shape.q);
  }
  r.sq_error = SweptSquaredError(a.weight, a.swept, K, a.shape.n);
  return r;
}

Napi::Object OutcomeObject(Napi::Env env, const ObsOutcome& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("sqError", r.sq_error);
  o.Set("dead", static_cast<double>(r.dead));
  return o;
}

Napi::Value StartObs(const Napi::CallbackInfo& info, bool prepared) {
  ObsArgs a = ParseObs(info, prepared);
  auto outcome = std::make_shared<ObsOutcome>();
  auto* worker = new KernelWorker(
      info.Env(), "obsSweep", [job = JobOf(a), outcome] { *outcome = RunObs<false>(job); },
      [outcome](Napi::Env env, const KernelWorker&) -> Napi::Value { return OutcomeObject(env, *outcome); });
  worker->Keep(a.swept.object);
  if (a.mask.data) worker->Keep(a.mask.object);
  if (a.packed.data) worker->Keep(a.packed.object);
  if (a.scales.data) worker->Keep(a.scales.object);
  if (a.zero_points.data) worker->Keep(a.zero_points.object);
  worker->Keep(a.weight.object);
  worker->Keep(a.sum.object);
  if (a.order.data) worker->Keep(a.order.object);
  if (a.dead.data) worker->Keep(a.dead.object);
  return KernelWorker::Start(worker);
}

Napi::Value RunObsRef(const Napi::CallbackInfo& info, bool prepared) {
  ObsArgs a = ParseObs(info, prepared);
  ObsOutcome outcome;
  RunSync(info.Env(), [&] { outcome = RunObs<true>(JobOf(a)); });
  return OutcomeObject(info.Env(), outcome);
}

}  // namespace

void RegisterObsSweep(Napi::Env env, Napi::Object exports) {
  exports.Set("obsSweep", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return StartObs(info, false); }, "obsSweep"));
  exports.Set("obsSweepRef", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return RunObsRef(info, false); }, "obsSweepRef"));
  exports.Set("obsSweepPrepared",
              Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return StartObs(info, true); }, "obsSweepPrepared"));
  exports.Set("obsSweepPreparedRef",
              Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return RunObsRef(info, true); }, "obsSweepPreparedRef"));
}

}  // namespace whittle
