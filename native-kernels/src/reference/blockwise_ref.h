// blockwise_ref.h — plain single-threaded block-wise RTN quantization to the MatMulNBits layout and its
// inverse; the reference for blockwise.cc. Layout and scale / zero-point rule: blockwise_format.h.
//
//   QuantizeBlockwiseRef: W [K, N] (float32, or float16 bits when weight_f16 != nullptr)
//       -> packed [N, k_blocks, block*bits/8], scales [N, k_blocks], zero_points [N, ceil(k_blocks*bits/8)]
//          (zero_points == nullptr for symmetric). Returns Σ (w - dequantized w)² over the real elements,
//          summed in double per column (k in order), then over columns in order.
//   DequantizeBlockwiseRef: the inverse, into W [K, N] float32 (zero_points == nullptr: 2^(bits-1)).
// Throws KernelError(INVALID_INPUT) for NaN / infinite weights or scales that do not fit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "blockwise_format.h"

namespace whittle {

double QuantizeBlockwiseRef(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight_f32,
                            const uint16_t* weight_f16, const BlockwiseShape& shape);

void DequantizeBlockwiseRef(float* weight, const uint8_t* packed, const float* scales, const uint8_t* zero_points,
                            const BlockwiseShape& shape);

}  // namespace whittle
