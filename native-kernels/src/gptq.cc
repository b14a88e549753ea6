// gptq.cc — the GPTQ sweep (see gptq.h), multi-threaded and vectorized across output channels, and the
// gptqQuantize / gptqSweep bindings.
//
// Working copy Wp [K, N] float32 in sweep order (row i = input order[i]). Per column block [i1, i2):
//   1. rows i1..i2, in parallel over tiles of output channels (a multiple of NR wide): quantize row i for
//      the tile's channels, write its codes, errors err_i (also into the packed panels E below) and the
//      loss, and update rows i+1..i2 of the tile. Every loop runs over the tile's channels innermost.
//   2. the lazy update Wp[i2:K, :] −= Hinv[i1:i2, i2:K]ᵀ · E, a GEMM-shaped product in parallel over
//      tiles of Wp. Packed like gemm.cc (Goto & van de Geijn, ACM TOMS 2008):
//        A[p][kk][MR] = Hinv[i1 + kk, i2 + p·MR + r]     E[q][kk][NR] = err_{i1+kk}[q·NR + j]
//      but the 6×16 micro-kernel multiplies and adds separately (no FMA) and sums kk = 0..nb−1 in order
//      from 0 before subtracting once — exactly the reference's scalar arithmetic, per element.
// Codes are kept per original input [K, N] (uint8) and packed into the MatMulNBits layout at the end,
// in parallel over channels, with the weight error Σ (w − deq)².
#include "gptq.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "blockwise_checks.h"
#include "cpu_features.h"
#include "hessian.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/gptq_ref.h"
#include "reference/hessian_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {

namespace gptq_detail {

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
                    "GPTQ's error feedback overflowed float32 (the inverse Hessian is too ill-conditioned); "
                    "increase percdamp.");
}

}  // namespace gptq_detail

