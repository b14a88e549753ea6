// obs_sweep.h — the optimal-brain-surgeon column sweep shared by GPTQ and SparseGPT, with lazy batch
// updates over an inverse-Hessian Cholesky factor, parameterised by a column policy (quantize to a grid,
// prune by a mask, or both). Multi-threaded over output channels; reference: reference/obs_sweep_ref.h
// (identical codes, masks, swept weights and loss).
//   GPTQ:      Frantar et al., arXiv 2210.17323, Algorithm 1 (TECHNIQUES.md §1).
//   SparseGPT: Frantar & Alistarh, arXiv 2301.00774, Algorithm 1 (TECHNIQUES.md §2): adaptive mask
//              selection per block of columns, N:M, and the joint prune + quantize mode.
//
// Weight W: an ONNX MatMul initializer, row-major [K, N] (K = d_in, N = d_out). The papers' weight is Wᵀ
// [N, K]: its column i (input feature i) is the contiguous row i of W, and its rows (output channels)
// are independent once Hinv is known, so the sweep runs for many output channels at once.
//   Hinv: the upper Cholesky factor of the damped inverse Hessian in sweep order (PrepareHessian).
//   order: sweep position i → input index order[i] (act-order), or nullptr for the natural order.
//   dead[k]: input k never fired (S[k,k] == 0): its weights are zeroed before anything else.
//
// The sweep, in blocks of `column_block` inputs [i1, i2), per output channel:
//   for i in i1..i2:  v_i = policy(w_i)                 (the value the weight takes; see below)
//                     err_i = (w_i − v_i) / Hinv[i,i]
//                     w_j −= err_i · Hinv[i,j]          for j in i+1..i2 (in order of i)
//   w_k −= Σ_{i1<=i<i2} err_i · Hinv[i,k]               for k >= i2 (the sum formed first, in order of i)
// all in float32, each product and sum rounded separately (-ffp-contract=off), so every SIMD path and
// the reference agree bit for bit. loss = ½ Σ err² over all (i, channel), the squares summed in double
// per channel in sweep order, then over channels: the increase of the layer's output error
// ‖(W − Ŵ)ᵀX‖² the sweep predicts (in units of H = 2XᵀX/count).
//
// Column policy:
//   quantize: groups are the MatMulNBits blocks of `q.block` consecutive inputs; scale and zero point per
//     (group, channel) follow ONNX Runtime's rule (blockwise_format.h, ComputeBlockParams), for any bits
//     2..8 (the MatMulNBits packer takes 2, 4 or 8).
//       With order (act-order): static groups — each group's grid comes from the original (dead-zeroed,
//       not yet updated) weights before the sweep (AutoGPTQ's static_groups).
//       Without: a group's grid is fitted when the sweep reaches the group's first input, from the
//       weights as updated so far (including updates from earlier inputs of the same column block).
//     v_i = (q − zp) · scale with q = round(clamp(w_i · (1/scale) + zp, 0, 2^bits − 1)).
//   prune: a mask chosen by SparseGPT's score w_i² / Hinv[i,i]² from the weights as updated when the
//     sweep reaches the mask's first input; per output channel, the lowest scores are pruned (ties: the
//     earlier sweep position first):
//       unstructured: mask blocks of `mask_block` inputs starting at each column block's first input
//         (a mask block never crosses a column block; with the defaults 128 / 128 they coincide, as in
//         SparseGPT); in each, exactly round(sparsity · len) weights of every channel are pruned.
//       N:M (natural order only, column_block a multiple of M): in every group of M consecutive inputs
//         [g·M, g·M + M) the M − N lowest scores are pruned (a short last group keeps min(N, len)).
//     v_i = 0 for a pruned weight; a kept weight is v_i = w_i, or quantized when both policies are on
//     (SparseGPT's joint mode: prune, then quantize the kept weights; the grid is fitted from all of
//     the group's current weights). A pruned weight's code is the zero point (it dequantizes to 0).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "blockwise_format.h"

