// blockwise.cc — block-wise round-to-nearest quantization of a MatMul weight W [K, N] into the
// com.microsoft.MatMulNBits layout (B [N, k_blocks, block*bits/8], scales [N, k_blocks], zero points
// [N, ceil(k_blocks*bits/8)]), and the inverse. Layout and scale / zero-point rule: blockwise_format.h.
//
// W is row-major [K, N] but blocks run down a column, so the work is cut into strips of 16..256 columns
// (TileWidth: a few strips per thread; one strip per task, tasks spread over the pool), each walked one
// K block at a time, so W is read in contiguous row pieces.
//
// AVX2 path (UseAvx2()): eight columns at a time, one column per 32-bit lane, float16 converted with
// F16C on load. Per block: min / max down the block's rows (8 lanes per instruction; the rows are kept
// in a small stash for the second pass), the eight scales and zero points at once, then each row is
// quantized and its codes OR-ed into 32-bit words — word t of a column holds codes t·32/bits ..
// (t+1)·32/bits - 1, first in the low bits, exactly the column's packed bytes. Four such word vectors are
// transposed in registers (4×4 per 128-bit half) into one 16-byte store per column. Columns left over
// (N mod 8) go through the baseline code. Dequantization runs the same transpose backwards.
// Baseline path: the same strips, one block at a time copied into a small buffer, per column min/max ->
// scale and zero point -> quantize -> pack, with loops over the strip's columns innermost so the compiler
// vectorizes them.
//
// Both paths are byte-identical to the reference: the same float operations in the same order (w·(1/s)
// + zp as a multiply then an add, no FMA contraction), and the squared error summed in double per column
// in k order (one accumulator per column lane), then over columns in order. Rounding avoids libm: x is
// clamped to [0, 2^bits - 1] first (rounding is monotonic and the bounds are integers, so clamp∘round ==
// round∘clamp), then rounded to nearest-even (ROUNDPS, or the 2^23 trick in RoundClamped — both exactly
// std::nearbyint in the default rounding mode); for ties away from zero a tie that went down
// (x - t == 1/2) takes the next integer, which is std::round for x >= 0.
#include "blockwise.h"

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aligned_buffer.h"
#include "blockwise_checks.h"
#include "cpu_features.h"
#include "fp16.h"
#include "napi_helpers.h"
#include "parallel.h"
#include "reference/blockwise_ref.h"

#if WHITTLE_X86_SIMD
#include <immintrin.h>
#endif

namespace whittle {
namespace {

constexpr size_t kTile = 256;  // most columns per task (the row stride of the tile buffers)

// Packs a block of quantized values q[r][kTile] (r = k within the block) into bytes out[i][kTile],
// kBits wide, first value in the low bits — vectorized over the tile's columns.
template <int kBits>
void PackRows(uint8_t* __restrict out, const uint8_t* __restrict q, size_t block, size_t cols) {
  constexpr int kPerByte = 8 / kBits;
  for (size_t i = 0; i < block / kPerByte; i++) {
    uint8_t* __restrict dst = out + i * kTile;
    const uint8_t* __restrict src = q + i * kPerByte * kTile;
    for (size_t j = 0; j < cols; j++) {
      unsigned byte = 0;
      for (int v = 0; v < kPerByte; v++) byte |= static_cast<unsigned>(src[v * kTile + j]) << (v * kBits);
      dst[j] = static_cast<uint8_t>(byte);
    }
  }
}

template <bool kHalfEven>
void QuantizeTile(size_t n0, size_t cols, uint8_t* packed, float* scales, uint8_t* zero_points, const float* w32,
                  const uint16_t* w16, const BlockwiseShape& s, double* column_error) {
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const size_t zp_bytes = s.ZeroPointBytesPerColumn();
  const int per_byte = s.ValuesPerByte();
  const float qmax = static_cast<float>(s.QMax());

  std::vector<float> values_buffer(s.block * kTile);   // [block][kTile]: the block's weights
  std::vector<uint8_t> q_buffer(s.block * kTile);      // [block][kTile]: quantized values
  std::vector<uint8_t> bytes_buffer(blob * kTile);     // [blob][kTile]: packed bytes
  float* __restrict values = values_buffer.data();
  uint8_t* __restrict q = q_buffer.data();
  uint8_t* __restrict bytes = bytes_buffer.data();
  float min[kTile], max[kTile], probe[kTile], reciprocal[kTile], zp_float[kTile], scale[kTile], qf[kTile];
  int zp[kTile];
  double error[kTile] = {};

  if (zero_points) {
    for (size_t j = 0; j < cols; j++) std::fill_n(zero_points + (n0 + j) * zp_bytes, zp_bytes, uint8_t{0});
  }

  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);

    for (size_t r = 0; r < rows; r++) {
      if (w16) {
        F16ToF32Span(values + r * kTile, w16 + (k0 + r) * s.n + n0, cols);
      } else {
        std::copy_n(w32 + (k0 + r) * s.n + n0, cols, values + r * kTile);
      }
    }

    // Range per column; probe becomes NaN when a column holds NaN or ±inf (v - v).
    std::fill(min, min + kTile, FLT_MAX);
    std::fill(max, max + kTile, -FLT_MAX);
    std::fill(probe, probe + kTile, 0.0f);
    for (size_t r = 0; r < rows; r++) {
      const float* __restrict row = values + r * kTile;
      for (size_t j = 0; j < cols; j++) {
        const float v = row[j];
        min[j] = v < min[j] ? v : min[j];
        max[j] = v > max[j] ? v : max[j];
        probe[j] += v - v;
      }
    }
    for (size_t j = 0; j < cols; j++) {
      if (probe[j] != 0.0f) {
        for (size_t r = 0; r < rows; r++) CheckFiniteWeight(values[r * kTile + j], k0 + r, n0 + j);
      }
      const BlockParams p = ComputeBlockParams(min[j], max[j], s);
      CheckScale(p.scale, s, b, n0 + j);
      scale[j] = p.scale;
      reciprocal[j] = p.reciprocal;
      zp[j] = p.zero_point;
      zp_float[j] = static_cast<float>(p.zero_point);
      scales[(n0 + j) * k_blocks + b] = p.scale;
      if (zero_points) {
        zero_points[(n0 + j) * zp_bytes + b / per_byte] |= static_cast<uint8_t>(p.zero_point << ((b % per_byte) * s.bits));
      }
    }

