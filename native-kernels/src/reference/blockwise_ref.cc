// blockwise_ref.cc — reference block-wise quantization (see blockwise_ref.h): one column at a time, one
// block at a time, values rounded with std::nearbyint / std::round.
#include "reference/blockwise_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include "blockwise_checks.h"
#include "reference/fp16_ref.h"

namespace whittle {

double QuantizeBlockwiseRef(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight_f32,
                            const uint16_t* weight_f16, const BlockwiseShape& s) {
  const size_t k_blocks = s.KBlocks();
  const size_t blob = s.BlobBytes();
  const int per_byte = s.ValuesPerByte();
  auto weight = [&](size_t k, size_t n) {
    return weight_f16 ? F16ToF32Ref(weight_f16[k * s.n + n]) : weight_f32[k * s.n + n];
  };

  if (zero_points) std::fill(zero_points, zero_points + s.ZeroPointBytes(), uint8_t{0});
  double total = 0.0;
  std::vector<int> q(s.block);
  for (size_t n = 0; n < s.n; n++) {
    double column_error = 0.0;
    for (size_t b = 0; b < k_blocks; b++) {
      const size_t k0 = b * s.block;
      const size_t rows = std::min(s.block, s.k - k0);

      float min = FLT_MAX, max = -FLT_MAX;
      for (size_t r = 0; r < rows; r++) {
        const float v = weight(k0 + r, n);
        CheckFiniteWeight(v, k0 + r, n);
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const BlockParams p = ComputeBlockParams(min, max, s);
      CheckScale(p.scale, s, b, n);
      scales[n * k_blocks + b] = p.scale;
      if (zero_points) {
        zero_points[n * s.ZeroPointBytesPerColumn() + b / per_byte] |=
            static_cast<uint8_t>(p.zero_point << ((b % per_byte) * s.bits));
      }

      for (size_t r = 0; r < s.block; r++) {
        if (r >= rows) {
          q[r] = p.zero_point;  // padding
          continue;
        }
        const float v = weight(k0 + r, n);
        const float x = v * p.reciprocal + static_cast<float>(p.zero_point);
        const float rounded = RoundToIntegral(x, s.rounding);
        q[r] = static_cast<int>(std::clamp(rounded, 0.0f, static_cast<float>(s.QMax())));
        const double diff = static_cast<double>(v) - static_cast<double>(DequantizeValue(q[r], p.zero_point, p.scale));
        column_error += diff * diff;
      }

      uint8_t* out = packed + (n * k_blocks + b) * blob;
      for (size_t i = 0; i < blob; i++) {
        int byte = 0;
        for (int j = 0; j < per_byte; j++) byte |= q[i * per_byte + j] << (j * s.bits);
        out[i] = static_cast<uint8_t>(byte);
      }
    }
    total += column_error;
  }
  return total;
}

void DequantizeBlockwiseRef(float* weight, const uint8_t* packed, const float* scales, const uint8_t* zero_points,
                            const BlockwiseShape& s) {
  const size_t k_blocks = s.KBlocks();
  for (size_t n = 0; n < s.n; n++) {
    for (size_t k = 0; k < s.k; k++) {
      const size_t b = k / s.block;
      const int zp = zero_points ? UnpackValue(zero_points + n * s.ZeroPointBytesPerColumn(), b, s.bits)
                                 : s.DefaultZeroPoint();
      const int q = UnpackValue(packed + (n * k_blocks + b) * s.BlobBytes(), k % s.block, s.bits);
      weight[k * s.n + n] = DequantizeValue(q, zp, scales[n * k_blocks + b]);
    }
  }
}

}  // namespace whittle