namespace whittle {

struct ObsShape {
  size_t k = 0, n = 0;
  size_t column_block = 128;  // inputs per lazy-update block (≥ 1)
  bool quantize = false;
  BlockwiseShape q;  // the grid (k, n as above) when quantize
  bool prune = false;
  double sparsity = 0.0;   // unstructured: fraction pruned in each mask block, [0, 1]
  size_t nm_n = 0, nm_m = 0;  // N:M when nm_m > 0 (then sparsity is unused)
  size_t mask_block = 128;
};

// Grid parameters per (group, channel), channel-contiguous: [k_blocks][N].
struct ObsGrid {
  std::vector<float> scale, reciprocal, zero_point;
  void Resize(size_t groups, size_t n) {
    scale.assign(groups * n, 0.0f);
    reciprocal.assign(groups * n, 0.0f);
    zero_point.assign(groups * n, 0.0f);
  }
  void Set(size_t g, size_t n_total, size_t n, const BlockParams& p) {
    scale[g * n_total + n] = p.scale;
    reciprocal[g * n_total + n] = p.reciprocal;
    zero_point[g * n_total + n] = static_cast<float>(p.zero_point);
  }
};

// Where the sweep writes (each [K, N] by original input; nullptr: not wanted).
struct ObsOutputs {
  float* swept = nullptr;    // v: the weight after the policy (pruned zeros, dequantized values)
  uint8_t* mask = nullptr;   // 1 = kept (prune only; all 1 otherwise)
  uint8_t* codes = nullptr;  // integer codes (quantize only)
  ObsGrid* grid = nullptr;   // filled when quantize (required then)
};

// Returns the loss ½ Σ err². Throws KernelError(INVALID_INPUT) for non-finite weights, a Hinv whose
// diagonal is not positive, or a sweep that overflows.
double ObsSweep(const ObsOutputs& out, const float* weight, const float* hinv_upper, const int32_t* order,
                const uint8_t* dead, const ObsShape& shape);

// Packers, separate from the sweep.
// MatMulNBits (blockwise_format.h): codes [K, N] + grid → packed [N, k_blocks, blob], scales [N, k_blocks],
// zero_points (nullptr when symmetric); returns Σ (w − dequantized)² against `weight` (dead inputs
// included), in double per channel in k order, then over channels.
double PackMatMulNBits(uint8_t* packed, float* scales, uint8_t* zero_points, const uint8_t* codes, const ObsGrid& grid,
                       const float* weight, const BlockwiseShape& s);
// Σ (w − swept)² in the same order.
double SweptSquaredError(const float* weight, const float* swept, size_t k, size_t n);

namespace obs_detail {
// The checks shared with the reference, so both reject the same inputs with the same words.
void CheckHinv(const float* hinv_upper, size_t k);
[[noreturn]] void ThrowDiverged();
// "" when the policy is valid, otherwise what is wrong with it.
std::string ValidatePolicy(const ObsShape& s, bool act_order);
// Weights of a channel pruned in a mask span of `len` inputs.
inline size_t PrunedCount(const ObsShape& s, size_t len) {
  if (s.nm_m > 0) return len > s.nm_n ? len - s.nm_n : 0;
  const double c = std::nearbyint(s.sparsity * static_cast<double>(len));
  return c <= 0 ? 0 : static_cast<size_t>(c) > len ? len : static_cast<size_t>(c);
}
// SparseGPT's score w² / Hinv[i,i]²; NaN (a diverged sweep, reported later) scores as +inf so the order
// stays total.
inline float PruneScore(float w, float d) {
  const float s = (w * w) / (d * d);
  return std::isnan(s) ? INFINITY : s;
}
// Nearest integer of clamp(x, 0, qmax), NaN → 0, with std::nearbyint (ties to even) or std::round.
inline float QuantizeClamped(float x, float qmax, Rounding rounding) {
  x = x > 0.0f ? x : 0.0f;
  x = x < qmax ? x : qmax;
  return RoundToIntegral(x, rounding);
}
}  // namespace obs_detail

}  // namespace whittle