    for (size_t r = 0; r < rows; r++) {
      const float* __restrict row = values + r * kTile;
      uint8_t* __restrict qrow = q + r * kTile;
      for (size_t j = 0; j < cols; j++) qf[j] = RoundClamped<kHalfEven>(row[j] * reciprocal[j] + zp_float[j], qmax);
      for (size_t j = 0; j < cols; j++) qrow[j] = static_cast<uint8_t>(static_cast<int>(qf[j]));
      for (size_t j = 0; j < cols; j++) {
        const float dequantized = (qf[j] - zp_float[j]) * scale[j];  // == float(q - zp) * scale: both exact
        const double diff = static_cast<double>(row[j]) - static_cast<double>(dequantized);
        error[j] += diff * diff;
      }
    }
    for (size_t r = rows; r < s.block; r++) {  // padding of the last block
      for (size_t j = 0; j < cols; j++) q[r * kTile + j] = static_cast<uint8_t>(zp[j]);
    }

    switch (s.bits) {
      case 2: PackRows<2>(bytes, q, s.block, cols); break;
      case 4: PackRows<4>(bytes, q, s.block, cols); break;
      default: PackRows<8>(bytes, q, s.block, cols); break;
    }
    for (size_t j = 0; j < cols; j++) {
      uint8_t* out = packed + ((n0 + j) * k_blocks + b) * blob;
      for (size_t i = 0; i < blob; i++) out[i] = bytes[i * kTile + j];
    }
  }
  std::copy_n(error, cols, column_error + n0);
}

void DequantizeTile(size_t n0, size_t cols, float* weight, const uint8_t* packed, const float* scales,
                    const uint8_t* zero_points, const BlockwiseShape& s) {
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  float scale[kTile];
  int zp[kTile];
  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);
    for (size_t j = 0; j < cols; j++) {
      scale[j] = scales[(n0 + j) * k_blocks + b];
      zp[j] = zero_points ? UnpackValue(zero_points + (n0 + j) * s.ZeroPointBytesPerColumn(), b, s.bits)
                          : s.DefaultZeroPoint();
    }
    for (size_t r = 0; r < rows; r++) {
      float* out = weight + (k0 + r) * s.n + n0;
      for (size_t j = 0; j < cols; j++) {
        const int q = UnpackValue(packed + ((n0 + j) * k_blocks + b) * blob, r, s.bits);
        out[j] = DequantizeValue(q, zp[j], scale[j]);
      }
    }
  }
}

#if WHITTLE_X86_SIMD
// ---- AVX2 path: eight columns per vector ------------------------------------------------------------

#define WHITTLE_AVX2_INLINE WHITTLE_TARGET_AVX2 inline __attribute__((always_inline))

WHITTLE_AVX2_INLINE __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
WHITTLE_AVX2_INLINE __m256 Load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline float ToFloat(float v) { return v; }
inline float ToFloat(uint16_t h) { return F16ToF32Ref(h); }

// True when all eight lanes are finite.
WHITTLE_AVX2_INLINE bool AllFinite(__m256 v) {
  const __m256 abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  return _mm256_movemask_ps(_mm256_cmp_ps(abs, _mm256_set1_ps(FLT_MAX), _CMP_LE_OQ)) == 0xff;
}

// Lane j of a, b, c, d (32-bit words) -> word 0..3 of column j: column j in {0..3} ends up in the low
// 128 bits of (a, b, c, d)[j], column j + 4 in the high 128 bits. Its own inverse.
WHITTLE_AVX2_INLINE void Transpose4x4Halves(__m256i& a, __m256i& b, __m256i& c, __m256i& d) {
  const __m256i t0 = _mm256_unpacklo_epi32(a, b), t1 = _mm256_unpackhi_epi32(a, b);
  const __m256i t2 = _mm256_unpacklo_epi32(c, d), t3 = _mm256_unpackhi_epi32(c, d);
  a = _mm256_unpacklo_epi64(t0, t2);
  b = _mm256_unpackhi_epi64(t0, t2);
  c = _mm256_unpacklo_epi64(t1, t3);
  d = _mm256_unpackhi_epi64(t1, t3);
}

// Rounds x >= 0 to an integer: ties to even (kHalfEven) or away from zero.
template <bool kHalfEven>
WHITTLE_AVX2_INLINE __m256 RoundNonNegative(__m256 x) {
  __m256 t = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (!kHalfEven) {
    const __m256 tie_down = _mm256_cmp_ps(_mm256_sub_ps(x, t), _mm256_set1_ps(0.5f), _CMP_EQ_OQ);
    t = _mm256_add_ps(t, _mm256_and_ps(tie_down, _mm256_set1_ps(1.0f)));
  }
  return t;
}

struct LaneParams {
  __m256 scale;       // as stored
  __m256 reciprocal;  // 1/scale, 0 when scale == 0 or 1/scale overflows
  __m256 zero_point;  // integral, as float
};

