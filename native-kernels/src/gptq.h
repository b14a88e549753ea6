// gptq.h — GPTQ (Frantar et al., "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
// Transformers", arXiv 2210.17323, Algorithm 1) onto the com.microsoft.MatMulNBits layout, multi-threaded
// over output channels. Reference: reference/gptq_ref.h (identical integer codes, scales and loss).
//
// Weight W: an ONNX MatMul initializer, row-major [K, N] (K = d_in, N = d_out). GPTQ's weight is Wᵀ
// [N, K]: its column i (input feature i) is the contiguous row i of W, and its rows (output channels)
// are independent once Hinv is known, so the kernels run the sweep for many output channels at once.
//   Hinv: the upper Cholesky factor of the damped inverse Hessian in sweep order (PrepareHessian).
//   order: sweep position i → input index order[i] (act-order), or nullptr for the natural order.
//   dead[k]: input k never fired (S[k,k] == 0): its weights are zeroed before anything else.
// Groups are the MatMulNBits blocks of `block` consecutive inputs (the last one padded when K is not a
// multiple); scale and zero point per (group, output channel) follow ONNX Runtime's rule
// (blockwise_format.h, ComputeBlockParams), so the output is exactly quantizeBlockwise's layout.
//   With order (act-order): static groups — each group's scale / zero point comes from the original
//     (dead-zeroed, not yet updated) weights before the sweep, so the permuted sweep still produces the
//     standard layout without g_idx (AutoGPTQ's static_groups).
//   Without: each group's scale / zero point is computed when the sweep reaches the group's first input,
//     from the weights as updated so far — including the updates from earlier inputs of the same column
//     block (IST-DASLab/gptq and AutoGPTQ read the block's stale copy there; the two agree whenever
//     groups start at column-block boundaries).
// Sweep, in blocks of `column_block` inputs [i1, i2):
//   for i in i1..i2:  q_i = quantize(w_i) (per output channel, the group's grid);  err_i = (w_i − deq(q_i)) / Hinv[i,i]
//                     w_j −= err_i · Hinv[i,j]                                  for j in i+1..i2 (in order of i)
//   w_k −= Σ_{i1<=i<i2} err_i · Hinv[i,k]                                       for k >= i2 (the sum formed first, in order of i)
// all in float32 (as the reference implementations), each product and sum rounded separately
// (-ffp-contract=off), so fast and reference agree bit for bit. loss = ½ Σ err² over all (i, channel),
// the squares summed in double per channel in sweep order, then over channels: GPTQ's Σ (w−q)²/Hinv[i,i]²/2,
// the increase of the layer's output error it predicts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "blockwise_format.h"

namespace whittle {

struct GptqShape {
  BlockwiseShape q;           // k = K, n = N, bits, block = group size, symmetric, fp16_scales, rounding
  size_t column_block = 128;  // inputs per lazy-update block (≥ 1)
};

struct GptqResult {
  double loss = 0.0;      // ½ Σ err²
  double sq_error = 0.0;  // Σ (w − dequantized w)² against the original weight (dead inputs included)
};

// packed [N, k_blocks, block·bits/8], scales [N, k_blocks], zero_points [N, ceil(k_blocks·bits/8)] (nullptr
// when symmetric) as QuantizeBlockwise; weight [K, N]; hinv_upper [K×K] in sweep order; order [K] or
// nullptr; dead [K]. Throws KernelError(INVALID_INPUT) for non-finite weights, a Hinv whose diagonal is
// not positive, or a sweep that overflows.
GptqResult GptqSweep(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                     const float* hinv_upper, const int32_t* order, const uint8_t* dead, const GptqShape& shape);

namespace gptq_detail {
// The checks shared with the reference, so both reject the same inputs with the same words.
void CheckHinv(const float* hinv_upper, size_t k);
[[noreturn]] void ThrowDiverged();
// Nearest integer of clamp(x, 0, qmax), NaN → 0, with std::nearbyint (ties to even) or std::round.
inline float QuantizeClamped(float x, float qmax, Rounding rounding) {
  x = x > 0.0f ? x : 0.0f;
  x = x < qmax ? x : qmax;
  return RoundToIntegral(x, rounding);
}
}  // namespace gptq_detail

}  // namespace whittle