namespace {

using namespace gptq_detail;

constexpr size_t MR = 6;
constexpr size_t NR = 16;
constexpr size_t kMaxTile = 256;  // most channels per phase-1 task

// round(clamp(x, 0, qmax)) without libm, as blockwise.cc: (x + 2^23) − 2^23 rounds x ∈ [0, 2^23) to an
// integer in the current rounding mode (ties to even), exactly as std::nearbyint; the away-from-zero
// rule moves a tie that went down one up. NaN → 0 (the clamp's comparisons fail), as QuantizeClamped.
template <bool kHalfEven>
inline float RoundClamped(float x, float qmax) {
  constexpr float kMagic = 8388608.0f;  // 2^23
  x = x > 0.0f ? x : 0.0f;
  x = x < qmax ? x : qmax;
  float t = (x + kMagic) - kMagic;
  if (!kHalfEven) t += (x - t == 0.5f) ? 1.0f : 0.0f;
  return t;
}

// Group parameters per (group, channel), channel-contiguous: [k_blocks][N].
struct GroupGrid {
  std::vector<float> scale, reciprocal, zero_point;
  GroupGrid(size_t groups, size_t n) : scale(groups * n), reciprocal(groups * n), zero_point(groups * n) {}
  void Set(size_t g, size_t n_total, size_t n, const BlockParams& p) {
    scale[g * n_total + n] = p.scale;
    reciprocal[g * n_total + n] = p.reciprocal;
    zero_point[g * n_total + n] = static_cast<float>(p.zero_point);
  }
};

// Scale / zero point of group g for channels n0..n0+cols from rows [r0, r1) of a [*, N] matrix (`rows`
// already offset so that row r is rows + r·N).
void FitGroup(GroupGrid& grid, size_t g, const float* rows, size_t r0, size_t r1, size_t n0, size_t cols,
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

struct Sweep {
  const GptqShape& shape;
  const float* hinv;         // [K×K] upper, sweep order
  const int32_t* order;      // nullptr: natural order, dynamic groups
  float* w;                  // [K, N] sweep order, updated
  GroupGrid& grid;
  uint8_t* codes;            // [K, N] by original input
  double* loss;              // [N]
  float* err_panels;         // [ceil(N/NR)][column_block][NR]
  size_t Input(size_t i) const { return order ? static_cast<size_t>(order[i]) : i; }
};

// Phase 1 for channels n0..n0+cols (n0 a multiple of NR): rows i1..i2 of the block.
template <bool kHalfEven>
void SweepBlockRows(const Sweep& sw, size_t i1, size_t i2, size_t n0, size_t cols) {
  const BlockwiseShape& s = sw.shape.q;
  const size_t K = s.k, N = s.n, nb_stride = sw.shape.column_block;
  const float qmax = static_cast<float>(s.QMax());
  float err[kMaxTile];
  for (size_t i = i1; i < i2; i++) {
    const size_t o = sw.Input(i);
    const size_t g = o / s.block;
    if (!sw.order && i % s.block == 0) FitGroup(sw.grid, g, sw.w, i, std::min(K, i + s.block), n0, cols, s);
    const float* __restrict scale = sw.grid.scale.data() + g * N + n0;
    const float* __restrict reciprocal = sw.grid.reciprocal.data() + g * N + n0;
    const float* __restrict zp = sw.grid.zero_point.data() + g * N + n0;
    const float d = sw.hinv[i * K + i];
    float* __restrict wi = sw.w + i * N + n0;
    uint8_t* __restrict code = sw.codes + o * N + n0;
    double* __restrict loss = sw.loss + n0;
    for (size_t j = 0; j < cols; j++) {
      const float q = RoundClamped<kHalfEven>(wi[j] * reciprocal[j] + zp[j], qmax);
      const float dequantized = (q - zp[j]) * scale[j];
      const float e = (wi[j] - dequantized) / d;
      code[j] = static_cast<uint8_t>(static_cast<int>(q));
      err[j] = e;
      loss[j] += static_cast<double>(e) * static_cast<double>(e);
    }
    for (size_t j = 0; j < cols; j += NR) {
      float* panel = sw.err_panels + ((n0 + j) / NR) * nb_stride * NR + (i - i1) * NR;
      std::copy_n(err + j, std::min(NR, cols - j), panel);
    }
    const float* hrow = sw.hinv + i * K;
    for (size_t r = i + 1; r < i2; r++) {
      const float h = hrow[r];
      float* __restrict wr = sw.w + r * N + n0;
      for (size_t j = 0; j < cols; j++) wr[j] -= err[j] * h;
    }
  }
}

// C[mr, nr] −= Σ_kk Ap[kk][r] · Ep[kk][j], the sum formed in order from 0 (mul, then add).
void LazyMicroBaseline(size_t nb, const float* ap, const float* ep, float* c, size_t ldc, size_t mr, size_t nr) {
  float acc[MR][NR] = {};
  for (size_t kk = 0; kk < nb; kk++) {
    const float* a = ap + kk * MR;
    const float* e = ep + kk * NR;
    for (size_t r = 0; r < MR; r++) {
      for (size_t j = 0; j < NR; j++) acc[r][j] += a[r] * e[j];
    }
  }
  for (size_t r = 0; r < mr; r++) {
    for (size_t j = 0; j < nr; j++) c[r * ldc + j] -= acc[r][j];
  }
}

#if WHITTLE_X86_SIMD
WHITTLE_TARGET_AVX2 void LazyMicroAvx2(size_t nb, const float* ap, const float* ep, float* c, size_t ldc, size_t mr,
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
#endif

// Phase 2: Wp[i2:K, :] −= Hinv[i1:i2, i2:K]ᵀ · E.
void LazyUpdate(const Sweep& sw, size_t i1, size_t i2, std::vector<float>& a_panels) {
  auto kernel = LazyMicroBaseline;
#if WHITTLE_X86_SIMD
  if (UseAvx2()) kernel = LazyMicroAvx2;
#endif
  const size_t K = sw.shape.q.k, N = sw.shape.q.n, nb = i2 - i1, stride = sw.shape.column_block;
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

  // Tiles of row panels × column panels: 16 × 16 panels (96 × 256), halved until there are a few per thread.
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
    for (size_t q = q_begin; q < q_end; q++) {
      const size_t n0 = q * NR;
      const float* ep = sw.err_panels + q * stride * NR;
      for (size_t p = p_begin; p < p_end; p++) {
        const size_t k0 = i2 + p * MR;
        kernel(nb, ap + p * nb * MR, ep, sw.w + k0 * N + n0, N, std::min(MR, K - k0), std::min(NR, N - n0));
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

// Codes [K, N] → packed [N, k_blocks, blob], scales, zero points; returns Σ (w − deq)² (double per channel,
// k in order, then over channels in order).
double PackResult(uint8_t* packed, float* scales, uint8_t* zero_points, const uint8_t* codes, const GroupGrid& grid,
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

}  // namespace

GptqResult GptqSweep(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                     const float* hinv_upper, const int32_t* order, const uint8_t* dead, const GptqShape& shape) {
  const BlockwiseShape& s = shape.q;
  const size_t K = s.k, N = s.n, column_block = std::min(shape.column_block, K);
  GptqShape sh = shape;
  sh.column_block = column_block;
  CheckHinv(hinv_upper, K);

  // Wp in sweep order, dead inputs zeroed; every weight checked.
  std::vector<float> w(K * N);
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

  GroupGrid grid(s.KBlocks(), N);
  const size_t width = ChannelTile(N);
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
      for (size_t g = 0; g < s.KBlocks(); g++) {
        FitGroup(grid, g, original.data(), g * s.block, std::min(K, (g + 1) * s.block), n0, cols, s);
      }
    });
  }

  std::vector<uint8_t> codes(K * N);
  std::vector<double> loss(N, 0.0);
  std::vector<float> err_panels(CeilDiv(N, NR) * column_block * NR, 0.0f);
  std::vector<float> a_panels(CeilDiv(K, MR) * MR * column_block);
  const Sweep sw{sh, hinv_upper, order, w.data(), grid, codes.data(), loss.data(), err_panels.data()};
  for (size_t i1 = 0; i1 < K; i1 += column_block) {
    const size_t i2 = std::min(K, i1 + column_block);
    ParallelFor(CeilDiv(N, width), [&](size_t t) {
      const size_t n0 = t * width, cols = std::min(width, N - n0);
      if (s.rounding == Rounding::kHalfEven) {
        SweepBlockRows<true>(sw, i1, i2, n0, cols);
      } else {
        SweepBlockRows<false>(sw, i1, i2, n0, cols);
      }
    });
    if (i2 < K) LazyUpdate(sw, i1, i2, a_panels);
  }

  GptqResult result;
  for (double l : loss) result.loss += l;
  result.loss *= 0.5;
  if (!std::isfinite(result.loss)) ThrowDiverged();
  result.sq_error = PackResult(packed, scales, zero_points, codes.data(), grid, weight, s);
  return result;
}

// ---- bindings ---------------------------------------------------------------------------------------
// gptqSweep(packed, scales, zeroPoints | null, weight: Float32Array [K×N], hinvUpper: Float32Array [K×K],
//           order: Int32Array | null, dead: Uint8Array [K],
//           params: { k, n, bits, blockSize, symmetric, fp16Scales?, rounding?, columnBlock })
//   : Promise<{ loss, sqError }>  — fills packed / scales / zeroPoints (layout of quantizeBlockwise).
// gptqQuantize(packed, scales, zeroPoints | null, weight, hessianSum: Float32Array [K×K],
//              params: { ...as gptqSweep, count, percdamp, actOrder, label? })
//   : Promise<{ loss, sqError, dead }>  — prepareHessian (act-order: by decreasing diag) + the sweep.
// gptqSweepRef / gptqQuantizeRef: same arguments, synchronous, the references.

namespace {

void ExpectLength(Napi::Env env, size_t actual, size_t expected, const char* name, const char* shape) {
  if (actual != expected) {
    ThrowInvalid(env, std::string(name) + " must hold " + shape + " = " + std::to_string(expected) +
                          " elements, but it has " + std::to_string(actual) + ".");
  }
}

struct GptqArgs {
  ArrayArg<uint8_t> packed, zero_points, dead;
  ArrayArg<float> scales, weight, matrix;  // matrix: hinvUpper (sweep) or hessianSum (quantize)
  ArrayArg<int32_t> order;
  GptqShape shape;
  HessianPrepOptions prep;
  bool act_order = false;
};

double FieldNumber(Napi::Env env, const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) ThrowInvalid(env, std::string(name) + " must be a number.");
  return v.As<Napi::Number>().DoubleValue();
}

// for_quantize: arguments of gptqQuantize (packed, scales, zp, weight, hessianSum, params); otherwise of
// gptqSweep (packed, scales, zp, weight, hinvUpper, order, dead, params).
GptqArgs ParseGptq(const Napi::CallbackInfo& info, bool for_quantize) {
  Napi::Env env = info.Env();
  GptqArgs a;
  a.packed = ArgU8(info, 0, "packed");
  a.scales = ArgF32(info, 1, "scales");
  const bool has_zp = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  if (has_zp) a.zero_points = ArgU8(info, 2, "zeroPoints");
  a.weight = ArgF32(info, 3, "weight");
  a.matrix = ArgF32(info, 4, for_quantize ? "hessianSum" : "hinvUpper");
  size_t params_index = 5;
  if (!for_quantize) {
    if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
      a.order = ArgArray<int32_t>(info, 5, "order (an Int32Array)", napi_int32_array);
    }
    a.dead = ArgU8(info, 6, "dead");
    params_index = 7;
  }
  if (params_index >= info.Length() || !info[params_index].IsObject()) ThrowInvalid(env, "params must be an object.");
  Napi::Object o = info[params_index].As<Napi::Object>();
  a.shape.q = ParseBlockwiseParams(env, o, /*for_quantize=*/true);
  const BlockwiseShape& s = a.shape.q;
  a.shape.column_block = FieldSize(env, o, "columnBlock");
  if (a.shape.column_block == 0) ThrowInvalid(env, "columnBlock must be at least 1.");
  if (for_quantize) {
    a.prep.count = FieldNumber(env, o, "count");
    if (!(a.prep.count > 0) || !std::isfinite(a.prep.count)) ThrowInvalid(env, "count must be a positive number.");
    a.prep.percdamp = FieldNumber(env, o, "percdamp");
    if (!(a.prep.percdamp >= 0) || !std::isfinite(a.prep.percdamp)) ThrowInvalid(env, "percdamp must be a finite number ≥ 0.");
    a.act_order = FieldBool(env, o, "actOrder", false);
    Napi::Value label = o.Get("label");
    if (label.IsString()) a.prep.label = label.As<Napi::String>().Utf8Value();
  }

  ExpectLength(env, a.weight.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, a.matrix.length, s.k * s.k, for_quantize ? "hessianSum" : "hinvUpper", "k·k");
  ExpectLength(env, a.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, a.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (s.symmetric && has_zp) ThrowInvalid(env, "zeroPoints must be null for symmetric quantization.");
  if (!s.symmetric && !has_zp) ThrowInvalid(env, "zeroPoints is required for asymmetric quantization.");
  if (has_zp) ExpectLength(env, a.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  if (!for_quantize) {
    ExpectLength(env, a.dead.length, s.k, "dead", "k");
    if (a.order.data) {
      ExpectLength(env, a.order.length, s.k, "order", "k");
      RunSync(env, [&] { hessian_detail::CheckOrder(a.order.data, s.k); });
    }
  }
  const struct { const void* p; size_t bytes; } outputs[] = {
      {a.packed.data, a.packed.length}, {a.scales.data, a.scales.length * 4}, {a.zero_points.data, a.zero_points.length}};
  const struct { const void* p; size_t bytes; } inputs[] = {
      {a.weight.data, a.weight.length * 4}, {a.matrix.data, a.matrix.length * 4}, {a.order.data, a.order.length * 4},
      {a.dead.data, a.dead.length}};
  for (const auto& out : outputs) {
    for (const auto& in : inputs) {
      if (Overlaps(out.p, out.bytes, in.p, in.bytes)) ThrowInvalid(env, "The outputs must not share memory with the inputs.");
    }
  }
  return a;
}

// The raw pointers and settings a worker thread needs (no JavaScript handles).
struct GptqJob {
  uint8_t* packed;
  float* scales;
  uint8_t* zero_points;
  const float* weight;
  const float* matrix;
  const int32_t* order;
  const uint8_t* dead;
  GptqShape shape;
  HessianPrepOptions prep;
  bool act_order;
};

GptqJob JobOf(const GptqArgs& a) {
  return {a.packed.data, a.scales.data, a.zero_points.data, a.weight.data, a.matrix.data, a.order.data, a.dead.data,
          a.shape, a.prep, a.act_order};
}

// gptqQuantize's work: dead inputs and act-order from diag(S), the prepared Hessian, the sweep.
struct QuantizeOutcome {
  GptqResult result;
  size_t dead = 0;
};

template <bool kReference>
QuantizeOutcome RunQuantize(const GptqJob& a) {
  const size_t K = a.shape.q.k;
  std::vector<int32_t> order;
  HessianPrepOptions prep = a.prep;
  if (a.act_order) {
    order.resize(K);
    HessianActOrder(order.data(), a.matrix, K, prep.count);
    prep.order = order.data();
  }
  std::vector<float> hinv(K * K);
  std::vector<uint8_t> dead(K);
  QuantizeOutcome out;
  if (kReference) {
    out.dead = PrepareHessianRef(hinv.data(), dead.data(), a.matrix, K, prep);
    out.result = GptqSweepRef(a.packed, a.scales, a.zero_points, a.weight, hinv.data(), prep.order, dead.data(), a.shape);
  } else {
    out.dead = PrepareHessian(hinv.data(), dead.data(), a.matrix, K, prep);
    out.result = GptqSweep(a.packed, a.scales, a.zero_points, a.weight, hinv.data(), prep.order, dead.data(), a.shape);
  }
  return out;
}

Napi::Object ResultObject(Napi::Env env, const GptqResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("sqError", r.sq_error);
  return o;
}

void KeepAll(KernelWorker* worker, const GptqArgs& a) {
  worker->Keep(a.packed.object);
  worker->Keep(a.scales.object);
  if (a.zero_points.data) worker->Keep(a.zero_points.object);
  worker->Keep(a.weight.object);
  worker->Keep(a.matrix.object);
  if (a.order.data) worker->Keep(a.order.object);
  if (a.dead.data) worker->Keep(a.dead.object);
}

Napi::Value GptqSweepJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, false);
  auto result = std::make_shared<GptqResult>();
  auto* worker = new KernelWorker(
      info.Env(), "gptqSweep",
      [job = JobOf(a), result] {
        *result = GptqSweep(job.packed, job.scales, job.zero_points, job.weight, job.matrix, job.order, job.dead, job.shape);
      },
      [result](Napi::Env env, const KernelWorker&) -> Napi::Value { return ResultObject(env, *result); });
  KeepAll(worker, a);
  return KernelWorker::Start(worker);
}

Napi::Value GptqSweepRefJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, false);
  GptqResult result;
  RunSync(info.Env(), [&] {
    result = GptqSweepRef(a.packed.data, a.scales.data, a.zero_points.data, a.weight.data, a.matrix.data, a.order.data,
                          a.dead.data, a.shape);
  });
  return ResultObject(info.Env(), result);
}