// ComputeBlockParams (blockwise_format.h) for eight columns, operation for operation.
template <bool kHalfEven>
WHITTLE_AVX2_INLINE LaneParams BlockParamsAvx2(__m256 min, __m256 max, const BlockwiseShape& s) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 sign = _mm256_set1_ps(-0.0f);
  LaneParams p;
  __m256 scale;
  if (s.symmetric) {
    // m = |max| > |min| ? max : min; scale = -m / 2^(bits-1)
    const __m256 larger = _mm256_cmp_ps(_mm256_andnot_ps(sign, max), _mm256_andnot_ps(sign, min), _CMP_GT_OQ);
    const __m256 m = _mm256_blendv_ps(min, max, larger);
    scale = _mm256_div_ps(_mm256_xor_ps(m, sign), _mm256_set1_ps(static_cast<float>(s.DefaultZeroPoint())));
    p.zero_point = _mm256_set1_ps(static_cast<float>(s.DefaultZeroPoint()));
  } else {
    const __m256 qmax = _mm256_set1_ps(static_cast<float>(s.QMax()));
    min = _mm256_min_ps(zero, min);  // std::min(min, 0.0f) == (0 < min) ? 0 : min
    max = _mm256_max_ps(zero, max);  // std::max(max, 0.0f) == (max < 0) ? 0 : max
    scale = _mm256_div_ps(_mm256_sub_ps(max, min), qmax);
    const __m256 nonzero = _mm256_cmp_ps(scale, zero, _CMP_NEQ_UQ);
    const __m256 zp = _mm256_blendv_ps(min, _mm256_sub_ps(zero, _mm256_div_ps(min, scale)), nonzero);
    __m256 rounded = RoundNonNegative<kHalfEven>(zp);  // only kept where 0 <= zp <= qmax
    rounded = _mm256_blendv_ps(rounded, zero, _mm256_cmp_ps(zp, zero, _CMP_LT_OQ));
    p.zero_point = _mm256_blendv_ps(rounded, qmax, _mm256_cmp_ps(zp, qmax, _CMP_GT_OQ));
  }
  if (s.fp16_scales) {
    scale = _mm256_cvtph_ps(_mm256_cvtps_ph(scale, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  scale = _mm256_and_ps(scale, _mm256_cmp_ps(scale, zero, _CMP_NEQ_UQ));  // -0 -> +0
  p.scale = scale;
  const __m256 reciprocal = _mm256_div_ps(_mm256_set1_ps(1.0f), scale);
  const __m256 finite = _mm256_cmp_ps(_mm256_andnot_ps(sign, reciprocal), _mm256_set1_ps(FLT_MAX), _CMP_LE_OQ);
  p.reciprocal = _mm256_and_ps(reciprocal, finite);
  return p;
}

// One row of eight columns: q = round(clamp(v·(1/scale) + zp, 0, qmax)); error += (v - (q - zp)·scale)²
// in double, lanes 0..3 in error_lo, 4..7 in error_hi.
template <bool kHalfEven>
WHITTLE_AVX2_INLINE __m256i QuantizeRow(__m256 v, const LaneParams& p, __m256 qmax, __m256d& error_lo,
                                        __m256d& error_hi) {
  __m256 x = _mm256_add_ps(_mm256_mul_ps(v, p.reciprocal), p.zero_point);
  x = _mm256_max_ps(x, _mm256_setzero_ps());  // x > 0 ? x : 0
  x = _mm256_min_ps(x, qmax);                 // x < qmax ? x : qmax
  const __m256 q = RoundNonNegative<kHalfEven>(x);
  const __m256 dequantized = _mm256_mul_ps(_mm256_sub_ps(q, p.zero_point), p.scale);  // == float(q - zp)·scale
  const __m256d d_lo = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                     _mm256_cvtps_pd(_mm256_castps256_ps128(dequantized)));
  const __m256d d_hi = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)),
                                     _mm256_cvtps_pd(_mm256_extractf128_ps(dequantized, 1)));
  error_lo = _mm256_add_pd(error_lo, _mm256_mul_pd(d_lo, d_lo));
  error_hi = _mm256_add_pd(error_hi, _mm256_mul_pd(d_hi, d_hi));
  return _mm256_cvttps_epi32(q);
}

// Range pass over kGroups adjacent 8-column groups of a K block of W: per group, min,
// max and the plain sum of the block's rows; the rows are also converted into stash [group][row][8]
// for the quantize pass. A NaN or ±inf makes the sum non-finite (so may a huge finite block: then the
// scalar check finds nothing and the work goes on).
template <size_t kGroups, typename Src>
WHITTLE_AVX2_INLINE void RangePass(const Src* base, size_t stride, size_t rows, size_t block, float* stash,
                                   __m256* min, __m256* max, __m256* sum) {
  for (size_t i = 0; i < kGroups; i++) {
    min[i] = _mm256_set1_ps(FLT_MAX);
    max[i] = _mm256_set1_ps(-FLT_MAX);
    sum[i] = _mm256_setzero_ps();
  }
  for (size_t r = 0; r < rows; r++) {
#pragma GCC unroll 4
    for (size_t i = 0; i < kGroups; i++) {
      const __m256 v = Load8(base + r * stride + 8 * i);
      _mm256_store_ps(stash + (i * block + r) * 8, v);
      min[i] = _mm256_min_ps(v, min[i]);  // v < min ? v : min
      max[i] = _mm256_max_ps(v, max[i]);  // v > max ? v : max
      sum[i] = _mm256_add_ps(sum[i], v);
    }
  }
}

