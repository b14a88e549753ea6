// obs_sweep_ref.h — the plain optimal-brain-surgeon sweep, one output channel at a time, single-threaded:
// the reference for obs_sweep.h (same contract, same float32 arithmetic in the same order, so codes,
// masks, swept weights and loss must match the fast kernel exactly), and a plain MatMulNBits packer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "obs_sweep.h"

namespace whittle {

double ObsSweepRef(const ObsOutputs& out, const float* weight, const float* hinv_upper, const int32_t* order,
                   const uint8_t* dead, const ObsShape& shape);

double PackMatMulNBitsRef(uint8_t* packed, float* scales, uint8_t* zero_points, const uint8_t* codes, const ObsGrid& grid,
                          const float* weight, const BlockwiseShape& s);

}  // namespace whittle
