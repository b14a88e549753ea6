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
// The sweep itself is obs_sweep.h's with the quantize policy; the codes are then packed by
// PackMatMulNBits. loss = ½ Σ err², GPTQ's Σ (w−q)²/Hinv[i,i]²/2, the increase of the layer's output
// error it predicts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "blockwise_format.h"
#include "obs_sweep.h"

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

// The sweep's shape for GPTQ: the quantize policy alone.
inline ObsShape GptqObsShape(const GptqShape& g) {
  ObsShape s;
  s.k = g.q.k;
  s.n = g.q.n;
  s.column_block = g.column_block;
  s.quantize = true;
  s.q = g.q;
  return s;
}

}  // namespace whittle