// Columns n0 .. n0 + 8·groups - 1, all blocks. column_error[n] is set for those columns.
// W is read one K block at a time, kLineGroups groups at once; the quantize pass then works from the
// stash, not from W: rows of W lie N·4 (or N·2) bytes apart, for the usual power-of-two N a multiple of
// 4 KiB, so a block's rows all fall into one L1 set and would not stay cached between the passes.
template <typename Src, int kBits, bool kHalfEven>
WHITTLE_TARGET_AVX2 void QuantizeStripAvx2(size_t n0, size_t groups, uint8_t* packed, float* scales,
                                           uint8_t* zero_points, const Src* w, const BlockwiseShape& s,
                                           double* column_error) {
  constexpr size_t kPerWord = 32 / kBits;  // codes per 32-bit word
  constexpr int kPerByte = 8 / kBits;
  // float32: two groups, one 64-byte line of each row; float16: one group (four, a whole line, need
  // more registers than there are and measured slower).
  constexpr size_t kLineGroups = sizeof(Src) == 4 ? 2 : 1;
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const size_t words = blob / 4;  // 32-bit words per column and block: 1 .. 64
  const size_t column_stride = k_blocks * blob;
  const size_t zp_bytes = s.ZeroPointBytesPerColumn();
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(s.QMax()));

  __m256i word[64];
  std::vector<float> stash_buffer(kLineGroups * s.block * 8 + 8);  // [group][row][8], 32-byte aligned below
  float* stash = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(stash_buffer.data()) + 31) & ~uintptr_t{31});
  __m256 min[kLineGroups], max[kLineGroups], sum[kLineGroups];
  alignas(32) float lane_scale[8];
  alignas(32) int32_t lane_zp[8];
  alignas(32) uint32_t small[4 * 8];  // words < 4: [word][lane]

  if (zero_points) std::fill_n(zero_points + n0 * zp_bytes, groups * 8 * zp_bytes, uint8_t{0});
  std::fill_n(column_error + n0, groups * 8, 0.0);

  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);
    for (size_t g0 = 0; g0 < groups; g0 += kLineGroups) {
      const size_t count = std::min(kLineGroups, groups - g0);
      const Src* line = w + k0 * s.n + n0 + 8 * g0;
      if (count == kLineGroups) {
        RangePass<kLineGroups>(line, s.n, rows, s.block, stash, min, max, sum);
      } else {
        for (size_t i = 0; i < count; i++) {
          RangePass<1>(line + 8 * i, s.n, rows, s.block, stash + i * s.block * 8, min + i, max + i, sum + i);
        }
      }

      for (size_t i = 0; i < count; i++) {
        const size_t n = n0 + 8 * (g0 + i);
        const Src* base = line + 8 * i;
        const float* values = stash + i * s.block * 8;  // [row][8]
        if (!AllFinite(sum[i])) {
          for (size_t j = 0; j < 8; j++) {
            for (size_t r = 0; r < rows; r++) CheckFiniteWeight(ToFloat(base[r * s.n + j]), k0 + r, n + j);
          }
        }

        const LaneParams p = BlockParamsAvx2<kHalfEven>(min[i], max[i], s);
        _mm256_store_ps(lane_scale, p.scale);
        if (!AllFinite(p.scale)) {
          for (size_t j = 0; j < 8; j++) CheckScale(lane_scale[j], s, b, n + j);
        }
        for (size_t j = 0; j < 8; j++) scales[(n + j) * k_blocks + b] = lane_scale[j];
        const __m256i zp = _mm256_cvttps_epi32(p.zero_point);
        if (zero_points) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(lane_zp), zp);
          const int shift = static_cast<int>(b % kPerByte) * kBits;
          for (size_t j = 0; j < 8; j++) {
            zero_points[(n + j) * zp_bytes + b / kPerByte] |= static_cast<uint8_t>(lane_zp[j] << shift);
          }
        }

        __m256d error_lo = _mm256_loadu_pd(column_error + n);
        __m256d error_hi = _mm256_loadu_pd(column_error + n + 4);
        const size_t full_words = rows / kPerWord;
        for (size_t t = 0; t < full_words; t++) {
          const float* row = values + t * kPerWord * 8;
          __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 16
          for (size_t v = 0; v < kPerWord; v++) {
            const __m256i q = QuantizeRow<kHalfEven>(_mm256_load_ps(row + v * 8), p, qmax, error_lo, error_hi);
            acc = _mm256_or_si256(acc, _mm256_slli_epi32(q, static_cast<int>(v * kBits)));
          }
          word[t] = acc;
        }
        for (size_t t = full_words; t < words; t++) {  // the last block's padding holds the zero point
          __m256i acc = _mm256_setzero_si256();
          for (size_t v = 0; v < kPerWord; v++) {
            const size_t r = t * kPerWord + v;
            const __m256i q =
                r < rows ? QuantizeRow<kHalfEven>(_mm256_load_ps(values + r * 8), p, qmax, error_lo, error_hi) : zp;
            acc = _mm256_or_si256(acc, _mm256_sll_epi32(q, _mm_cvtsi32_si128(static_cast<int>(v * kBits))));
          }
          word[t] = acc;
        }
        _mm256_storeu_pd(column_error + n, error_lo);
        _mm256_storeu_pd(column_error + n + 4, error_hi);

        uint8_t* out = packed + (n * k_blocks + b) * blob;
        if (words >= 4) {
          for (size_t t = 0; t < words; t += 4) {
            __m256i c0 = word[t], c1 = word[t + 1], c2 = word[t + 2], c3 = word[t + 3];
            Transpose4x4Halves(c0, c1, c2, c3);
            uint8_t* o = out + 4 * t;
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(c0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + column_stride), _mm256_castsi256_si128(c1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * column_stride), _mm256_castsi256_si128(c2));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 3 * column_stride), _mm256_castsi256_si128(c3));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 4 * column_stride), _mm256_extracti128_si256(c0, 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 5 * column_stride), _mm256_extracti128_si256(c1, 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 6 * column_stride), _mm256_extracti128_si256(c2, 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 7 * column_stride), _mm256_extracti128_si256(c3, 1));
          }
        } else {
          for (size_t t = 0; t < words; t++) _mm256_store_si256(reinterpret_cast<__m256i*>(small + 8 * t), word[t]);
          for (size_t j = 0; j < 8; j++) {
            for (size_t t = 0; t < words; t++) std::memcpy(out + j * column_stride + 4 * t, small + 8 * t + j, 4);
          }
        }
      }
    }
  }
}

template <typename Src, bool kHalfEven>
void QuantizeStripAvx2Bits(size_t n0, size_t groups, uint8_t* packed, float* scales, uint8_t* zero_points,
                           const Src* w, const BlockwiseShape& s, double* column_error) {
  switch (s.bits) {
    case 2: return QuantizeStripAvx2<Src, 2, kHalfEven>(n0, groups, packed, scales, zero_points, w, s, column_error);
    case 4: return QuantizeStripAvx2<Src, 4, kHalfEven>(n0, groups, packed, scales, zero_points, w, s, column_error);
    default: return QuantizeStripAvx2<Src, 8, kHalfEven>(n0, groups, packed, scales, zero_points, w, s, column_error);
  }
}

template <typename Src>
void QuantizeStripAvx2Dispatch(size_t n0, size_t groups, uint8_t* packed, float* scales, uint8_t* zero_points,
                               const Src* w, const BlockwiseShape& s, double* column_error) {
  if (s.rounding == Rounding::kHalfEven) {
    QuantizeStripAvx2Bits<Src, true>(n0, groups, packed, scales, zero_points, w, s, column_error);
  } else {
    QuantizeStripAvx2Bits<Src, false>(n0, groups, packed, scales, zero_points, w, s, column_error);
  }
}

