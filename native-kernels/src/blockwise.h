// blockwise.h — fast block-wise RTN quantization to com.microsoft.MatMulNBits and back, multi-threaded
// over output columns, byte-for-byte identical to reference/blockwise_ref.h (same signatures and
// contract; layout and rules in blockwise_format.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "blockwise_format.h"

namespace whittle {

double QuantizeBlockwise(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight_f32,
                         const uint16_t* weight_f16, const BlockwiseShape& shape);

void DequantizeBlockwise(float* weight, const uint8_t* packed, const float* scales, const uint8_t* zero_points,
                         const BlockwiseShape& shape);

}  // namespace whittle