Napi::Value GptqQuantizeJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, true);
  auto outcome = std::make_shared<QuantizeOutcome>();
  auto* worker = new KernelWorker(
      info.Env(), "gptqQuantize", [job = JobOf(a), outcome] { *outcome = RunQuantize<false>(job); },
      [outcome](Napi::Env env, const KernelWorker&) -> Napi::Value {
        Napi::Object o = ResultObject(env, outcome->result);
        o.Set("dead", static_cast<double>(outcome->dead));
        return o;
      });
  KeepAll(worker, a);
  return KernelWorker::Start(worker);
}

Napi::Value GptqQuantizeRefJs(const Napi::CallbackInfo& info) {
  GptqArgs a = ParseGptq(info, true);
  QuantizeOutcome outcome;
  RunSync(info.Env(), [&] { outcome = RunQuantize<true>(JobOf(a)); });
  Napi::Object o = ResultObject(info.Env(), outcome.result);
  o.Set("dead", static_cast<double>(outcome.dead));
  return o;
}

}  // namespace

void RegisterGptq(Napi::Env env, Napi::Object exports) {
  exports.Set("gptqSweep", Napi::Function::New(env, GptqSweepJs, "gptqSweep"));
  exports.Set("gptqSweepRef", Napi::Function::New(env, GptqSweepRefJs, "gptqSweepRef"));
  exports.Set("gptqQuantize", Napi::Function::New(env, GptqQuantizeJs, "gptqQuantize"));
  exports.Set("gptqQuantizeRef", Napi::Function::New(env, GptqQuantizeRefJs, "gptqQuantizeRef"));
}

}  // namespace whittle