// Inverse for columns n0 .. n0 + 8·groups - 1: the words of eight columns are transposed back into
// vectors whose lane j is column j, then each row is w = float(q - zp)·scale, stored 8 columns wide.
template <int kBits>
WHITTLE_TARGET_AVX2 void DequantizeStripAvx2(size_t n0, size_t groups, float* weight, const uint8_t* packed,
                                             const float* scales, const uint8_t* zero_points, const BlockwiseShape& s) {
  constexpr size_t kPerWord = 32 / kBits;
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const size_t words = blob / 4;
  const size_t column_stride = k_blocks * blob;
  const __m256i mask = _mm256_set1_epi32((1 << kBits) - 1);
  alignas(32) float lane_scale[8];
  alignas(32) int32_t lane_zp[8];
  alignas(32) uint32_t small[4 * 8];
  __m256i word[4];

  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);
    for (size_t g = 0; g < groups; g++) {
      const size_t n = n0 + 8 * g;
      for (size_t j = 0; j < 8; j++) {
        lane_scale[j] = scales[(n + j) * k_blocks + b];
        lane_zp[j] = zero_points ? UnpackValue(zero_points + (n + j) * s.ZeroPointBytesPerColumn(), b, kBits)
                                 : s.DefaultZeroPoint();
      }
      const __m256 scale = _mm256_load_ps(lane_scale);
      const __m256i zp = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_zp));
      const uint8_t* in = packed + (n * k_blocks + b) * blob;
      float* out = weight + k0 * s.n + n;

      for (size_t t0 = 0; t0 < words; t0 += 4) {
        const size_t count = std::min<size_t>(4, words - t0);
        if (count == 4) {
          const uint8_t* i = in + 4 * t0;
          auto half = [&](size_t j) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(i + j * column_stride)); };
          word[0] = _mm256_inserti128_si256(_mm256_castsi128_si256(half(0)), half(4), 1);
          word[1] = _mm256_inserti128_si256(_mm256_castsi128_si256(half(1)), half(5), 1);
          word[2] = _mm256_inserti128_si256(_mm256_castsi128_si256(half(2)), half(6), 1);
          word[3] = _mm256_inserti128_si256(_mm256_castsi128_si256(half(3)), half(7), 1);
          Transpose4x4Halves(word[0], word[1], word[2], word[3]);
        } else {
          for (size_t j = 0; j < 8; j++) {
            for (size_t t = 0; t < count; t++) std::memcpy(small + 8 * t + j, in + j * column_stride + 4 * t, 4);
          }
          for (size_t t = 0; t < count; t++) word[t] = _mm256_load_si256(reinterpret_cast<const __m256i*>(small + 8 * t));
        }
        for (size_t t = 0; t < count; t++) {
          const size_t r0 = (t0 + t) * kPerWord;
          const size_t n_rows = std::min(kPerWord, rows > r0 ? rows - r0 : 0);
          if (n_rows == kPerWord) {
#pragma GCC unroll 16
            for (size_t v = 0; v < kPerWord; v++) {
              const __m256i q = _mm256_and_si256(_mm256_srli_epi32(word[t], static_cast<int>(v * kBits)), mask);
              _mm256_storeu_ps(out + (r0 + v) * s.n, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), scale));
            }
          } else {
            for (size_t v = 0; v < n_rows; v++) {
              const __m256i q = _mm256_and_si256(_mm256_srl_epi32(word[t], _mm_cvtsi32_si128(static_cast<int>(v * kBits))), mask);
              _mm256_storeu_ps(out + (r0 + v) * s.n, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), scale));
            }
          }
        }
      }
    }
  }
}

void DequantizeStripAvx2Bits(size_t n0, size_t groups, float* weight, const uint8_t* packed, const float* scales,
                             const uint8_t* zero_points, const BlockwiseShape& s) {
  switch (s.bits) {
    case 2: return DequantizeStripAvx2<2>(n0, groups, weight, packed, scales, zero_points, s);
    case 4: return DequantizeStripAvx2<4>(n0, groups, weight, packed, scales, zero_points, s);
    default: return DequantizeStripAvx2<8>(n0, groups, weight, packed, scales, zero_points, s);
  }
}

// ---- AVX-512 path: sixteen columns per vector -------------------------------------------------------
// The AVX2 algorithm with 16 lanes (one 64-byte line of a float32 row per load): the same operations in
// the same order per lane, so the bytes and the per-column error sums are the same. Codes of a column are
// OR-ed into 32-bit words; four word vectors are transposed within each 128-bit quarter (4×4), which
// leaves column 4L + j in quarter L of vector j, and each quarter is one 16-byte store.

#define WHITTLE_AVX512_INLINE WHITTLE_TARGET_AVX512 inline __attribute__((always_inline))

WHITTLE_AVX512_INLINE __m512 Load16(const float* p) { return _mm512_loadu_ps(p); }
WHITTLE_AVX512_INLINE __m512 Load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

WHITTLE_AVX512_INLINE bool AllFinite16(__m512 v) {
  const __m512 abs = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), v);
  return _mm512_cmp_ps_mask(abs, _mm512_set1_ps(FLT_MAX), _CMP_LE_OQ) == 0xffff;
}

template <bool kHalfEven>
WHITTLE_AVX512_INLINE __m512 RoundNonNegative16(__m512 x) {
  __m512 t = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (!kHalfEven) {
    const __mmask16 tie_down = _mm512_cmp_ps_mask(_mm512_sub_ps(x, t), _mm512_set1_ps(0.5f), _CMP_EQ_OQ);
    t = _mm512_mask_add_ps(t, tie_down, t, _mm512_set1_ps(1.0f));
  }
  return t;
}

struct LaneParams16 {
  __m512 scale, reciprocal, zero_point;
};

// BlockParamsAvx2 for sixteen columns, operation for operation.
template <bool kHalfEven>
WHITTLE_AVX512_INLINE LaneParams16 BlockParamsAvx512(__m512 min, __m512 max, const BlockwiseShape& s) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 sign = _mm512_set1_ps(-0.0f);
  LaneParams16 p;
  __m512 scale;
  if (s.symmetric) {
    const __mmask16 larger = _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, max), _mm512_andnot_ps(sign, min), _CMP_GT_OQ);
    const __m512 m = _mm512_mask_blend_ps(larger, min, max);
    scale = _mm512_div_ps(_mm512_xor_ps(m, sign), _mm512_set1_ps(static_cast<float>(s.DefaultZeroPoint())));
    p.zero_point = _mm512_set1_ps(static_cast<float>(s.DefaultZeroPoint()));
  } else {
    const __m512 qmax = _mm512_set1_ps(static_cast<float>(s.QMax()));
    min = _mm512_min_ps(zero, min);
    max = _mm512_max_ps(zero, max);
    scale = _mm512_div_ps(_mm512_sub_ps(max, min), qmax);
    const __mmask16 nonzero = _mm512_cmp_ps_mask(scale, zero, _CMP_NEQ_UQ);
    const __m512 zp = _mm512_mask_blend_ps(nonzero, min, _mm512_sub_ps(zero, _mm512_div_ps(min, scale)));
    __m512 rounded = RoundNonNegative16<kHalfEven>(zp);
    rounded = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(zp, zero, _CMP_LT_OQ), rounded, zero);
    p.zero_point = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(zp, qmax, _CMP_GT_OQ), rounded, qmax);
  }
  if (s.fp16_scales) {
    scale = _mm512_cvtph_ps(_mm512_cvtps_ph(scale, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  scale = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(scale, zero, _CMP_NEQ_UQ), scale);  // -0 -> +0
  p.scale = scale;
  const __m512 reciprocal = _mm512_div_ps(_mm512_set1_ps(1.0f), scale);
  const __mmask16 finite = _mm512_cmp_ps_mask(_mm512_andnot_ps(sign, reciprocal), _mm512_set1_ps(FLT_MAX), _CMP_LE_OQ);
  p.reciprocal = _mm512_maskz_mov_ps(finite, reciprocal);
  return p;
}

// One row of sixteen columns; error lanes 0..7 in error_lo, 8..15 in error_hi (double).
template <bool kHalfEven>
WHITTLE_AVX512_INLINE __m512i QuantizeRow16(__m512 v, const LaneParams16& p, __m512 qmax, __m512d& error_lo,
                                            __m512d& error_hi) {
  __m512 x = _mm512_add_ps(_mm512_mul_ps(v, p.reciprocal), p.zero_point);
  x = _mm512_max_ps(x, _mm512_setzero_ps());
  x = _mm512_min_ps(x, qmax);
  const __m512 q = RoundNonNegative16<kHalfEven>(x);
  const __m512 dequantized = _mm512_mul_ps(_mm512_sub_ps(q, p.zero_point), p.scale);
  const __m512d d_lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(_mm512_castps512_ps256(dequantized)));
  const __m512d d_hi = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(dequantized, 1)));
  error_lo = _mm512_add_pd(error_lo, _mm512_mul_pd(d_lo, d_lo));
  error_hi = _mm512_add_pd(error_hi, _mm512_mul_pd(d_hi, d_hi));
  return _mm512_cvttps_epi32(q);
}

