// gptq_ref.h — the plain GPTQ sweep, one output channel at a time, single-threaded: the reference for
// gptq.h (same contract, same float32 arithmetic in the same order, so the integer codes, scales, zero
// points, loss and weight error must match the fast kernel exactly).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gptq.h"

namespace whittle {

GptqResult GptqSweepRef(uint8_t* packed, float* scales, uint8_t* zero_points, const float* weight,
                        const float* hinv_upper, const int32_t* order, const uint8_t* dead, const GptqShape& shape);

}  // namespace whittle
