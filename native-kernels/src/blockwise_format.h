// blockwise_format.h — the com.microsoft.MatMulNBits weight layout and ONNX Runtime's rule for a block's
// scale and zero point. Shared by blockwise.cc (fast) and reference/blockwise_ref.cc, so the convention
// is written once; the two differ in traversal, threading and how they round.
//
// Weight W: an ONNX MatMul initializer, row-major [K, N] (K input features, N output features), float32
// or float16 bits. Quantized per output column n, in blocks of `block` consecutive k:
//   k_blocks = ceil(K / block); the last block is padded (padding takes the zero point: dequantizes to 0)
//   B      uint8 [N, k_blocks, block*bits/8]   values packed along k, first value in the low bits
//   scales float [N, k_blocks]
//   zero_points uint8 [N, ceil(k_blocks*bits/8)]  packed the same way (asymmetric only; unused high
//               slots of a column's last byte are 0). Symmetric blocks use MatMulNBits' default
//               zero point 2^(bits-1) and no zero_points input.
//   dequantized w = (q - zp) * scale
// Spec: https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md#com.microsoft.MatMulNBits
//
// Scale and zero point, as MLAS's blockwise quantizer (onnxruntime/core/mlas/lib/q4_dq.cpp,
// range2scale / range2scalezp, used by matmul_nbits_quantizer.py) computes them; min and max are taken
// over the block's real values (not the padding):
//   symmetric:  m = (|max| > |min|) ? max : min   (the signed value of largest magnitude; ties take min)
//               scale = -m / 2^(bits-1)  — it can be negative: m itself maps to q = 0 (-2^(bits-1) after
//               the zero point), so the value of largest magnitude is exact and the opposite end of
//               the range clamps at q = 2^bits - 1, at most one step away.
//   asymmetric: min = min(min, 0), max = max(max, 0); scale = (max - min) / (2^bits - 1);
//               zp = clamp(round(-min / scale), 0, 2^bits - 1), zp = 0 when scale == 0.
//   q = clamp(round(w * (1/scale) + zp), 0, 2^bits - 1), with 1/scale taken as 0 when scale == 0
//       (an all-zero block: every q is the zero point, the block dequantizes to zeros) or when 1/scale
//       overflows (a block of values below ~1e-37, which then also dequantizes to zeros).
// MLAS rounds with roundf (ties away from zero); Whittle's default rounds ties to even (as
// QuantizeLinear does), and `Rounding::kHalfAway` reproduces MLAS exactly. The zero point is rounded
// the same way as the values. A zero scale is stored as +0 (MLAS would store -0 for symmetric blocks).
// With `fp16_scales`, the scale is rounded to float16 before 1/scale is taken (as MLAS does for a
// float16 model), so the stored float32 scales convert to float16 exactly; zp uses the unrounded scale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "reference/fp16_ref.h"

namespace whittle {

enum class Rounding { kHalfEven, kHalfAway };

struct BlockwiseShape {
  size_t k = 0;
  size_t n = 0;
  int bits = 4;
  size_t block = 32;
  bool symmetric = true;
  bool fp16_scales = false;
  Rounding rounding = Rounding::kHalfEven;

  size_t KBlocks() const { return (k + block - 1) / block; }
  size_t BlobBytes() const { return block * static_cast<size_t>(bits) / 8; }  // bytes per block in B
  size_t ZeroPointBytesPerColumn() const { return (KBlocks() * static_cast<size_t>(bits) + 7) / 8; }
  size_t PackedBytes() const { return n * KBlocks() * BlobBytes(); }
  size_t ScaleCount() const { return n * KBlocks(); }
  size_t ZeroPointBytes() const { return n * ZeroPointBytesPerColumn(); }
  int QMax() const { return (1 << bits) - 1; }
  int DefaultZeroPoint() const { return 1 << (bits - 1); }
  int ValuesPerByte() const { return 8 / bits; }
};

// "" when the shape is valid, otherwise what is wrong with it.
inline std::string ValidateShape(const BlockwiseShape& s) {
  if (s.bits != 2 && s.bits != 4 && s.bits != 8) return "bits must be 2, 4 or 8.";
  if (s.block < 16 || s.block > 256 || (s.block & (s.block - 1)) != 0) {
    return "blockSize must be a power of two from 16 to 256.";
  }
  if (s.k == 0 || s.n == 0) return "k and n must be at least 1.";
  return "";
}

struct BlockParams {
  float scale = 0.0f;       // as stored in `scales`
  float reciprocal = 0.0f;  // 1/scale, 0 when scale == 0
  int zero_point = 0;
};

inline float RoundToIntegral(float x, Rounding rounding) {
  return rounding == Rounding::kHalfEven ? std::nearbyint(x) : std::round(x);
}

// round(clamp(x, 0, qmax)) without libm, for the tie rule kHalfEven (ties to even) or not (ties away
// from zero): (x + 2^23) − 2^23 rounds x ∈ [0, 2^23) to an integer in the current rounding mode (ties to
// even by default), exactly as std::nearbyint; at a tie that went down (x − t == 1/2) the away-from-zero
// rule takes the next integer, which is std::round for x ≥ 0. NaN → 0 (the clamp's comparisons fail).
// Clamping first is exact: rounding is monotonic and the bounds are integers (clamp∘round == round∘clamp).
template <bool kHalfEven>
inline float RoundClamped(float x, float qmax) {
  constexpr float kMagic = 8388608.0f;  // 2^23
  x = x > 0.0f ? x : 0.0f;
  x = x < qmax ? x : qmax;
  float t = (x + kMagic) - kMagic;
  if (!kHalfEven) t += (x - t == 0.5f) ? 1.0f : 0.0f;
  return t;
}

// Scale and zero point of a block whose real values span [min, max] (see the file comment).
inline BlockParams ComputeBlockParams(float min, float max, const BlockwiseShape& s) {
  BlockParams p;
  float scale;
  if (s.symmetric) {
    const float m = std::fabs(max) > std::fabs(min) ? max : min;
    scale = -m / static_cast<float>(s.DefaultZeroPoint());
    p.zero_point = s.DefaultZeroPoint();
  } else {
    min = std::min(min, 0.0f);
    max = std::max(max, 0.0f);
    scale = (max - min) / static_cast<float>(s.QMax());
    const float zp = scale != 0.0f ? 0.0f - min / scale : min;
    if (zp < 0.0f) {
      p.zero_point = 0;
    } else if (zp > static_cast<float>(s.QMax())) {
      p.zero_point = s.QMax();
    } else {
      p.zero_point = static_cast<int>(RoundToIntegral(zp, s.rounding));
    }
  }
  if (s.fp16_scales) scale = F16ToF32Ref(F32ToF16Ref(scale));
  if (scale == 0.0f) scale = 0.0f;  // -0 -> +0
  p.scale = scale;
  p.reciprocal = scale != 0.0f ? 1.0f / scale : 0.0f;
  if (!std::isfinite(p.reciprocal)) p.reciprocal = 0.0f;  // |scale| < 2^-128: the block quantizes to zp
  return p;
}

// Value k of a block packed `bits` wide, first value in the low bits.
inline int UnpackValue(const uint8_t* blob, size_t index, int bits) {
  const int per_byte = 8 / bits;
  return (blob[index / per_byte] >> ((index % per_byte) * bits)) & ((1 << bits) - 1);
}

inline float DequantizeValue(int q, int zero_point, float scale) {
  return static_cast<float>(q - zero_point) * scale;
}

}  // namespace whittle
