// obs_sweep_ref.cc — the optimal-brain-surgeon sweep (arXiv 2210.17323 Algorithm 1; arXiv 2301.00774
// Algorithm 1) for one output channel at a time (see obs_sweep_ref.h). The channel's weights w[0..K) are
// kept in sweep order; Hinv is the upper Cholesky factor of H⁻¹; masks are chosen by a full sort.
#include "reference/obs_sweep_ref.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <numeric>
#include <vector>

#include "blockwise_checks.h"

namespace whittle {

using namespace obs_detail;

double ObsSweepRef(const ObsOutputs& out, const float* weight, const float* hinv, const int32_t* order,
                   const uint8_t* dead, const ObsShape& shape) {
  const size_t K = shape.k, N = shape.n;
  const size_t column_block = std::min(shape.column_block, K);
  BlockwiseShape s = shape.q;
  s.k = K;
  s.n = N;
  const size_t k_blocks = shape.quantize ? s.KBlocks() : 0;
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

  if (shape.quantize) out.grid->Resize(k_blocks, N);
  double loss_total = 0.0;
  std::vector<float> w(K), original(K), err(column_block);
  std::vector<BlockParams> params(k_blocks);
  std::vector<uint8_t> keep(K, 1);  // by sweep position
  for (size_t n = 0; n < N; n++) {
    for (size_t k = 0; k < K; k++) original[k] = dead[k] ? 0.0f : weight[k * N + n];
    for (size_t i = 0; i < K; i++) w[i] = original[input(i)];
    if (shape.quantize && order) {  // static groups, from the original weights in input order
      for (size_t g = 0; g < k_blocks; g++) params[g] = fit(original, g * s.block, std::min(K, (g + 1) * s.block), g, n);
    }
    // Prunes the PrunedCount lowest scores w² / Hinv[r,r]² of sweep positions [r0, r1), ties: the earlier.
    auto choose_mask = [&](size_t r0, size_t r1) {
      std::vector<size_t> idx(r1 - r0);
      std::iota(idx.begin(), idx.end(), r0);
      std::vector<float> score(K);
      for (size_t r = r0; r < r1; r++) score[r] = PruneScore(w[r], hinv[r * K + r]);
      std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); });
      const size_t pruned = PrunedCount(shape, r1 - r0);
      for (size_t t = 0; t < idx.size(); t++) keep[idx[t]] = t < pruned ? 0 : 1;
    };

    double loss = 0.0;
    for (size_t i1 = 0; i1 < K; i1 += column_block) {
      const size_t i2 = std::min(K, i1 + column_block);
      for (size_t i = i1; i < i2; i++) {
        const size_t k = input(i);
        if (shape.prune) {
          if (shape.nm_m > 0) {
            if (i % shape.nm_m == 0) choose_mask(i, std::min(K, i + shape.nm_m));
          } else if ((i - i1) % shape.mask_block == 0) {
            choose_mask(i, std::min(i2, i + shape.mask_block));
          }
        }
        float v = w[i];
        if (shape.quantize) {
          const size_t g = k / s.block;
          if (!order && i % s.block == 0) params[g] = fit(w, i, std::min(K, i + s.block), g, n);
          const BlockParams& p = params[g];
          int q = static_cast<int>(QuantizeClamped(w[i] * p.reciprocal + static_cast<float>(p.zero_point), qmax, s.rounding));
          v = DequantizeValue(q, p.zero_point, p.scale);
          if (shape.prune && !keep[i]) q = p.zero_point;
          out.codes[k * N + n] = static_cast<uint8_t>(q);
        }
        if (shape.prune && !keep[i]) v = 0.0f;
        if (out.swept) out.swept[k * N + n] = v;
        if (out.mask) out.mask[k * N + n] = shape.prune ? keep[i] : 1;
        const float e = (w[i] - v) / hinv[i * K + i];
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
    if (shape.quantize) {
      for (size_t g = 0; g < k_blocks; g++) out.grid->Set(g, N, n, params[g]);
    }
  }
  const double result = 0.5 * loss_total;
  if (!std::isfinite(result)) ThrowDiverged();
  return result;
}

double PackMatMulNBitsRef(uint8_t* packed, float* scales, uint8_t* zero_points, const uint8_t* codes, const ObsGrid& grid,
                          const float* weight, const BlockwiseShape& s) {
  const size_t K = s.k, N = s.n, k_blocks = s.KBlocks();
  const int per_byte = s.ValuesPerByte();
  if (zero_points) std::fill(zero_points, zero_points + s.ZeroPointBytes(), uint8_t{0});
  double total = 0.0;
  for (size_t n = 0; n < N; n++) {
    double sq_error = 0.0;
    for (size_t g = 0; g < k_blocks; g++) {
      const float scale = grid.scale[g * N + n];
      const int zp = static_cast<int>(grid.zero_point[g * N + n]);
      scales[n * k_blocks + g] = scale;
      if (zero_points) {
        zero_points[n * s.ZeroPointBytesPerColumn() + g / per_byte] |= static_cast<uint8_t>(zp << ((g % per_byte) * s.bits));
      }
      uint8_t* out = packed + (n * k_blocks + g) * s.BlobBytes();
      for (size_t b = 0; b < s.BlobBytes(); b++) {
        int byte = 0;
        for (int v = 0; v < per_byte; v++) {
          const size_t k = g * s.block + b * per_byte + v;
          const int code = k < K ? codes[k * N + n] : zp;  // padding of the last group
          byte |= code << (v * s.bits);
          if (k < K) {
            const double diff = static_cast<double>(weight[k * N + n]) - static_cast<double>(DequantizeValue(code, zp, scale));
            sq_error += diff * diff;
          }
        }
        out[b] = static_cast<uint8_t>(byte);
      }
    }
    total += sq_error;
  }
  return total;
}

}  // namespace whittle