// Columns n0 .. n0 + 16·groups - 1, all blocks (see QuantizeStripAvx2; one 16-column group at a time).
template <typename Src, int kBits, bool kHalfEven>
WHITTLE_TARGET_AVX512 void QuantizeStripAvx512(size_t n0, size_t groups, uint8_t* packed, float* scales,
                                               uint8_t* zero_points, const Src* w, const BlockwiseShape& s,
                                               double* column_error) {
  constexpr size_t kPerWord = 32 / kBits;
  constexpr int kPerByte = 8 / kBits;
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const size_t words = blob / 4;
  const size_t column_stride = k_blocks * blob;
  const size_t zp_bytes = s.ZeroPointBytesPerColumn();
  const __m512 qmax = _mm512_set1_ps(static_cast<float>(s.QMax()));

  __m512i word[64];
  AlignedVector<float> stash(s.block * 16);  // [row][16]
  alignas(64) float lane_scale[16];
  alignas(64) int32_t lane_zp[16];
  alignas(64) uint32_t small[4 * 16];  // words < 4: [word][lane]

  if (zero_points) std::fill_n(zero_points + n0 * zp_bytes, groups * 16 * zp_bytes, uint8_t{0});
  std::fill_n(column_error + n0, groups * 16, 0.0);

  for (size_t b = 0; b < k_blocks; b++) {
    const size_t k0 = b * s.block;
    const size_t rows = std::min(s.block, s.k - k0);
    for (size_t g = 0; g < groups; g++) {
      const size_t n = n0 + 16 * g;
      const Src* base = w + k0 * s.n + n;
      __m512 min = _mm512_set1_ps(FLT_MAX), max = _mm512_set1_ps(-FLT_MAX), sum = _mm512_setzero_ps();
      for (size_t r = 0; r < rows; r++) {
        const __m512 v = Load16(base + r * s.n);
        _mm512_store_ps(stash.data() + r * 16, v);
        min = _mm512_min_ps(v, min);
        max = _mm512_max_ps(v, max);
        sum = _mm512_add_ps(sum, v);
      }
      if (!AllFinite16(sum)) {
        for (size_t j = 0; j < 16; j++) {
          for (size_t r = 0; r < rows; r++) CheckFiniteWeight(ToFloat(base[r * s.n + j]), k0 + r, n + j);
        }
      }

      const LaneParams16 p = BlockParamsAvx512<kHalfEven>(min, max, s);
      _mm512_store_ps(lane_scale, p.scale);
      if (!AllFinite16(p.scale)) {
        for (size_t j = 0; j < 16; j++) CheckScale(lane_scale[j], s, b, n + j);
      }
      for (size_t j = 0; j < 16; j++) scales[(n + j) * k_blocks + b] = lane_scale[j];
      const __m512i zp = _mm512_cvttps_epi32(p.zero_point);
      if (zero_points) {
        _mm512_store_si512(lane_zp, zp);
        const int shift = static_cast<int>(b % kPerByte) * kBits;
        for (size_t j = 0; j < 16; j++) {
          zero_points[(n + j) * zp_bytes + b / kPerByte] |= static_cast<uint8_t>(lane_zp[j] << shift);
        }
      }

      __m512d error_lo = _mm512_loadu_pd(column_error + n);
      __m512d error_hi = _mm512_loadu_pd(column_error + n + 8);
      const float* values = stash.data();
      const size_t full_words = rows / kPerWord;
      for (size_t t = 0; t < full_words; t++) {
        const float* row = values + t * kPerWord * 16;
        __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 16
        for (size_t v = 0; v < kPerWord; v++) {
          const __m512i q = QuantizeRow16<kHalfEven>(_mm512_load_ps(row + v * 16), p, qmax, error_lo, error_hi);
          acc = _mm512_or_si512(acc, _mm512_slli_epi32(q, static_cast<unsigned>(v * kBits)));
        }
        word[t] = acc;
      }
      for (size_t t = full_words; t < words; t++) {  // the last block's padding holds the zero point
        __m512i acc = _mm512_setzero_si512();
        for (size_t v = 0; v < kPerWord; v++) {
          const size_t r = t * kPerWord + v;
          const __m512i q = r < rows ? QuantizeRow16<kHalfEven>(_mm512_load_ps(values + r * 16), p, qmax, error_lo, error_hi) : zp;
          acc = _mm512_or_si512(acc, _mm512_sll_epi32(q, _mm_cvtsi32_si128(static_cast<int>(v * kBits))));
        }
        word[t] = acc;
      }
      _mm512_storeu_pd(column_error + n, error_lo);
      _mm512_storeu_pd(column_error + n + 8, error_hi);

      uint8_t* out = packed + (n * k_blocks + b) * blob;
      if (words >= 4) {
        for (size_t t = 0; t < words; t += 4) {
          const __m512i t0 = _mm512_unpacklo_epi32(word[t], word[t + 1]), t1 = _mm512_unpackhi_epi32(word[t], word[t + 1]);
          const __m512i t2 = _mm512_unpacklo_epi32(word[t + 2], word[t + 3]), t3 = _mm512_unpackhi_epi32(word[t + 2], word[t + 3]);
          const __m512i c[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                                _mm512_unpackhi_epi64(t1, t3)};
          uint8_t* o = out + 4 * t;
          for (size_t j = 0; j < 4; j++) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + j * column_stride), _mm512_extracti32x4_epi32(c[j], 0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (4 + j) * column_stride), _mm512_extracti32x4_epi32(c[j], 1));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (8 + j) * column_stride), _mm512_extracti32x4_epi32(c[j], 2));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + (12 + j) * column_stride), _mm512_extracti32x4_epi32(c[j], 3));
          }
        }
      } else {
        for (size_t t = 0; t < words; t++) _mm512_store_si512(small + 16 * t, word[t]);
        for (size_t j = 0; j < 16; j++) {
          for (size_t t = 0; t < words; t++) std::memcpy(out + j * column_stride + 4 * t, small + 16 * t + j, 4);
        }
      }
    }
  }
}

