// gptq_ref.cc — GPTQ (arXiv 2210.17323, Algorithm 1) for one output channel at a time (see gptq_ref.h).
// The channel's weights w[0..K) are kept in sweep order; Hinv is the upper Cholesky factor of H⁻¹.
#include "reference/gptq_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "blockwise_checks.h"

namespace whittle {

using namespace gptq_detail;

GptqResult GptqSweepRef(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                        const float* hinv, const int32_t* order, const uint8_t* dead, const GptqShape& shape) {
  const BlockwiseShape& s = shape.q;
  const size_t K = s.k, N = s.n, k_blocks = s.KBlocks();
  const size_t column_block = std::min(shape.column_block, K);
  const int per_byte = s.ValuesPerByte();
  const float qmax = static_cast<float>(s.QMax());
  auto input = [&](size_t i) { return order ? static_cast<size_t>(order[i]) : i; };
  CheckHinv(hinv, K);
  for (size_t k = 0; k < K; k++) {
    for (size_t n = 0; n < N; n++) CheckFiniteWeight(weight[k * N + n], k, n);
  }

  auto fit = [&](const std::vector<float>& v, size_t r0, size_t r1, size_t g, size_t n) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (size_t r = r0; r < r1; r++) {
      if (v[r] < min) min = v[r];
      if (v[r] > max) max = v[r];
    }
    if (!std::isfinite(min) || !std::isfinite(max)) ThrowDiverged();
    const BlockParams p = ComputeBlockParams(min, max, s);
    CheckScale(p.scale, s, g, n);
    return p;
  };

  if (zero_points) std::fill(zero_points, zero_points + s.ZeroPointBytes(), uint8_t{0});
  GptqResult result;
  double loss_total = 0.0;
  std::vector<float> w(K), original(K), err(column_block);
  std::vector<BlockParams> params(k_blocks);
  std::vector<int> q(K);
  for (size_t n = 0; n < N; n++) {
    for (size_t k = 0; k < K; k++) original[k] = dead[k] ? 0.0f : weight[k * N + n];
    for (size_t i = 0; i < K; i++) w[i] = original[input(i)];
    if (order) {  // static groups, from the original weights in input order
      for (size_t g = 0; g < k_blocks; g++) params[g] = fit(original, g * s.block, std::min(K, (g + 1) * s.block), g, n);
    }

    double loss = 0.0;
    for (size_t i1 = 0; i1 < K; i1 += column_block) {
      const size_t i2 = std::min(K, i1 + column_block);
      for (size_t i = i1; i < i2; i++) {
        const size_t k = input(i);
        const size_t g = k / s.block;
        if (!order && i % s.block == 0) params[g] = fit(w, i, std::min(K, i + s.block), g, n);
        const BlockParams& p = params[g];
        q[k] = static_cast<int>(QuantizeClamped(w[i] * p.reciprocal + static_cast<float>(p.zero_point), qmax, s.rounding));
        const float e = (w[i] - DequantizeValue(q[k], p.zero_point, p.scale)) / hinv[i * K + i];
        err[i - i1] = e;
        loss += static_cast<double>(e) * static_cast<double>(e);
        for (size_t j = i + 1; j < i2; j++) w[j] = w[j] - e * hinv[i * K + j];
      }
      for (size_t j = i2; j < K; j++) {  // the lazy batch update
        float sum = 0.0f;
        for (size_t i = i1; i < i2; i++) sum = sum + err[i - i1] * hinv[i * K + j];
        w[j] = w[j] - sum;
      }
    }
    loss_total += loss;

    double sq_error = 0.0;
    for (size_t g = 0; g < k_blocks; g++) {
      const BlockParams& p = params[g];
      scales[n * k_blocks + g] = p.scale;
      if (zero_points) {
        zero_points[n * s.ZeroPointBytesPerColumn() + g / per_byte] |=
            static_cast<uint8_t>(p.zero_point << ((g % per_byte) * s.bits));
      }
      uint8_t* out = packed + (n * k_blocks + g) * s.BlobBytes();
      for (size_t b = 0; b < s.BlobBytes(); b++) {
        int byte = 0;
        for (int v = 0; v < per_byte; v++) {
          const size_t k = g * s.block + b * per_byte + v;
          const int code = k < K ? q[k] : p.zero_point;  // padding of the last group
          byte |= code << (v * s.bits);
          if (k < K) {
            const double diff = static_cast<double>(weight[k * N + n]) -
                                static_cast<double>(DequantizeValue(code, p.zero_point, p.scale));
            sq_error += diff * diff;
          }
        }
        out[b] = static_cast<uint8_t>(byte);
      }
    }
    result.sq_error += sq_error;
  }
  result.loss = 0.5 * loss_total;
  if (!std::isfinite(result.loss)) ThrowDiverged();
  return result;
}

}  // namespace whittle
