// fp16.h — fast, multi-threaded fp32 <-> fp16 and bf16 -> fp32 conversion of whole arrays.
// Bit-identical to reference/fp16_ref.h (F16C instructions when the CPU has them, else the scalar
// reference code, split over the thread pool).
#pragma once

#include <cstddef>
#include <cstdint>

namespace whittle {

void F32ToF16Array(uint16_t* dst, const float* src, size_t n);
void F16ToF32Array(float* dst, const uint16_t* src, size_t n);
void Bf16ToF32Array(float* dst, const uint16_t* src, size_t n);

}  // namespace whittle

namespace whittle {

// Single-threaded span conversion for use inside other kernels' tiles (F16C when available).
void F16ToF32Span(float* dst, const uint16_t* src, size_t n);

}  // namespace whittle