template <typename Src>
void QuantizeStripAvx512Dispatch(size_t n0, size_t groups, uint8_t* packed, float* scales, uint8_t* zero_points,
                                 const Src* w, const BlockwiseShape& s, double* column_error) {
  const bool even = s.rounding == Rounding::kHalfEven;
  switch (s.bits) {
    case 2:
      return even ? QuantizeStripAvx512<Src, 2, true>(n0, groups, packed, scales, zero_points, w, s, column_error)
                  : QuantizeStripAvx512<Src, 2, false>(n0, groups, packed, scales, zero_points, w, s, column_error);
    case 4:
      return even ? QuantizeStripAvx512<Src, 4, true>(n0, groups, packed, scales, zero_points, w, s, column_error)
                  : QuantizeStripAvx512<Src, 4, false>(n0, groups, packed, scales, zero_points, w, s, column_error);
    default:
      return even ? QuantizeStripAvx512<Src, 8, true>(n0, groups, packed, scales, zero_points, w, s, column_error)
                  : QuantizeStripAvx512<Src, 8, false>(n0, groups, packed, scales, zero_points, w, s, column_error);
  }
}

#undef WHITTLE_AVX512_INLINE
#undef WHITTLE_AVX2_INLINE
#endif  // WHITTLE_X86_SIMD

// Columns per task: wide tiles read W in long row pieces (better streaming), but there should be a few
// tasks per thread to balance the load.
size_t TileWidth(size_t n) {
  const size_t wanted_tasks = 4 * static_cast<size_t>(Threads());
  size_t width = CeilDiv(CeilDiv(n, wanted_tasks), 16) * 16;
  return std::clamp<size_t>(width, 16, kTile);
}

}  // namespace

double QuantizeBlockwise(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight_f32,
                         const uint16_t* weight_f16, const BlockwiseShape& s) {
  std::vector<double> column_error(s.n);
  const size_t width = TileWidth(s.n);
  [[maybe_unused]] const bool avx2 = UseAvx2();
  [[maybe_unused]] const bool avx512 = UseAvx512Wide();
  ParallelFor(CeilDiv(s.n, width), [&](size_t tile) {
    size_t n0 = tile * width;
    size_t cols = std::min(width, s.n - n0);
#if WHITTLE_X86_SIMD
    if (avx512 && cols >= 16) {
      const size_t groups = cols / 16;
      if (weight_f16) {
        QuantizeStripAvx512Dispatch(n0, groups, packed, scales, zero_points, weight_f16, s, column_error.data());
      } else {
        QuantizeStripAvx512Dispatch(n0, groups, packed, scales, zero_points, weight_f32, s, column_error.data());
      }
      n0 += 16 * groups;
      cols -= 16 * groups;
      if (cols == 0) return;
    }
    if (avx2 && cols >= 8) {
      const size_t groups = cols / 8;
      if (weight_f16) {
        QuantizeStripAvx2Dispatch(n0, groups, packed, scales, zero_points, weight_f16, s, column_error.data());
      } else {
        QuantizeStripAvx2Dispatch(n0, groups, packed, scales, zero_points, weight_f32, s, column_error.data());
      }
      n0 += 8 * groups;
      cols -= 8 * groups;
      if (cols == 0) return;
    }
#endif
    if (s.rounding == Rounding::kHalfEven) {
      QuantizeTile<true>(n0, cols, packed, scales, zero_points, weight_f32, weight_f16, s, column_error.data());
    } else {
      QuantizeTile<false>(n0, cols, packed, scales, zero_points, weight_f32, weight_f16, s, column_error.data());
    }
  });
  double total = 0.0;
  for (double e : column_error) total += e;
  return total;
}

void DequantizeBlockwise(float* weight, const uint8_t* packed, const float* scales, const uint8_t* zero_points,
                         const BlockwiseShape& s) {
  const size_t width = TileWidth(s.n);
  [[maybe_unused]] const bool avx2 = UseAvx2();
  ParallelFor(CeilDiv(s.n, width), [&](size_t tile) {
    size_t n0 = tile * width;
    size_t cols = std::min(width, s.n - n0);
#if WHITTLE_X86_SIMD
    if (avx2 && cols >= 8) {
      const size_t groups = cols / 8;
      DequantizeStripAvx2Bits(n0, groups, weight, packed, scales, zero_points, s);
      n0 += 8 * groups;
      cols -= 8 * groups;
      if (cols == 0) return;
    }
#endif
    DequantizeTile(n0, cols, weight, packed, scales, zero_points, s);
  });
}

// ---- bindings ---------------------------------------------------------------------------------------
// quantizeBlockwise(packed: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | null,
//                   weight: Float32Array | Uint16Array (float16 bits),
//                   params: { k, n, bits, blockSize, symmetric, fp16Scales?, rounding?: 'half-even' | 'half-away' })
//   : Promise<number>  — fills packed / scales / zeroPoints, resolves with Σ (w - dequantized)².
// dequantizeBlockwise(weight: Float32Array, packed, scales, zeroPoints | null, params: { k, n, bits, blockSize })
//   : Promise<Float32Array>  — fills weight [K, N] and resolves with it.
// quantizeBlockwiseRef / dequantizeBlockwiseRef: same arguments, synchronous, return number / undefined.

namespace {

BlockwiseShape ParseShape(const Napi::CallbackInfo& info, size_t index, bool for_quantize) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsObject()) ThrowInvalid(env, "params must be an object.");
  return ParseBlockwiseParams(env, info[index].As<Napi::Object>(), for_quantize);
}

