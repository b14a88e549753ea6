// blockwise_checks.h — the data checks shared by the fast and reference block-wise quantizers: a weight
// must be finite, and a block's scale must be finite (and fit float16 when scales are stored as such).
#pragma once

#include <cfloat>
#include <cmath>
#include <string>

#include "blockwise_format.h"
#include "napi_helpers.h"

namespace whittle {

inline void CheckFiniteWeight(float v, size_t k, size_t n) {
  if (!(std::fabs(v) <= FLT_MAX)) {
    throw KernelError("INVALID_INPUT", "The weight holds a " + std::string(std::isnan(v) ? "NaN" : "infinite") +
                                           " value at [k=" + std::to_string(k) + ", n=" + std::to_string(n) +
                                           "]; it cannot be quantized. Check that the model file is not corrupt.");
  }
}

inline void CheckScale(float scale, const BlockwiseShape& s, size_t block, size_t n) {
  if (!(std::fabs(scale) <= FLT_MAX)) {
    throw KernelError("INVALID_INPUT", std::string("The weights of block ") + std::to_string(block) + " of column " +
                                           std::to_string(n) + " span too wide a range: their scale does not fit " +
                                           (s.fp16_scales ? "in float16" : "in float32") + ".");
  }
}

}  // namespace whittle
