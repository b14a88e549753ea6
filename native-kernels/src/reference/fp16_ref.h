// fp16_ref.h — plain scalar IEEE-754 binary16 / bfloat16 conversions, the reference for fp16.cc.
//
// fp32 -> fp16: round to nearest, ties to even; overflow to ±inf (|x| >= 65520 rounds to inf, 65504 is
// the largest finite half); results below the normal range become subnormals (down to 2^-24) or ±0;
// ±inf stays ±inf; NaN stays NaN with its sign, made quiet (bit 9 set), keeping the top 9 payload bits
// — the same results as x86 F16C's VCVTPS2PH with round-to-nearest-even.
// fp16 -> fp32: exact for every finite half, subnormals included; NaN made quiet (bit 22 set) with its
// payload shifted up, as VCVTPH2PS does.
// bf16 -> fp32: the 16 bits become the top half of the float (exact, NaN payloads kept).
// Spec: IEEE 754-2019 §3.6 (binary16); https://en.wikipedia.org/wiki/Half-precision_floating-point_format
#pragma once

#include <cstddef>
#include <cstdint>

namespace whittle {

uint16_t F32ToF16Ref(float value);
float F16ToF32Ref(uint16_t half);
float Bf16ToF32Ref(uint16_t bf16);

// Array versions: dst[i] = convert(src[i]) for i < n, single-threaded.
void F32ToF16ArrayRef(uint16_t* dst, const float* src, size_t n);
void F16ToF32ArrayRef(float* dst, const uint16_t* src, size_t n);
void Bf16ToF32ArrayRef(float* dst, const uint16_t* src, size_t n);

}  // namespace whittle