struct QuantizeArgs {
  ArrayArg<uint8_t> packed;
  ArrayArg<float> scales;
  ArrayArg<uint8_t> zero_points;  // data == nullptr when absent
  ArrayArg<float> w32;
  ArrayArg<uint16_t> w16;
  Napi::Object weight;
  BlockwiseShape shape;
};

QuantizeArgs ParseQuantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QuantizeArgs q;
  q.packed = ArgU8(info, 0, "packed");
  q.scales = ArgF32(info, 1, "scales");
  const bool has_zp = info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined();
  if (has_zp) q.zero_points = ArgU8(info, 2, "zeroPoints");
  if (info.Length() > 3 && info[3].IsTypedArray() && info[3].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    q.w16 = ArgU16(info, 3, "weight");
    q.weight = q.w16.object;
  } else {
    q.w32 = ArgF32(info, 3, "weight");
    q.weight = q.w32.object;
  }
  q.shape = ParseShape(info, 4, true);
  const BlockwiseShape& s = q.shape;
  ExpectLength(env, q.w16.data ? q.w16.length : q.w32.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, q.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, q.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (s.symmetric && has_zp) ThrowInvalid(env, "zeroPoints must be null for symmetric quantization.");
  if (!s.symmetric && !has_zp) ThrowInvalid(env, "zeroPoints is required for asymmetric quantization.");
  if (has_zp) ExpectLength(env, q.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  const void* w = q.w16.data ? static_cast<const void*>(q.w16.data) : static_cast<const void*>(q.w32.data);
  const size_t wb = s.k * s.n * (q.w16.data ? 2 : 4);
  if (Overlaps(w, wb, q.packed.data, q.packed.length) || Overlaps(w, wb, q.scales.data, q.scales.length * 4) ||
      Overlaps(w, wb, q.zero_points.data, q.zero_points.length)) {
    ThrowInvalid(env, "The outputs must not share memory with the weight.");
  }
  return q;
}

Napi::Value QuantizeBlockwiseJs(const Napi::CallbackInfo& info) {
  QuantizeArgs q = ParseQuantize(info);
  auto error = std::make_shared<double>(0.0);
  auto* worker = new KernelWorker(
      info.Env(), "quantizeBlockwise",
      [q_packed = q.packed.data, q_scales = q.scales.data, q_zp = q.zero_points.data, w32 = q.w32.data,
       w16 = q.w16.data, shape = q.shape, error] {
        *error = QuantizeBlockwise(q_packed, q_scales, q_zp, w32, w16, shape);
      },
      [error](Napi::Env env, const KernelWorker&) -> Napi::Value { return Napi::Number::New(env, *error); });
  worker->Keep(q.packed.object);
  worker->Keep(q.scales.object);
  if (q.zero_points.data) worker->Keep(q.zero_points.object);
  worker->Keep(q.weight);
  return KernelWorker::Start(worker);
}

Napi::Value QuantizeBlockwiseRefJs(const Napi::CallbackInfo& info) {
  QuantizeArgs q = ParseQuantize(info);
  double error = 0.0;
  RunSync(info.Env(), [&] {
    error = QuantizeBlockwiseRef(q.packed.data, q.scales.data, q.zero_points.data, q.w32.data, q.w16.data, q.shape);
  });
  return Napi::Number::New(info.Env(), error);
}

struct DequantizeArgs {
  ArrayArg<float> weight;
  ArrayArg<uint8_t> packed;
  ArrayArg<float> scales;
  ArrayArg<uint8_t> zero_points;
  BlockwiseShape shape;
};

DequantizeArgs ParseDequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DequantizeArgs d;
  d.weight = ArgF32(info, 0, "weight");
  d.packed = ArgU8(info, 1, "packed");
  d.scales = ArgF32(info, 2, "scales");
  const bool has_zp = info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined();
  if (has_zp) d.zero_points = ArgU8(info, 3, "zeroPoints");
  d.shape = ParseShape(info, 4, false);
  const BlockwiseShape& s = d.shape;
  ExpectLength(env, d.weight.length, s.k * s.n, "weight", "k·n");
  ExpectLength(env, d.packed.length, s.PackedBytes(), "packed", "n·kBlocks·(blockSize·bits/8)");
  ExpectLength(env, d.scales.length, s.ScaleCount(), "scales", "n·kBlocks");
  if (has_zp) ExpectLength(env, d.zero_points.length, s.ZeroPointBytes(), "zeroPoints", "n·ceil(kBlocks·bits/8)");
  const size_t wb = d.weight.length * 4;
  if (Overlaps(d.weight.data, wb, d.packed.data, d.packed.length) ||
      Overlaps(d.weight.data, wb, d.scales.data, d.scales.length * 4) ||
      Overlaps(d.weight.data, wb, d.zero_points.data, d.zero_points.length)) {
    ThrowInvalid(env, "The output weight must not share memory with the inputs.");
  }
  return d;
}

Napi::Value DequantizeBlockwiseJs(const Napi::CallbackInfo& info) {
  DequantizeArgs d = ParseDequantize(info);
  auto* worker = new KernelWorker(
      info.Env(), "dequantizeBlockwise",
      [w = d.weight.data, p = d.packed.data, sc = d.scales.data, zp = d.zero_points.data, shape = d.shape] {
        DequantizeBlockwise(w, p, sc, zp, shape);
      },
      [](Napi::Env, const KernelWorker& w) -> Napi::Value { return w.Kept(0); });
  worker->Keep(d.weight.object);  // Kept(0): the result
  worker->Keep(d.packed.object);
  worker->Keep(d.scales.object);
  if (d.zero_points.data) worker->Keep(d.zero_points.object);
  return KernelWorker::Start(worker);
}

void DequantizeBlockwiseRefJs(const Napi::CallbackInfo& info) {
  DequantizeArgs d = ParseDequantize(info);
  RunSync(info.Env(), [&] { DequantizeBlockwiseRef(d.weight.data, d.packed.data, d.scales.data, d.zero_points.data, d.shape); });
}

}  // namespace

void RegisterBlockwise(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeBlockwise", Napi::Function::New(env, QuantizeBlockwiseJs, "quantizeBlockwise"));
  exports.Set("quantizeBlockwiseRef", Napi::Function::New(env, QuantizeBlockwiseRefJs, "quantizeBlockwiseRef"));
  exports.Set("dequantizeBlockwise", Napi::Function::New(env, DequantizeBlockwiseJs, "dequantizeBlockwise"));
  exports.Set("dequantizeBlockwiseRef", Napi::Function::New(env, DequantizeBlockwiseRefJs, "dequantizeBlockwiseRef"));
}

}  // namespace whittle
